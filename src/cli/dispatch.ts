import { GitOpsError, UnsafePlanError } from "../errors.js";
import { type Command, type CliContext, ExitCode } from "./io.js";

/**
 * The `cf-oauth-gitops` entry point: argv -> verb -> exit code. Each verb lives in its own module and
 * is loaded only when called, so `validate` and `schema` never load the HTTP stack.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  plan: async () => (await import("./plan.js")).planCommand,
  apply: async () => (await import("./apply.js")).applyCommand,
  run: async () => (await import("./run.js")).runCommand,
  rotate: async () => (await import("./rotate.js")).rotateCommand,
  export: async () => (await import("./export.js")).exportCommand,
  emulator: async () => (await import("./emulator.js")).emulatorCommand,
  validate: async () => (await import("./validate.js")).validateCommand,
  schema: async () => (await import("./schema.js")).schemaCommand,
  demo: async () => (await import("./demo.js")).demoCommand,
};

const USAGE = `usage: cf-oauth-gitops <command> [options]

commands:
  validate   check the config and desired-state files (no credentials, no network)
  plan       show what apply would change (read-only)
  apply      make the account match the desired state
  run        keep the account matching the desired state (daemon: git, watch, webhook, metrics)
  rotate     rotate client secrets (two phases, journaled, grace honoured)
  export     write an account's live clients as a desired-state file
  schema     print the JSON Schema of desired-state files
  emulator   run a local Cloudflare OAuth-clients API emulator
  demo       plan and apply the examples against an embedded emulator

Run 'cf-oauth-gitops <command> --help' for a command's options.`;

export async function main(argv: string[], ctx: Omit<CliContext, "args">): Promise<number> {
  const [verb, ...args] = argv;
  if (verb === undefined || verb === "--help" || verb === "-h" || verb === "help") {
    ctx.stdout.write(`${USAGE}\n`);
    return verb === undefined ? ExitCode.error : ExitCode.ok;
  }
  if (verb === "--version" || verb === "version") {
    const { readFile } = await import("node:fs/promises");
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    ctx.stdout.write(`cf-oauth-gitops ${pkg.version}\n`);
    return ExitCode.ok;
  }
  const load = COMMANDS[verb];
  if (!load) {
    ctx.stderr.write(`cf-oauth-gitops: unknown command '${verb}'\n\n${USAGE}\n`);
    return ExitCode.error;
  }
  try {
    const command = await load();
    return await command({ ...ctx, args, dispatch: main });
  } catch (error) {
    ctx.stderr.write(`${describeError(error)}\n`);
    // A plan refused by a safety valve is exit 3 for every verb (README, "CLI and exit codes").
    return error instanceof UnsafePlanError ? ExitCode.unsafe : ExitCode.error;
  }
}

/** One line (or one block for config errors) with the stable code: never a stack for known errors. */
export function describeError(error: unknown): string {
  if (error instanceof GitOpsError) return `error [${error.code}]: ${error.message}`;
  if (error instanceof Error) return `error: ${error.message}`;
  return `error: ${String(error)}`;
}

#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GitOpsError } from "../errors.js";
import { type Command, type CliContext, ExitCode } from "./io.js";

/**
 * The `cf-oauth-gitops` entry point: argv -> verb -> exit code. Each verb lives in its own module and
 * is loaded only when called, so `validate` and `schema` never load the HTTP stack.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  emulator: async () => (await import("./emulator.js")).emulatorCommand,
};

const USAGE = `usage: cf-oauth-gitops <command> [options]

commands:
  emulator   run a local Cloudflare OAuth-clients API emulator

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
    return await command({ ...ctx, args });
  } catch (error) {
    ctx.stderr.write(`${describeError(error)}\n`);
    return ExitCode.error;
  }
}

/** One line (or one block for config errors) with the stable code: never a stack for known errors. */
export function describeError(error: unknown): string {
  if (error instanceof GitOpsError) return `error [${error.code}]: ${error.message}`;
  if (error instanceof Error) return `error: ${error.message}`;
  return `error: ${String(error)}`;
}

/** True when this file is the program (also through npm's bin symlink), false when imported by tests. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  const code = await main(process.argv.slice(2), {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    signal: controller.signal,
  });
  process.exitCode = code;
}

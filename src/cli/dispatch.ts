import { readFileSync } from "node:fs";
import { GitOpsError, UnsafePlanError } from "../errors.js";
import { type CliContext, ExitCode } from "./io.js";

/**
 * The `cf-oauth-gitops` entry point: argv -> verb -> exit code. The verbs' options come from
 * src/cli/verbs.ts; a verb's code is imported only once its options have been read and checked, and
 * only that verb's: `validate` and `schema` never load the HTTP stack, `plan` never loads the server,
 * the metrics, the file watcher or the cron scheduler (those are `run`'s), and `--version` or
 * `--help` load no verb at all. `--version` does not even load the options tables.
 */

export async function main(argv: string[], ctx: Omit<CliContext, "args">): Promise<number> {
  const [verb, ...args] = argv;
  if (verb === "--version" || verb === "version") {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    ctx.stdout.write(`cf-oauth-gitops ${pkg.version}\n`);
    return ExitCode.ok;
  }
  const { ENTRIES, USAGE, VERBS, runVerb, suggestVerb } = await import("./commands.js");
  if (verb === undefined || verb === "--help" || verb === "-h" || verb === "help") {
    ctx.stdout.write(`${USAGE}\n`);
    return verb === undefined ? ExitCode.error : ExitCode.ok;
  }
  const found = ENTRIES.find((e) => e.spec.name === verb);
  if (!found) {
    const near = suggestVerb(verb, VERBS);
    ctx.stderr.write(
      `cf-oauth-gitops: unknown command '${verb}'${near ? `; did you mean '${near}'?` : ""}\n\n${USAGE}\n`,
    );
    return ExitCode.error;
  }
  try {
    return await runVerb(found.spec, found.load, { ...ctx, args, dispatch: main });
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

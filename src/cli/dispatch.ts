import { readFileSync } from "node:fs";
import { type CliContext, ExitCode } from "./io.js";

/**
 * The `cf-oauth-gitops` entry point: argv -> verb -> exit code. The verbs' options come from
 * src/cli/verbs.ts; a verb's code is imported only once its options have been read and checked, and
 * only that verb's (src/cli/commands.ts): `validate` and `schema` never load the HTTP stack, `plan`
 * never loads the server, the metrics, the file watcher or the cron scheduler (those are `run`'s),
 * and `--help` or a usage error load no verb at all. `--version` loads nothing but this module.
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
  const { dispatch } = await import("./commands.js");
  return dispatch(verb, args, { ...ctx, dispatch: main });
}

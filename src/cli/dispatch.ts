import { GitOpsError, UnsafePlanError } from "../errors.js";
import { renderUsage, runVerb, suggestVerb, type VerbRun, type VerbSpec } from "./frame.js";
import { type CliContext, ExitCode } from "./io.js";
import { APPLY, DEMO, EMULATOR, EXPORT, PLAN, ROTATE, RUN, SCHEMA, VALIDATE, VERBS } from "./verbs.js";

/**
 * The `cf-oauth-gitops` entry point: argv -> verb -> exit code. The verbs' options come from
 * src/cli/verbs.ts; a verb's code is imported only once its options have been read and checked, and
 * only that verb's: `validate` and `schema` never load the HTTP stack, `plan` never loads the server,
 * the metrics, the file watcher or the cron scheduler (those are `run`'s), and `--version` or
 * `--help` load no verb at all.
 */

interface Entry {
  spec: VerbSpec;
  load: () => Promise<VerbRun<VerbSpec>>;
}

/** Pairs a verb's options with the code that takes exactly those options. */
function entry<S extends VerbSpec>(spec: S, load: () => Promise<VerbRun<S>>): Entry {
  return { spec, load: load as () => Promise<VerbRun<VerbSpec>> };
}

const ENTRIES: readonly Entry[] = [
  entry(VALIDATE, async () => (await import("./validate.js")).runValidate),
  entry(PLAN, async () => (await import("./plan.js")).runPlan),
  entry(APPLY, async () => (await import("./apply.js")).runApply),
  entry(RUN, async () => (await import("./run.js")).runDaemon),
  entry(ROTATE, async () => (await import("./rotate.js")).runRotate),
  entry(EXPORT, async () => (await import("./export.js")).runExport),
  entry(SCHEMA, async () => (await import("./schema.js")).runSchema),
  entry(EMULATOR, async () => (await import("./emulator.js")).runEmulator),
  entry(DEMO, async () => (await import("./demo.js")).runDemo),
];

const USAGE = renderUsage(VERBS);

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

import { GitOpsError, UnsafePlanError } from "../errors.js";
import { renderUsage, runVerb, suggestVerb, type VerbRun, type VerbSpec } from "./frame.js";
import { type CliContext, ExitCode } from "./io.js";
import { APPLY, DEMO, EMULATOR, EXPORT, PLAN, ROTATE, RUN, SCHEMA, VALIDATE, VERBS } from "./verbs.js";

/**
 * Each verb's options (src/cli/verbs.ts) beside the code that takes them, loaded by the dispatcher
 * (src/cli/dispatch.ts) once it has a verb to run. A verb's module is imported only when that verb
 * runs, after its options were checked.
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

/** The top-level usage, from the verbs' summaries. */
const USAGE = renderUsage(VERBS);

/**
 * Runs `verb` (src/cli/dispatch.ts has handled `--version`): the usage for none or `--help`, a
 * suggestion for an unknown one, else the verb through the frame. An error the verb throws is one
 * line with its stable code; a plan refused by a safety valve is exit 3 for every verb (README, "CLI
 * and exit codes").
 */
export async function dispatch(verb: string | undefined, args: string[], ctx: Omit<CliContext, "args">) {
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
    return await runVerb(found.spec, found.load, { ...ctx, args });
  } catch (error) {
    ctx.stderr.write(`${describeError(error)}\n`);
    return error instanceof UnsafePlanError ? ExitCode.unsafe : ExitCode.error;
  }
}

/** One line (or one block for config errors) with the stable code: never a stack for known errors. */
export function describeError(error: unknown): string {
  if (error instanceof GitOpsError) return `error [${error.code}]: ${error.message}`;
  if (error instanceof Error) return `error: ${error.message}`;
  return `error: ${String(error)}`;
}

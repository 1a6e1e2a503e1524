import { renderUsage, type VerbRun, type VerbSpec } from "./frame.js";
import { APPLY, DEMO, EMULATOR, EXPORT, PLAN, ROTATE, RUN, SCHEMA, VALIDATE, VERBS } from "./verbs.js";

/**
 * Each verb's options (src/cli/verbs.ts) beside the code that takes them, loaded by the dispatcher
 * (src/cli/dispatch.ts) once it has a verb to run. A verb's module is imported only when that verb
 * runs, after its options were checked.
 */

export { runVerb, suggestVerb } from "./frame.js";
export { VERBS } from "./verbs.js";

interface Entry {
  spec: VerbSpec;
  load: () => Promise<VerbRun<VerbSpec>>;
}

/** Pairs a verb's options with the code that takes exactly those options. */
function entry<S extends VerbSpec>(spec: S, load: () => Promise<VerbRun<S>>): Entry {
  return { spec, load: load as () => Promise<VerbRun<VerbSpec>> };
}

export const ENTRIES: readonly Entry[] = [
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
export const USAGE = renderUsage(VERBS);

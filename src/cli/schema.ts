import { renderCliReference, type VerbRun } from "./frame.js";
import { ExitCode } from "./io.js";
import { renderConfigReference } from "./reference.js";
import { type SCHEMA, VERBS } from "./verbs.js";

/**
 * `schema`: the editor-facing form of the validation schemas, the configuration reference, and the
 * table of every command's options (the README's CLI section, generated from src/cli/verbs.ts); no
 * I/O beyond stdout.
 */
export const runSchema: VerbRun<typeof SCHEMA> = async (ctx, values) => {
  if (values.cli) {
    ctx.stdout.write(`${renderCliReference(VERBS)}\n`);
    return ExitCode.ok;
  }
  // The schemas are the config module's (zod and all): not loaded for the options table.
  const { configJsonSchema, desiredStateJsonSchema } = await import("../config/index.js");
  if (values.reference) {
    ctx.stdout.write(renderConfigReference(configJsonSchema(), desiredStateJsonSchema()));
    return ExitCode.ok;
  }
  const schema = values.config ? configJsonSchema() : desiredStateJsonSchema();
  ctx.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
  return ExitCode.ok;
};

import { parseArgs } from "node:util";
import { configJsonSchema, desiredStateJsonSchema } from "../config/index.js";
import { GitOpsError } from "../errors.js";
import { type Command, ExitCode } from "./io.js";
import { renderConfigReference } from "./reference.js";

const USAGE = `usage: cf-oauth-gitops schema [--config | --reference]

Prints the JSON Schema of desired-state files (for editors: put
'# yaml-language-server: $schema=<path or URL>' at the top of each file), or with --config the
JSON Schema of the config file. Both are generated from the same zod schemas that validate.

options:
  --config     print the config file's schema instead
  --reference  print the Markdown configuration reference (docs/CONFIGURATION.md)
  -h, --help   show this help`;

/** `schema`: the editor-facing form of the validation schemas; no I/O beyond stdout. */
export const schemaCommand: Command = async (ctx) => {
  let flags;
  try {
    flags = parseArgs({
      args: ctx.args,
      options: {
        config: { type: "boolean" },
        reference: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    throw new GitOpsError("E_USAGE", `schema: ${(error as Error).message}`);
  }
  if (flags.help) {
    ctx.stdout.write(`${USAGE}\n`);
    return ExitCode.ok;
  }
  if (flags.reference) {
    ctx.stdout.write(renderConfigReference(configJsonSchema(), desiredStateJsonSchema()));
    return ExitCode.ok;
  }
  const schema = flags.config ? configJsonSchema() : desiredStateJsonSchema();
  ctx.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
  return ExitCode.ok;
};

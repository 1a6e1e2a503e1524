import { z } from "zod";
import { nonEmpty, patternCheck, show, withCheck } from "../config/fields.js";
import { defineSink, type SinkConfigOf } from "./descriptor.js";
import { describeFileRecord, fileRecordPath } from "./naming.js";

/**
 * The `file` sink's descriptor: one file per client under `dir`, optionally age-encrypted. The
 * implementation (src/sinks/file-sink.ts, with age) is loaded when the sink is first used.
 */

const AGE_RECIPIENT_RE = /^age1[0-9a-z]+$/;

export const fileSink = defineSink({
  type: "file",
  options: {
    dir: nonEmpty.meta({ description: "Directory for the secret files, relative to the config file." }),
    format: z.enum(["json", "env"]).default("json"),
    age_recipients: z
      .array(
        withCheck(
          z.string(),
          patternCheck(
            AGE_RECIPIENT_RE,
            "E_BAD_AGE_RECIPIENT",
            (v) => `\`${show(v)}\` is not an age recipient (\`age1...\`)`,
          ),
        ),
      )
      .min(1)
      .optional()
      .meta({
        description: "Encrypt each file to these age recipients (`age1...`); needs `age_identity_file`.",
      }),
    age_identity_file: nonEmpty.optional().meta({
      description:
        "age identity able to decrypt the files, relative to this file; required with `age_recipients` (every write is read back).",
    }),
  },
  // Checked by `check` (E_AGE_NEEDS_IDENTITY); stated here for editors that read the JSON Schema.
  jsonSchema: { dependentRequired: { age_recipients: ["age_identity_file"] } },
  paths: ["dir", "age_identity_file"],
  // An age file sink without an identity can write but never read a record back, and a secret that
  // cannot be read back is never confirmed as published: it would wait in the journal on every run.
  check(entry) {
    if (entry.age_recipients === undefined || entry.age_identity_file !== undefined) return [];
    return [
      {
        path: ["age_recipients"],
        code: "E_AGE_NEEDS_IDENTITY",
        message:
          "`age_recipients` needs `age_identity_file` (an identity that can decrypt the files): without it no secret can be read back to confirm it was published",
        anchor: "key",
      },
    ];
  },
  describe: describeFileRecord,
  placement(config, address, { show: showPath }) {
    const path = fileRecordPath(config, address);
    return { id: `file:${path}`, shown: `file ${showPath(path)}` };
  },
  localDirs: (config) => [config.dir],
  async create(config, { name, logger }) {
    const { FileSink } = await import("./file-sink.js");
    return new FileSink({
      name,
      logger,
      dir: config.dir,
      format: config.format,
      age_recipients: config.age_recipients,
      age_identity_file: config.age_identity_file,
    });
  },
});

/** A `file` entry of the loaded config: `dir` and `age_identity_file` absolute. */
export type FileSinkConfig = SinkConfigOf<typeof fileSink>;

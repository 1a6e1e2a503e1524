import { z } from "zod";
import { parseDuration } from "../config/duration.js";
import { envNameSchema, nonEmpty, positiveDurationSchema } from "../config/fields.js";
import { defineSink, type SinkConfigOf } from "./descriptor.js";
import { describeExecRecord } from "./naming.js";

/**
 * The `exec` sink's descriptor: a program of the user's choosing stores the secret (its protocol is
 * documented on `ExecSink`, src/sinks/exec-sink.ts, loaded when the sink is first used).
 */
export const execSink = defineSink({
  type: "exec",
  options: {
    command: z
      .array(nonEmpty)
      .min(1)
      .meta({ description: "argv of the program to run (no shell); it reads the secret on stdin." }),
    read_command: z.array(nonEmpty).min(1).meta({
      description:
        "argv of a program that prints the stored record as JSON, or the secret alone on its first line. Required: every written secret is read back before it counts as published.",
    }),
    check_command: z.array(nonEmpty).min(1).optional().meta({ description: "argv of a preflight program." }),
    timeout: positiveDurationSchema.default("30s"),
    pass_env: z.array(envNameSchema).optional().meta({
      description:
        "Environment variables passed to the commands besides PATH, HOME and LANG (e.g. `GNUPGHOME`); no other variable reaches them.",
    }),
  },
  // `command[0]` is kept as written: a relative program path is the command's business.
  resolve: ({ timeout, ...entry }) => ({ ...entry, timeout_seconds: parseDuration(timeout) }),
  describe: describeExecRecord,
  // No `placement`: the command decides where a record goes, so only the same account and key in the
  // same exec sink are known to clash.
  async create(config, { name, logger, env }) {
    const { ExecSink } = await import("./exec-sink.js");
    return new ExecSink({
      name,
      logger,
      env,
      command: config.command,
      read_command: config.read_command,
      check_command: config.check_command,
      timeout_seconds: config.timeout_seconds,
      pass_env: config.pass_env,
    });
  },
});

/** An `exec` entry of the loaded config: the `timeout` in seconds as `timeout_seconds`. */
export type ExecSinkConfig = SinkConfigOf<typeof execSink>;

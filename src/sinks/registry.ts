import { createSinkRegistry, type SinkConfigOf } from "./descriptor.js";
import { execSink } from "./exec.js";
import { fileSink } from "./file.js";
import { kubernetesSink } from "./kubernetes.js";
import { vaultSink } from "./vault.js";

/**
 * Every sink the program knows, in the order the configuration reference lists them: the only list
 * of sinks. The config schema, the loaded config's types, the loader and `validate` are built from
 * it, so adding a sink is its module (see the README, "Writing a sink") and one line here.
 */
export const SINKS = [fileSink, execSink, vaultSink, kubernetesSink] as const;

/** The program's registry: what `loadConfig`, `createSink` and `schema` use unless given another. */
export const sinkRegistry = createSinkRegistry(SINKS);

/** One entry of the loaded config's `sinks:` map, discriminated by `type`. */
export type SinkConfig = SinkConfigOf<typeof SINKS>;

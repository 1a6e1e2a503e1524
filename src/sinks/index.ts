import type { SinkConfig } from "./registry.js";
import { sinkRegistry } from "./registry.js";
import type { SecretSink } from "./types.js";
import type { SinkContext } from "./descriptor.js";

export type { SecretRecord, SecretSink, SinkAddress, SinkResolver, StoredRecord } from "./types.js";
export {
  createSinkRegistry,
  defineSink,
  type SinkContext,
  type SinkDescriptor,
  type SinkRegistry,
} from "./descriptor.js";
export { SINKS, sinkRegistry, type SinkConfig } from "./registry.js";
export type { ExecSinkConfig } from "./exec.js";
export type { FileSinkConfig } from "./file.js";
export type { KubernetesSinkConfig } from "./kubernetes.js";
export type { VaultSinkConfig } from "./vault.js";

/**
 * The sink classes are not re-exported here: each is loaded when a sink of its type is first used
 * (src/sinks/descriptor.ts). Import them from their modules (`./file-sink.js`, ...) to build one
 * directly.
 */

/** The sink types `createSink` knows, for config validation messages. */
export const SINK_TYPES: readonly SinkConfig["type"][] = sinkRegistry.types as SinkConfig["type"][];

/** What sinks take from the process rather than from the config. */
export type SinkDeps = Omit<SinkContext, "name">;

/**
 * Builds the sink a config entry describes, with the program's registry (src/sinks/registry.ts).
 * `name` is the entry's key in `sinks:`, carried into log lines. The sink's implementation is loaded
 * and constructed on its first preflight, read or write: settings it can check without I/O (an
 * unparsable age recipient, an empty argv, a bad URL) fail that first call with `E_SINK_CONFIG`,
 * which is the preflight, before any secret is minted. An unknown type fails here.
 */
export function createSink(name: string, config: SinkConfig, deps: SinkDeps = {}): SecretSink {
  return sinkRegistry.create(name, config, deps);
}

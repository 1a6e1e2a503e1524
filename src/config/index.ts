/**
 * Configuration and desired-state loading: the only module that reads the user's YAML. Everything it
 * returns is plain, resolved data (absolute paths, seconds, defaults applied); every problem it finds
 * is a located `ConfigIssue` inside one `ConfigError`.
 */
export { DEFAULT_CONFIG_FILE, loadConfig, policyFromConfig, type LoadConfigOptions } from "./load-config.js";
export { listDesiredFiles, loadDesiredState, type LoadDesiredOptions } from "./load-desired.js";
export { formatDuration, parseDuration } from "./duration.js";
export {
  configJsonSchema,
  configSchema,
  desiredClientSchema,
  desiredDocumentSchema,
  desiredStateJsonSchema,
  DEFAULT_SINKS,
} from "./schema.js";
export { MAX_FILE_BYTES } from "./yaml-source.js";
export type * from "./types.js";

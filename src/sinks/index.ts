import { SinkError } from "../errors.js";
import type { Logger } from "../log.js";
import { ExecSink } from "./exec-sink.js";
import { FileSink } from "./file-sink.js";
import { KubernetesSink } from "./kubernetes-sink.js";
import type { SecretSink } from "./types.js";
import { VaultSink } from "./vault-sink.js";

export type { SecretRecord, SecretSink, SinkAddress, SinkResolver, StoredRecord } from "./types.js";
export { ExecSink } from "./exec-sink.js";
export { FileSink } from "./file-sink.js";
export { KubernetesSink } from "./kubernetes-sink.js";
export { VaultSink } from "./vault-sink.js";

/**
 * One entry of the config's `sinks:` map, discriminated by `type`. The config loader produces these
 * (paths absolute, durations in seconds); the types live with the rest of the loaded config.
 */
export type {
  ExecSinkConfig,
  FileSinkConfig,
  KubernetesSinkConfig,
  SinkConfig,
  VaultSinkConfig,
} from "../config/types.js";
import type { SinkConfig } from "../config/types.js";

/** The sink types `createSink` knows, for config validation messages. */
export const SINK_TYPES: readonly SinkConfig["type"][] = ["file", "exec", "vault", "kubernetes"];

/** What sinks take from the process rather than from the config. */
export interface SinkDeps {
  logger?: Logger;
  /**
   * Environment for token variables, in-cluster discovery and the variables an exec sink passes on
   * (`pass_env`); `process.env` by default.
   */
  env?: NodeJS.ProcessEnv;
  /** Clock (ms) for cached logins; `Date.now` by default. */
  now?: () => number;
}

/**
 * Builds the sink a config entry describes. `name` is the entry's key in `sinks:`, carried into log
 * lines. Invalid settings a sink can check without I/O (an unparsable age recipient, an empty argv, a
 * bad URL) fail here with `E_SINK_CONFIG`, at startup rather than after a secret was minted.
 */
export function createSink(name: string, config: SinkConfig, deps: SinkDeps = {}): SecretSink {
  const common = { name, logger: deps.logger };
  switch (config.type) {
    case "file":
      return new FileSink({
        ...common,
        dir: config.dir,
        format: config.format,
        age_recipients: config.age_recipients,
        age_identity_file: config.age_identity_file,
      });
    case "exec":
      return new ExecSink({
        ...common,
        command: config.command,
        read_command: config.read_command,
        check_command: config.check_command,
        timeout_seconds: config.timeout_seconds,
        pass_env: config.pass_env,
        env: deps.env,
      });
    case "vault":
      return new VaultSink({
        ...common,
        address: config.address,
        mount: config.mount,
        path_prefix: config.path_prefix,
        token_env: config.token_env,
        token_file: config.token_file,
        kubernetes_role: config.kubernetes_role,
        kubernetes_token_file: config.kubernetes_token_file,
        auth_mount: config.auth_mount,
        namespace: config.namespace,
        ca_file: config.ca_file,
        tls_server_name: config.tls_server_name,
        env: deps.env,
        now: deps.now,
      });
    case "kubernetes":
      return new KubernetesSink({
        ...common,
        namespace: config.namespace,
        name_prefix: config.name_prefix,
        api_server: config.api_server,
        token_file: config.token_file,
        ca_file: config.ca_file,
        env: deps.env,
      });
    default: {
      const type = (config as { type?: unknown }).type;
      throw new SinkError("E_SINK_CONFIG", `sink=${name}: unknown sink type '${String(type)}'`, {
        disposition: "terminal",
        context: { sink: name, type },
      });
    }
  }
}

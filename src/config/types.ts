import type { ConfigIssue } from "../errors.js";
import type { DesiredState, PruneMode, SafetyPolicy, SourceLocation } from "../core/model.js";
import type { SinkConfig } from "../sinks/registry.js";

/**
 * The reconciler's configuration after loading: every path absolute, every duration in seconds, every
 * default applied and every sink resolved, so no other module re-reads or re-defaults the YAML.
 */

/**
 * The sinks' entries come from their descriptors (src/sinks/registry.ts): each type is the validated
 * options of its schema, resolved by the descriptor (`dir` and other paths absolute, exec's `timeout`
 * as `timeout_seconds`), so a sink's options are declared once, in its module.
 */
export type {
  ExecSinkConfig,
  FileSinkConfig,
  KubernetesSinkConfig,
  SinkConfig,
  VaultSinkConfig,
} from "../sinks/index.js";
export type SinkType = SinkConfig["type"];

/** Defaults for rotation of every confidential client, and when the rotator runs. */
export interface RotationConfig {
  /** Seconds between rotations. */
  every: number;
  /** Seconds the old secret stays valid after the new one is written. */
  grace: number;
  /** Five- or six-field cron expression, checked with node-cron. */
  schedule: string;
  /** IANA zone the schedule is read in. */
  timezone: string;
  max_concurrent: number;
}

export interface GitSourceConfig {
  url: string;
  branch: string;
  /** Directory inside the checkout, as written (not resolved: the checkout does not exist yet). */
  path: string;
  /** Seconds between fetches. */
  interval: number;
  /**
   * A config file inside the repository, as written (relative to the repository root): each run takes
   * the settings that decide the plan from it at the commit it applies (engine/daemon.ts
   * `gitDesiredSource`), so what runs is what the pull request's plan used.
   */
  config?: string;
  /** https: the token's environment variable, or its file (absolute); never both. */
  token_env?: string;
  token_file?: string;
  /** Sent with the token as HTTP basic auth; `x-access-token` when a token is given and this is not. */
  username?: string;
  /** ssh: private key and the known hosts trusted (absolute; both or neither). */
  ssh_key_file?: string;
  known_hosts_file?: string;
}

/** `ownership.git`: the ownership inventory published to a ref of the source repository. */
export interface OwnershipGitConfig {
  /** A full ref name (`refs/cf-oauth-gitops/ownership` by default). */
  ref: string;
  /** Where readers (`plan`) fetch it; the clone holding the config file's `origin` when left out. */
  url?: string;
}

/** How `run` reads a desired-state directory (engine/desired-snapshot.ts, core/deferred-deletes.ts). */
export interface DaemonReadConfig {
  /** Seconds a client must stay absent from a directory source before `run` deletes it (0: at once). */
  delete_delay: number;
  /** Seconds the desired files must read the same before `run` plans from them. */
  quiet_period: number;
}

export interface ReconcilerConfig {
  /** Absolute path of the config file that was loaded. */
  config_file: string;
  /** Paths in messages are shown relative to this directory (the cwd at load time) when inside it. */
  display_root: string;
  /** Absolute path of the desired-state file or directory. */
  desired: string;
  /** Where `desired:` was written, so a missing path is reported at the config line that names it. */
  desired_location: SourceLocation;
  /** Default account for desired documents that name none. */
  account_id?: string;
  /** Absolute. */
  state_dir: string;
  prune: PruneMode;
  ignore: string[];
  safety: SafetyPolicy;
  /** Named sinks; `default` is used by entries that name none. */
  sinks: Record<string, SinkConfig>;
  rotation: RotationConfig;
  /** Seconds between reconciles in `run`. */
  interval: number;
  source?: { git: GitSourceConfig };
  /** Where the ownership record is shared between `run` and `plan`; the state directory only when absent. */
  ownership?: { git: OwnershipGitConfig };
  daemon: DaemonReadConfig;
  server: { address: string };
  webhook?: { secret_env?: string; secret_file?: string };
}

/** `DesiredState` plus the warnings found on the way (valid input that is probably a mistake). */
export interface LoadedDesiredState extends DesiredState {
  warnings: ConfigIssue[];
}

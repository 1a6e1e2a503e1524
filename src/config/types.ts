import type { ConfigIssue } from "../errors.js";
import type { DesiredState, PruneMode, SafetyPolicy, SourceLocation } from "../core/model.js";

/**
 * The reconciler's configuration after loading: every path absolute, every duration in seconds, every
 * default applied and every sink resolved, so no other module re-reads or re-defaults the YAML.
 */

/** Writes `<dir>/<key>.json` or `.env`; optionally age-encrypted to the recipients. */
export interface FileSinkConfig {
  type: "file";
  /** Absolute (resolved against the config file's directory). */
  dir: string;
  format: "json" | "env";
  age_recipients?: string[];
  /** Absolute (resolved against the config file's directory). */
  age_identity_file?: string;
}

/** Runs a program (argv, no shell) that receives the secret on stdin. */
export interface ExecSinkConfig {
  type: "exec";
  /** argv; `command[0]` is used as written (a relative program path is the sink's business). */
  command: string[];
  /** Required: a secret that cannot be read back never counts as published. */
  read_command: string[];
  check_command?: string[];
  /** The config's `timeout`, in seconds. */
  timeout_seconds: number;
  /** Variables passed to the commands besides PATH, HOME and LANG. */
  pass_env?: string[];
}

/** HashiCorp Vault KV. No token here: only where to read one from. */
export interface VaultSinkConfig {
  type: "vault";
  address: string;
  mount: string;
  path_prefix: string;
  token_env?: string;
  /** Absolute (resolved against the config file's directory). */
  token_file?: string;
  kubernetes_role?: string;
  /** Absolute (resolved against the config file's directory). */
  kubernetes_token_file?: string;
  auth_mount?: string;
  namespace?: string;
  /** Absolute (resolved against the config file's directory). */
  ca_file?: string;
  tls_server_name?: string;
}

/** Kubernetes Secrets in one namespace. */
export interface KubernetesSinkConfig {
  type: "kubernetes";
  namespace: string;
  name_prefix?: string;
  api_server?: string;
  /** Absolute (resolved against the config file's directory); in-cluster defaults when left out. */
  token_file?: string;
  /** Absolute (resolved against the config file's directory). */
  ca_file?: string;
}

export type SinkConfig = FileSinkConfig | ExecSinkConfig | VaultSinkConfig | KubernetesSinkConfig;
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

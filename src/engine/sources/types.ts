import type { ReconcilerConfig } from "../../config/types.js";
import type { Inventory, Policy } from "../../core/model.js";
import type { ConfigError } from "../../errors.js";
import type { PublishResult } from "../ownership-ref.js";

/** One run's input, as its source prepared it. */
export interface PreparedRun {
  /** The config to load this run's desired state with. */
  config: ReconcilerConfig;
  /** The commit it belongs to (git), null for a directory. */
  revision: string | null;
  /** The policy of this run when the source decides it (`source.git.config`); the daemon's otherwise. */
  policy?: Policy;
  /** The commit's own config file is missing or invalid: the run is `invalid`, nothing is planned. */
  configError?: ConfigError;
}

/**
 * Where the desired state of one run comes from: the watched directory
 * (src/engine/sources/directory.ts) or a git branch (src/engine/sources/git.ts). The daemon asks for
 * one prepared run per run and knows nothing else about either.
 */
export interface DesiredSource {
  readonly kind: "directory" | "git";
  prepare(signal: AbortSignal): Promise<PreparedRun>;
  /** For status: no credentials. */
  describe(): Record<string, string>;
  /**
   * Publishes the inventory to `ref` of the source repository (git only; engine/ownership-ref.ts).
   * Resolves with what the ref holds afterwards.
   */
  publishOwnership?(
    inventory: Inventory,
    ref: string,
    revision: string | null,
    signal: AbortSignal,
  ): Promise<PublishResult>;
}

import type { CreateClientBody, Visibility } from "../api/oauth-clients.js";

/**
 * The plain data the planning core works on. The config loader produces `DesiredState`; the API
 * client produces `LiveClient`s; the state store produces `Inventory`. Nothing here does I/O.
 */

/** Where a desired entry came from, so every message can say file:line:col. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
  /** YAML path, e.g. `clients[3]`. */
  path: string;
}

/** Durations are carried as whole seconds after parsing (`90d` -> 7776000). */
export interface RotationPolicy {
  every: number;
  grace: number;
}

/** Where a client's secret goes: a named sink from the config, and the key inside it. */
export interface SecretTarget {
  sink: string;
  key: string;
}

/**
 * One desired client. The API fields are the whole truth for every writable field: a field left out
 * means "not set", and the planner clears it on the live client, so the YAML alone says what a client is.
 */
export interface DesiredClient {
  account_id: string;
  /** Present and non-absent entries carry the full body; `ensure: absent` entries may carry only a name or id. */
  ensure: "present" | "absent";
  /** Pin or adopt a specific live client. */
  client_id?: string;
  client_name: string;
  /** The writable API fields as the user wrote them (required ones present when `ensure: present`). */
  fields: Partial<CreateClientBody>;
  /**
   * Desired visibility; `private` when left out. Promotion to `public` is one-way (docs/API-BEHAVIOUR.md,
   * "Update").
   */
  visibility: Visibility;
  /** Resolved sink target (defaults from the config applied); null for `none` clients, which have no secret. */
  secret: SecretTarget | null;
  /** Resolved rotation policy (defaults from the config applied); null when rotation is off. */
  rotation: RotationPolicy | null;
  source: SourceLocation;
}

/** Every desired client, grouped by account, in file order. */
export interface DesiredState {
  accounts: Map<string, DesiredClient[]>;
  /** Files read, for status and the "empty desired set" safety check. */
  files: string[];
}

export type PruneMode = "none" | "owned" | "all";

export interface SafetyPolicy {
  /** At most this many deletes per run. */
  max_deletes: number;
  /** At most this percentage of an account's clients changed ... */
  max_change_percent: number;
  /** ... once the account has at least this many clients. */
  min_clients_for_percent: number;
  /** Let an empty desired set delete clients. */
  allow_empty: boolean;
}

export interface Policy {
  prune: PruneMode;
  /** Names or client ids never touched under `prune: all`. */
  ignore: string[];
  safety: SafetyPolicy;
}

/** How a client came to be owned by this tool. */
export type OwnershipOrigin = "created" | "adopted";

export interface InventoryEntry {
  client_id: string;
  client_name: string;
  origin: OwnershipOrigin;
  /** ISO time the entry was recorded. */
  since: string;
}

/** The clients this tool created or adopted, per account (state directory): the only ones it may prune. */
export interface Inventory {
  accounts: Record<string, InventoryEntry[]>;
}

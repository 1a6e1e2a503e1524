import type { CreateClientBody, LiveClient, UpdateClientBody, UpdateField } from "../api/oauth-clients.js";
import type { DesiredState, Inventory, Policy, SecretTarget, SourceLocation } from "./model.js";
import type { BlockedStatus, RotationPhase, SecretActionKindName } from "./rotation-terms.js";

/**
 * The plan: a plain, JSON-able, versioned value (ExternalDNS `plan.Changes`, octoDNS `Plan`). The engine
 * applies it, the renderers print it, `apply --plan FILE` reloads it and checks its checksum. It never
 * holds a secret: creates carry the sink target (where a secret will go), never a value.
 */

/**
 * Bumped on any incompatible change to the shape below; `parsePlan` refuses other versions
 * (`E_PLAN_VERSION`). 2: `rotations` lists the secret planner's operations ({@link RotationItem}).
 */
export const PLAN_VERSION = 2;

/** What `computePlan` works on. Every input is plain data; nothing is read from the environment. */
export interface PlanInput {
  desired: DesiredState;
  /** Live clients per account id, as listed by the API. An account in scope but missing here is skipped. */
  live: Map<string, LiveClient[]>;
  inventory: Inventory;
  policy: Policy;
  /** Apply despite safety violations (`--force`): the verdict turns ok, the violations stay listed. */
  force?: boolean;
  /**
   * The clock, passed in (the core never reads it). computePlan does not use it yet: the plan's
   * rotations are computed apart (src/core/plan-rotations.ts).
   */
  now?: Date;
}

/** Why a delete is planned. */
export type DeleteReason = "ensure-absent" | "prune-owned" | "prune-all";

export interface CreateChange {
  kind: "create";
  account_id: string;
  client_name: string;
  body: CreateClientBody;
  /** Where the create-time secret goes; null for `none` clients. A target, never a value. */
  secret: SecretTarget | null;
  source: SourceLocation;
}

/** One differing field: `old` is the live value (null when unset), `new` what is sent (null clears). */
export interface FieldChange {
  field: UpdateField;
  old: unknown;
  new: unknown;
}

export interface UpdateChange {
  kind: "update";
  account_id: string;
  client_id: string;
  client_name: string;
  /** The live client's `updated_at` when planned: part of the checksum, so a stale plan is refused. */
  updated_at: string | null;
  fields: FieldChange[];
  /** Exactly the differing fields (null for clears); an unchanged `client_uri` is never in it. */
  body: UpdateClientBody;
  source: SourceLocation;
}

export interface DeleteChange {
  kind: "delete";
  account_id: string;
  client_id: string;
  client_name: string;
  updated_at: string | null;
  reason: DeleteReason;
  /** Set for `ensure-absent`: the entry that asked for the delete. */
  source?: SourceLocation;
}

export type Change = CreateChange | UpdateChange | DeleteChange;
export type ChangeKind = Change["kind"];

/** Stable codes for everything that is listed but not changed. */
export type PlanItemCode =
  | "pinned-not-found"
  | "duplicate-live-name"
  | "duplicate-inventory-name"
  | "duplicate-desired"
  | "already-claimed"
  | "missing-required"
  | "needs-replacement"
  | "visibility-downgrade"
  | "visibility-pending"
  | "orphaned"
  | "unmanaged"
  | "not-owned"
  | "ignored"
  | "live-not-read";

/** A client the plan reports on without changing it (conflict, pending, orphaned, unmanaged, skipped). */
export interface PlanItem {
  code: PlanItemCode;
  account_id: string;
  client_name: string;
  client_id?: string;
  reason: string;
  source?: SourceLocation;
}

/** A live client this run starts to own: apply records it in the inventory with origin `adopted`. */
export interface Adoption {
  account_id: string;
  client_id: string;
  client_name: string;
}

/**
 * An inventory entry whose client no longer exists live: apply drops it from the inventory. The
 * engine plans only from lists in which every owned client is either shown or confirmed gone by a
 * 404 (engine/live.ts), so an entry lands here only on that confirmation, never on a list's omission.
 */
export interface StaleInventoryEntry {
  account_id: string;
  client_id: string;
  client_name: string;
}

/**
 * One operation the next `rotate` (mode `auto`, every client) would carry out, as the secret planner
 * (src/core/rotation-plan.ts `planSecrets`) decides it: the same operations, in the same order, with
 * the same actions as `rotate --dry-run` lists (src/core/plan-rotations.ts). A client with nothing to
 * do (current, or waiting out a grace that has not ended) has no item, as it has no operation.
 */
export interface RotationItem {
  /** `resume`: continues a journal entry an earlier run left; `act`: what the client's phase calls for. */
  stage: "resume" | "act";
  account_id: string;
  /** Null for an interrupted create whose answer never came (rotate looks for the client by name). */
  client_id: string | null;
  client_name: string;
  /**
   * The client's phase (as `rotate --status` names it) when the operation begins: before the resume
   * stage for a `resume` item, after it for an `act` item. Null for a client not yet rotatable.
   */
  phase: RotationPhase | null;
  /** When the work fell due: the rotation (`due`, `no-secret`) or the end of the grace (`delete-due`). */
  due_at: string | null;
  /** The kinds of the operation's actions, in the order rotate takes them. */
  actions: SecretActionKindName[];
  /** Set when the operation ends in `wait`: the replaced secret stays valid until then. */
  wait_until?: string;
  /** Set for a `blocked` action: nothing is done; how a run reports it, and what an operator can do. */
  blocked?: { status: BlockedStatus; code: string | null; reason: string };
}

export type SafetyRule = "max-deletes" | "max-change-percent" | "empty-desired" | "owned-vanished";

export interface SafetyViolation {
  rule: SafetyRule;
  message: string;
  account_id?: string;
  count: number;
  limit: number;
  /** True when `force` let the plan through despite this violation. */
  overridden: boolean;
}

export interface SafetyVerdict {
  ok: boolean;
  violations: SafetyViolation[];
}

export interface PlanSummary {
  create: number;
  update: number;
  delete: number;
  conflicts: number;
  pending: number;
  orphaned: number;
  unmanaged: number;
  skipped: number;
  adoptions: number;
  stale_inventory: number;
  rotations: number;
}

export interface Plan {
  version: typeof PLAN_VERSION;
  /** Sorted: create, update, delete; then account_id, client_name, client_id. */
  changes: Change[];
  conflicts: PlanItem[];
  pending: PlanItem[];
  orphaned: PlanItem[];
  unmanaged: PlanItem[];
  skipped: PlanItem[];
  adoptions: Adoption[];
  stale_inventory: StaleInventoryEntry[];
  rotations: RotationItem[];
  safety: SafetyVerdict;
  summary: PlanSummary;
  /** `sha256:<hex>` over the changes, adoptions and each touched client's `updated_at` (see checksum.ts). */
  checksum: string;
}

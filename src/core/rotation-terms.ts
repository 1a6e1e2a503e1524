/**
 * The words of secret rotation that leave the process as data: a client's phase (`rotate --status`,
 * `/status`, the metrics, the plan's rotation section) and the kinds of action the secret planner
 * emits (`rotate --dry-run`, the plan). They are listed here, in a module that imports nothing, so
 * the saved plan's schema (src/core/plan-schema.ts) and its type (src/core/plan-types.ts) can name
 * them without importing the planner, whose own imports lead back to the plan types.
 */

/**
 * Where a client's secret stands (src/core/rotation.ts works it out).
 * - `idle`: current, not due. `due`: age reached `every`.
 * - `in-progress`: an operation is between intent and publish (the engine resumes it).
 * - `unpublished`: a new secret is minted and kept in the journal, the sink has not taken it yet.
 * - `grace`: the new secret is published, the old one stays valid until `next_due_at`.
 * - `delete-due`: grace has passed: the old secret is deleted next.
 * - `unknown-rotated`: `has_rotated_secret` is true and the journal has no operation of ours: left
 *   alone and reported (`rotate --recover` is the way out).
 * - `secret-lost`: our rotation happened but its new secret never reached the journal: the old one
 *   still works; left alone until `rotate --recover`.
 * - `no-secret`: this tool created the client and the sink holds no record of it: a known secret is
 *   minted (never for adopted clients, whose consumers hold a secret we do not know).
 * - `off`: rotation is turned off for this entry.
 */
export const ROTATION_PHASES = [
  "idle",
  "due",
  "in-progress",
  "unpublished",
  "grace",
  "delete-due",
  "unknown-rotated",
  "secret-lost",
  "no-secret",
  "off",
] as const;
export type RotationPhase = (typeof ROTATION_PHASES)[number];

/**
 * The kinds of src/core/rotation-plan.ts `SecretAction`, in the order an operation can take them
 * (that module explains each and checks at compile time that this list names every kind).
 */
export const SECRET_ACTION_KINDS = [
  "start",
  "recover",
  "find-created",
  "drop",
  "mint",
  "publish",
  "delete-old-secret",
  "close",
  "wait",
  "blocked",
  "none",
] as const;
export type SecretActionKindName = (typeof SECRET_ACTION_KINDS)[number];

/** How a run reports a `blocked` action: `attention` and `failed` make it exit 1. */
export const BLOCKED_STATUSES = ["attention", "waiting", "failed"] as const;
export type BlockedStatus = (typeof BLOCKED_STATUSES)[number];

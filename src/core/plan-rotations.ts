import type { RotationItem } from "./plan-types.js";
import { type ClientRotationStatus, clientKey, rotationStatus } from "./rotation.js";
import { journalView, planSecrets, type SecretOp, type SecretPlanInput } from "./rotation-plan.js";

/**
 * The plan's rotation section (`Plan.rotations`), pure: what the next `rotate` would do, taken from
 * the one secret planner (`planSecrets`, mode `auto`, every client) so that `plan`, `rotate --dry-run`
 * and `rotate` never disagree about a client's secret (docs/DESIGN.md, "Every engine is a plan, then its
 * execution"). The engine reads the journal, the live clients and the sinks the way `rotate --dry-run`
 * does (src/engine/secrets/plan.ts `readSecretPlanInput`) and passes them in.
 *
 * Rotations are not part of the plan checksum: they are driven by the clock and carried out by
 * `rotate`, not by `apply`, so they never make a reviewed plan stale.
 */

/** What the plan's rotation section is computed from: the planner's input without a mode or clients. */
export type PlanRotationsInput = Omit<SecretPlanInput, "mode" | "clients" | "resumed">;

/** One item per operation of the next `rotate`, in the order it carries them out. */
export function computePlanRotations(input: PlanRotationsInput): RotationItem[] {
  const plan = planSecrets({ ...input, mode: "auto", clients: [] });
  // A resume item shows the phase the journal leaves the client in; an act item the phase the act
  // stage sees once the resume has done its work (what the planner acted on).
  const before = byClient(
    rotationStatus({
      desired: input.desired,
      live: input.live,
      inventory: input.inventory,
      journal: journalView(input.entries),
      sinkIssuedAt: input.sinkIssuedAt,
      defaultPolicy: input.defaultPolicy,
      now: input.now,
    }),
  );
  const after = byClient(plan.statuses);
  return plan.ops.map((op) => itemOf(op, statusOf(op, op.stage === "resume" ? before : after)));
}

function itemOf(op: SecretOp, status: ClientRotationStatus | undefined): RotationItem {
  const phase = status?.phase ?? null;
  const item: RotationItem = {
    stage: op.stage,
    account_id: op.account_id,
    client_id: op.client_id,
    client_name: op.client_name,
    phase,
    due_at:
      phase === "due" || phase === "no-secret" || phase === "delete-due"
        ? (status?.next_due_at ?? null)
        : null,
    actions: op.actions.map((a) => a.kind),
  };
  for (const action of op.actions) {
    if (action.kind === "wait") item.wait_until = action.until;
    if (action.kind === "blocked") {
      item.blocked = { status: action.status, code: action.code, reason: action.reason };
    }
  }
  return item;
}

function byClient(statuses: readonly ClientRotationStatus[]): Map<string, ClientRotationStatus> {
  return new Map(statuses.map((s) => [clientKey(s.account_id, s.client_id), s]));
}

function statusOf(
  op: SecretOp,
  statuses: ReadonlyMap<string, ClientRotationStatus>,
): ClientRotationStatus | undefined {
  return op.client_id === null ? undefined : statuses.get(clientKey(op.account_id, op.client_id));
}

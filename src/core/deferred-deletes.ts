import type { DeleteChange } from "./plan-types.js";

/**
 * Deferred deletes: the daemon's guard against reading a desired directory in the middle of a write.
 *
 * A half-written file can be valid YAML that lists only some of the clients; planning from it asks
 * to delete the rest, and a delete cannot be undone (a re-create gets a new id and a new secret, and
 * every grant on the old client is gone). So a delete decided from a directory source only goes ahead
 * once the client has been absent from the desired state, run after run, for `delayMs`. The delete
 * itself then happens in a later run, on that run's fresh live read and fresh desired read: the
 * client is still absent, or it would not be in that run's plan.
 *
 * This module is the pure decision: the engine holds the map of first-seen-absent times between
 * runs and filters the plan with the result. A git source does not use it (a commit is whole).
 */

/** One delete that waits. */
export interface HeldDelete {
  change: DeleteChange;
  /** When a run first planned this delete (epoch ms). */
  absentSinceMs: number;
  /** When it may go ahead (epoch ms): `absentSinceMs + delayMs`. */
  eligibleAtMs: number;
}

export interface DeferredDeletesInput {
  /** The deletes of this run's plan. */
  deletes: readonly DeleteChange[];
  /** First-seen-absent times from earlier runs, by {@link deferredDeleteKey}. */
  absentSince: ReadonlyMap<string, number>;
  /** This run's clock reading (epoch ms). */
  nowMs: number;
  /** How long a client must stay absent before its delete goes ahead (ms). 0 deletes at once. */
  delayMs: number;
}

export interface DeferredDeletesDecision {
  /** Deletes absent for at least the delay: apply these now. */
  eligible: DeleteChange[];
  /** Deletes still waiting, soonest first. */
  held: HeldDelete[];
  /**
   * The map to keep for the next run: exactly the clients this plan deletes. A client that is back in
   * the desired state (no longer planned for deletion) drops out, so its clock starts again should it
   * go missing later.
   */
  absentSince: Map<string, number>;
  /** The earliest `eligibleAtMs` among the held deletes (when the next run should look), or null. */
  nextEligibleAtMs: number | null;
}

/** The map key of a planned delete: the live client it deletes. */
export function deferredDeleteKey(change: Pick<DeleteChange, "account_id" | "client_id">): string {
  return `${change.account_id}/${change.client_id}`;
}

/** Splits a plan's deletes into those that go ahead now and those that wait. */
export function deferDeletes(input: DeferredDeletesInput): DeferredDeletesDecision {
  const eligible: DeleteChange[] = [];
  const held: HeldDelete[] = [];
  const absentSince = new Map<string, number>();
  for (const change of input.deletes) {
    const key = deferredDeleteKey(change);
    const since = input.absentSince.get(key) ?? input.nowMs;
    absentSince.set(key, since);
    const eligibleAtMs = since + input.delayMs;
    if (input.nowMs >= eligibleAtMs) eligible.push(change);
    else held.push({ change, absentSinceMs: since, eligibleAtMs });
  }
  held.sort((a, b) => a.eligibleAtMs - b.eligibleAtMs);
  return { eligible, held, absentSince, nextEligibleAtMs: held[0]?.eligibleAtMs ?? null };
}

import type { SafetyPolicy } from "./model.js";
import type { SafetyVerdict, SafetyViolation } from "./plan-types.js";

/**
 * Safety valves, after octoDNS's `TooMuchChange`: a plan that would change too much is refused unless
 * the operator passes `--force`, and the message carries the numbers so the operator can judge.
 *
 * - `max-deletes`: more than `max_deletes` deletes in the whole run.
 * - `max-change-percent`: in an account with at least `min_clients_for_percent` live clients, more
 *   changes (creates, updates and deletes) than `max_change_percent` % of its live clients. Creates
 *   count: a wave of creates in an established account is what a bad read looks like (clients that
 *   seem missing are re-created as duplicates), so it deserves the same second look as a wave of
 *   deletes. No separate `max_creates` knob: the same percentage covers both.
 * - `empty-desired`: an account with zero present entries would lose clients to pruning and
 *   `allow_empty` is off (an emptied or deleted desired file must not wipe an account). Explicit
 *   `ensure: absent` deletes do not count here: they cannot come from an accidentally emptied file.
 * - `owned-vanished`: more than half of the clients an account's inventory owns are gone at once
 *   (each confirmed by a 404: engine/live.ts), whatever `min_clients_for_percent` says. Most of a
 *   fleet disappearing between two runs is an accident, an outage or the wrong account, not a change
 *   to follow blindly: forgetting them and re-creating them from the desired state would hand out
 *   new ids and secrets and drop every grant. `--force` accepts the loss.
 *
 * With `force` the verdict is ok but every violation is still listed, marked `overridden`.
 */

/** What one account contributes to the verdict. */
export interface AccountTally {
  account_id: string;
  /** Live clients in the account before the plan. */
  live: number;
  creates: number;
  updates: number;
  deletes: number;
  /** Deletes caused by pruning (not by `ensure: absent`). */
  prune_deletes: number;
  /** Desired entries with `ensure: present`. */
  present: number;
  /** Distinct clients the inventory owns in the account before the plan. */
  owned: number;
  /** Owned clients confirmed gone (the plan's stale inventory entries in this account). */
  vanished: number;
}

/** `owned-vanished` fires when more than this percentage of the owned clients are gone at once. */
export const MAX_VANISHED_PERCENT = 50;

/** Judges the planned changes against the policy. Pure; violations in a stable order. */
export function evaluateSafety(
  tallies: readonly AccountTally[],
  policy: SafetyPolicy,
  force: boolean,
): SafetyVerdict {
  const violations: SafetyViolation[] = [];
  const totalDeletes = tallies.reduce((n, t) => n + t.deletes, 0);
  if (totalDeletes > policy.max_deletes) {
    violations.push({
      rule: "max-deletes",
      message: `${totalDeletes} ${totalDeletes === 1 ? "client" : "clients"} would be deleted in this run; the limit is ${policy.max_deletes}; use --force to apply anyway`,
      count: totalDeletes,
      limit: policy.max_deletes,
      overridden: force,
    });
  }
  for (const t of [...tallies].sort((a, b) => cmp(a.account_id, b.account_id))) {
    const percent = percentViolation(t, policy, force);
    if (percent) violations.push(percent);
    const empty = emptyViolation(t, policy, force);
    if (empty) violations.push(empty);
    const vanished = vanishedViolation(t, force);
    if (vanished) violations.push(vanished);
  }
  return { ok: force || violations.length === 0, violations };
}

function percentViolation(
  t: AccountTally,
  policy: SafetyPolicy,
  force: boolean,
): SafetyViolation | undefined {
  const changed = t.creates + t.updates + t.deletes;
  if (t.live < policy.min_clients_for_percent || t.live === 0) return undefined;
  if (changed * 100 <= policy.max_change_percent * t.live) return undefined;
  const what =
    t.creates === 0
      ? `${changed} of ${t.live} clients (${formatPercent(changed, t.live)}) would change`
      : `${changed} changes (${t.creates} to create, ${t.updates} to update, ${t.deletes} to delete) against ` +
        `${t.live} live clients (${formatPercent(changed, t.live)})`;
  return {
    rule: "max-change-percent",
    account_id: t.account_id,
    message:
      `account ${shortId(t.account_id)}: ${what}; ` +
      `the limit is ${policy.max_change_percent}% once an account has ${policy.min_clients_for_percent} or more; ` +
      `use --force to apply anyway`,
    count: changed,
    limit: policy.max_change_percent,
    overridden: force,
  };
}

function emptyViolation(t: AccountTally, policy: SafetyPolicy, force: boolean): SafetyViolation | undefined {
  if (policy.allow_empty || t.present > 0 || t.prune_deletes === 0) return undefined;
  return {
    rule: "empty-desired",
    account_id: t.account_id,
    message:
      `account ${shortId(t.account_id)}: the desired set is empty (no present clients) and ${t.prune_deletes} ` +
      `${t.prune_deletes === 1 ? "client" : "clients"} would be pruned; set safety.allow_empty to allow it, ` +
      `or use --force to apply anyway`,
    count: t.prune_deletes,
    limit: 0,
    overridden: force,
  };
}

function vanishedViolation(t: AccountTally, force: boolean): SafetyViolation | undefined {
  if (t.vanished === 0 || t.vanished * 100 <= MAX_VANISHED_PERCENT * t.owned) return undefined;
  return {
    rule: "owned-vanished",
    account_id: t.account_id,
    message:
      `account ${shortId(t.account_id)}: ${t.vanished} of the ${t.owned} clients this tool owns ` +
      `(${formatPercent(t.vanished, t.owned)}) are gone (a GET of each answered 404); more than ` +
      `${MAX_VANISHED_PERCENT}% vanishing at once is refused, so check the account and the credentials, ` +
      `then use --force to forget them (and re-create what the desired state still names)`,
    count: t.vanished,
    limit: MAX_VANISHED_PERCENT,
    overridden: force,
  };
}

/** `60%`, or one decimal when rounding would hide that the limit is exceeded (`30.4%`). */
function formatPercent(part: number, whole: number): string {
  const exact = (part * 100) / whole;
  return Number.isInteger(exact) ? `${exact}%` : `${exact.toFixed(1)}%`;
}

/** The first 8 characters of an id and an ellipsis: enough to tell accounts apart in a message. */
export function shortId(id: string): string {
  return id.length > 9 ? `${id.slice(0, 8)}…` : id;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

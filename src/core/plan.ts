import type { LiveClient } from "../api/oauth-clients.js";
import { checksumOf } from "./checksum.js";
import {
  compareClient,
  createBody,
  normaliseLive,
  pendingReason,
  prepareDesired,
  promotionGaps,
} from "./compare.js";
import type { PreparedDesired } from "./compare.js";
import { indexInventory, indexLive, matchAccount } from "./match.js";
import type { InventoryIndex, MatchResult } from "./match.js";
import type { DesiredClient, Inventory, Policy } from "./model.js";
import {
  PLAN_VERSION,
  type Adoption,
  type Change,
  type DeleteChange,
  type Plan,
  type PlanInput,
  type PlanItem,
  type PlanItemCode,
  type StaleInventoryEntry,
} from "./plan-types.js";
import { evaluateSafety, type AccountTally } from "./safety.js";
import { compareChanges, compareItems, compareStrings } from "./sort.js";

/**
 * The planner: desired state + live clients + inventory + policy -> `Plan`. Pure and deterministic
 * (no clock, no I/O, no logging): the same input always gives the same plan and checksum.
 *
 * Scope: every account with a desired document (a key in `desired.accounts`, even with no entries),
 * plus every account where the inventory owns clients, so that removing a whole file still prunes
 * under `prune: owned` (and lists orphans under `prune: none`). An account without a desired document
 * is planned for its owned clients only: `prune: all` never reaches into it, and its other clients are
 * listed as unmanaged. An account in scope but missing from `live` is skipped (`live-not-read`).
 *
 * Deletes:
 * - `ensure: absent` deletes the client it matches (pin, inventory, unique name) when the client is
 *   pinned by that entry, or owned, or `prune: all` is on and the client is not in `policy.ignore`.
 *   A foreign client matched only by name under `prune: none|owned` is `skipped` (`not-owned`): a name
 *   alone does not authorise deleting something this tool never created or adopted.
 * - Live clients no entry claims: owned ones are `orphaned` under `prune: none` and deleted
 *   (`prune-owned`) under `owned` and `all`; foreign ones are deleted (`prune-all`) under `all` in
 *   accounts with a desired document, else listed as `unmanaged`. `policy.ignore` (names or ids)
 *   protects a client from every prune delete; such a client is listed as `skipped` (`ignored`).
 * - Clients caught in a matching conflict are held: never pruned, never listed as unmanaged.
 */
export function computePlan(input: PlanInput): Plan {
  const acc = new Accumulator();
  const tallies: AccountTally[] = [];
  for (const accountId of accountsInScope(input.desired.accounts, input.inventory)) {
    const tally = planAccount(accountId, input, acc);
    if (tally) tallies.push(tally);
  }
  const safety = evaluateSafety(tallies, input.policy.safety, input.force === true);
  return acc.finish(safety);
}

/**
 * The accounts the planner looks at (sorted): desired accounts plus accounts where the inventory owns
 * clients. The engine lists live clients for exactly these.
 */
export function accountsInScope(desired: Map<string, DesiredClient[]>, inventory: Inventory): string[] {
  const ids = new Set(desired.keys());
  for (const [id, entries] of Object.entries(inventory.accounts)) if (entries.length > 0) ids.add(id);
  return [...ids].sort(compareStrings);
}

/** True when applying the plan would call the API or write the inventory. */
export function planHasWork(plan: Plan): boolean {
  return plan.changes.length > 0 || plan.adoptions.length > 0 || plan.stale_inventory.length > 0;
}

/** Collects the pieces of a plan across accounts, then sorts and seals them. */
class Accumulator {
  readonly changes: Change[] = [];
  readonly conflicts: PlanItem[] = [];
  readonly pending: PlanItem[] = [];
  readonly orphaned: PlanItem[] = [];
  readonly unmanaged: PlanItem[] = [];
  readonly skipped: PlanItem[] = [];
  readonly adoptions: Adoption[] = [];
  readonly stale: StaleInventoryEntry[] = [];

  finish(safety: Plan["safety"]): Plan {
    const count = (kind: Change["kind"]) => this.changes.filter((c) => c.kind === kind).length;
    const plan: Plan = {
      version: PLAN_VERSION,
      changes: this.changes.sort(compareChanges),
      conflicts: this.conflicts.sort(compareItems),
      pending: this.pending.sort(compareItems),
      orphaned: this.orphaned.sort(compareItems),
      unmanaged: this.unmanaged.sort(compareItems),
      skipped: this.skipped.sort(compareItems),
      adoptions: this.adoptions.sort(compareItems),
      stale_inventory: this.stale.sort(compareItems),
      rotations: [],
      safety,
      summary: {
        create: count("create"),
        update: count("update"),
        delete: count("delete"),
        conflicts: this.conflicts.length,
        pending: this.pending.length,
        orphaned: this.orphaned.length,
        unmanaged: this.unmanaged.length,
        skipped: this.skipped.length,
        adoptions: this.adoptions.length,
        stale_inventory: this.stale.length,
        rotations: 0,
      },
      checksum: "",
    };
    plan.checksum = checksumOf(plan);
    return plan;
  }
}

/** Everything one account's planning needs. */
interface AccountContext {
  accountId: string;
  policy: Policy;
  inventory: InventoryIndex;
  ignore: Set<string>;
  acc: Accumulator;
  tally: AccountTally;
}

function planAccount(accountId: string, input: PlanInput, acc: Accumulator): AccountTally | undefined {
  const entries = input.desired.accounts.get(accountId);
  const owned = input.inventory.accounts[accountId] ?? [];
  const live = input.live.get(accountId);
  if (!live) {
    skipUnread(accountId, entries ?? [], owned, acc);
    return undefined;
  }
  const liveIndex = indexLive(live);
  const inventory = indexInventory(owned, liveIndex);
  for (const e of inventory.stale) {
    acc.stale.push({ account_id: accountId, client_id: e.client_id, client_name: e.client_name });
  }
  const list = entries ?? [];
  const ctx: AccountContext = {
    accountId,
    policy: input.policy,
    inventory,
    ignore: new Set(input.policy.ignore),
    acc,
    tally: {
      account_id: accountId,
      live: live.length,
      creates: 0,
      updates: 0,
      deletes: 0,
      prune_deletes: 0,
      present: list.filter((e) => e.ensure === "present").length,
      owned: inventory.ownedIds.size,
      vanished: inventory.stale.length,
    },
  };
  const match = matchAccount(list, liveIndex, inventory);
  list.forEach((entry, i) => planEntry(ctx, entry, match.results[i]!));
  for (const client of live) {
    if (match.claimed.has(client.client_id) || match.held.has(client.client_id)) continue;
    planUnclaimed(ctx, client, entries !== undefined);
  }
  return ctx.tally;
}

function skipUnread(
  accountId: string,
  entries: readonly DesiredClient[],
  owned: Inventory["accounts"][string],
  acc: Accumulator,
): void {
  const reason = "live clients of this account were not read; nothing is planned for it";
  for (const e of entries) {
    acc.skipped.push(item("live-not-read", accountId, e.client_name, reason, e.client_id, e.source));
  }
  if (entries.length === 0) {
    for (const e of owned)
      acc.skipped.push(item("live-not-read", accountId, e.client_name, reason, e.client_id));
  }
}

function planEntry(ctx: AccountContext, entry: DesiredClient, result: MatchResult): void {
  if (result.status === "conflict") {
    const id = entry.client_id;
    ctx.acc.conflicts.push(
      item(result.code, ctx.accountId, entry.client_name, result.reason, id, entry.source),
    );
    return;
  }
  const live = result.status === "matched" ? result.live : undefined;
  if (entry.ensure === "absent") {
    if (live) planAbsent(ctx, entry, live);
    return;
  }
  const desired = prepareDesired(entry);
  if (desired.missing.length > 0) {
    const reason = `required fields missing: ${desired.missing.join(", ")}`;
    ctx.acc.conflicts.push(
      item("missing-required", ctx.accountId, entry.client_name, reason, live?.client_id, entry.source),
    );
    return;
  }
  if (live) planMatched(ctx, desired, live);
  else planCreate(ctx, desired);
}

function planCreate(ctx: AccountContext, desired: PreparedDesired): void {
  const { entry } = desired;
  ctx.tally.creates++;
  ctx.acc.changes.push({
    kind: "create",
    account_id: ctx.accountId,
    client_name: entry.client_name,
    body: createBody(desired),
    secret: entry.secret,
    source: entry.source,
  });
  if (entry.visibility === "public") {
    const reason = pendingReason(promotionGaps(desired, undefined));
    ctx.acc.pending.push(
      item("visibility-pending", ctx.accountId, entry.client_name, reason, undefined, entry.source),
    );
  }
}

function planMatched(ctx: AccountContext, desired: PreparedDesired, live: LiveClient): void {
  const { entry } = desired;
  const result = compareClient(desired, live, normaliseLive(live));
  const report = (list: PlanItem[], code: PlanItemCode, reason: string) =>
    list.push(item(code, ctx.accountId, entry.client_name, reason, live.client_id, entry.source));
  for (const c of result.conflicts) report(ctx.acc.conflicts, c.code, c.reason);
  if (result.conflicts.some((c) => c.blocking)) return;
  for (const p of result.pending) report(ctx.acc.pending, p.code, p.reason);
  if (!ctx.inventory.ownedIds.has(live.client_id)) {
    ctx.acc.adoptions.push({
      account_id: ctx.accountId,
      client_id: live.client_id,
      client_name: entry.client_name,
    });
  }
  if (result.fields.length === 0) return;
  ctx.tally.updates++;
  ctx.acc.changes.push({
    kind: "update",
    account_id: ctx.accountId,
    client_id: live.client_id,
    client_name: entry.client_name,
    updated_at: live.updated_at ?? null,
    fields: result.fields,
    body: result.body,
    source: entry.source,
  });
}

function planAbsent(ctx: AccountContext, entry: DesiredClient, live: LiveClient): void {
  const pinned = entry.client_id === live.client_id;
  const owned = ctx.inventory.ownedIds.has(live.client_id);
  const byPruneAll = ctx.policy.prune === "all" && !isIgnored(ctx, live);
  if (pinned || owned || byPruneAll) {
    pushDelete(ctx, live, "ensure-absent", entry);
    return;
  }
  const reason =
    ctx.policy.prune === "all"
      ? "matched by name only and listed in policy.ignore; pin client_id to delete it"
      : `matched by name only and not owned by this tool; pin client_id (or use prune: all) to delete it`;
  ctx.acc.skipped.push(
    item("not-owned", ctx.accountId, entry.client_name, reason, live.client_id, entry.source),
  );
}

function planUnclaimed(ctx: AccountContext, live: LiveClient, hasDocument: boolean): void {
  const name = live.client_name ?? "";
  const owned = ctx.inventory.ownedIds.has(live.client_id);
  const prune = ctx.policy.prune;
  if (owned && prune === "none") {
    const reason =
      "owned by this tool but no longer desired; left alone under prune: none (prune: owned deletes it)";
    ctx.acc.orphaned.push(item("orphaned", ctx.accountId, name, reason, live.client_id));
    return;
  }
  const wouldDelete = owned || (prune === "all" && hasDocument);
  if (!wouldDelete) {
    const reason = "not in the desired state and not owned by this tool; never touched";
    ctx.acc.unmanaged.push(item("unmanaged", ctx.accountId, name, reason, live.client_id));
    return;
  }
  if (isIgnored(ctx, live)) {
    ctx.acc.skipped.push(
      item("ignored", ctx.accountId, name, "listed in policy.ignore; not pruned", live.client_id),
    );
    return;
  }
  ctx.tally.prune_deletes++;
  pushDelete(ctx, live, owned ? "prune-owned" : "prune-all");
}

function pushDelete(
  ctx: AccountContext,
  live: LiveClient,
  reason: DeleteChange["reason"],
  entry?: DesiredClient,
): void {
  ctx.tally.deletes++;
  ctx.acc.changes.push({
    kind: "delete",
    account_id: ctx.accountId,
    client_id: live.client_id,
    client_name: live.client_name ?? entry?.client_name ?? "",
    updated_at: live.updated_at ?? null,
    reason,
    ...(entry ? { source: entry.source } : {}),
  });
}

function isIgnored(ctx: AccountContext, live: LiveClient): boolean {
  return (
    ctx.ignore.has(live.client_id) || (live.client_name !== undefined && ctx.ignore.has(live.client_name))
  );
}

function item(
  code: PlanItemCode,
  accountId: string,
  clientName: string,
  reason: string,
  clientId?: string,
  source?: DesiredClient["source"],
): PlanItem {
  return {
    code,
    account_id: accountId,
    client_name: clientName,
    ...(clientId !== undefined ? { client_id: clientId } : {}),
    reason,
    ...(source ? { source } : {}),
  };
}

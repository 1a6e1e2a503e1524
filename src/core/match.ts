import type { LiveClient } from "../api/oauth-clients.js";
import type { DesiredClient, InventoryEntry, SourceLocation } from "./model.js";
import type { PlanItemCode } from "./plan-types.js";

/**
 * Matching desired entries to live clients, one account at a time. The order is fixed and strict so the
 * planner never guesses (ExternalDNS's ownership rules, made explicit):
 *
 * 1. a pinned `client_id` (missing live: a `pinned-not-found` conflict for a present entry, never a
 *    create; nothing at all for an absent one, which is already satisfied);
 * 2. the inventory: the live client this tool owns under that name;
 * 3. a live client with that `client_name`, only when it is the only live client with that name.
 *
 * Each live client is claimed by at most one entry; a second claim is an `already-claimed` conflict. Live
 * clients involved in an ambiguity are `held`: the prune step must not touch them either.
 *
 * A rename without a pin is not a rename: the inventory is keyed by name, so the new name creates a new
 * client and the old one becomes orphaned. Pin `client_id` to rename in place.
 */

export type MatchVia = "pin" | "inventory" | "name";

export type MatchResult =
  | { status: "matched"; live: LiveClient; via: MatchVia }
  | { status: "unmatched" }
  | { status: "conflict"; code: PlanItemCode; reason: string };

/** Live clients of one account, indexed once. */
export interface LiveIndex {
  byId: Map<string, LiveClient>;
  byName: Map<string, LiveClient[]>;
}

/** The inventory of one account, indexed against the live clients. */
export interface InventoryIndex {
  /** Every owned id, live or not: a matched client outside this set is an adoption. */
  ownedIds: Set<string>;
  /** Owned entries whose client still exists live, by inventory name. */
  liveByName: Map<string, InventoryEntry[]>;
  /** Owned entries whose client no longer exists live. */
  stale: InventoryEntry[];
}

export interface AccountMatch {
  /** One result per entry, in entry order. */
  results: MatchResult[];
  /** Live ids claimed by an entry. */
  claimed: Set<string>;
  /** Live ids involved in a matching conflict: never pruned, never listed as unmanaged. */
  held: Set<string>;
}

/** Indexes live clients by id and by name (clients without a name are only reachable by id). */
export function indexLive(clients: readonly LiveClient[]): LiveIndex {
  const byId = new Map<string, LiveClient>();
  const byName = new Map<string, LiveClient[]>();
  for (const c of clients) {
    byId.set(c.client_id, c);
    if (c.client_name === undefined) continue;
    const same = byName.get(c.client_name);
    if (same) same.push(c);
    else byName.set(c.client_name, [c]);
  }
  return { byId, byName };
}

/** Splits an account's inventory into live-present entries (by name) and stale ones. */
export function indexInventory(entries: readonly InventoryEntry[], live: LiveIndex): InventoryIndex {
  const ownedIds = new Set<string>();
  const liveByName = new Map<string, InventoryEntry[]>();
  const stale: InventoryEntry[] = [];
  for (const e of entries) {
    if (ownedIds.has(e.client_id)) continue;
    ownedIds.add(e.client_id);
    if (!live.byId.has(e.client_id)) {
      stale.push(e);
      continue;
    }
    const same = liveByName.get(e.client_name);
    if (same) same.push(e);
    else liveByName.set(e.client_name, [e]);
  }
  return { ownedIds, liveByName, stale };
}

/** `file:line:col`, for messages that point at the other entry. */
export function where(source: SourceLocation): string {
  return `${source.file}:${source.line}:${source.col}`;
}

/** Matches every entry of one account (present and absent) against its live clients. */
export function matchAccount(
  entries: readonly DesiredClient[],
  live: LiveIndex,
  inventory: InventoryIndex,
): AccountMatch {
  const results: (MatchResult | undefined)[] = entries.map(() => undefined);
  const claimedBy = new Map<string, DesiredClient>();
  const held = new Set<string>();
  const ctx: MatchContext = { entries, live, inventory, results, claimedBy, held };
  markDuplicateEntries(ctx);
  for (let i = 0; i < entries.length; i++) if (results[i] === undefined) matchPinned(ctx, i);
  for (let i = 0; i < entries.length; i++) if (results[i] === undefined) matchInventory(ctx, i);
  for (let i = 0; i < entries.length; i++) if (results[i] === undefined) matchName(ctx, i);
  return {
    results: results.map((r) => r ?? { status: "unmatched" }),
    claimed: new Set(claimedBy.keys()),
    held,
  };
}

interface MatchContext {
  entries: readonly DesiredClient[];
  live: LiveIndex;
  inventory: InventoryIndex;
  results: (MatchResult | undefined)[];
  claimedBy: Map<string, DesiredClient>;
  held: Set<string>;
}

/** The same pin twice, or the same unpinned name twice: the later entries are conflicts. */
function markDuplicateEntries(ctx: MatchContext): void {
  const seen = new Map<string, DesiredClient>();
  ctx.entries.forEach((entry, i) => {
    const key = entry.client_id !== undefined ? `id:${entry.client_id}` : `name:${entry.client_name}`;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, entry);
      return;
    }
    if (entry.client_id !== undefined) ctx.held.add(entry.client_id);
    ctx.results[i] = {
      status: "conflict",
      code: "duplicate-desired",
      reason: `declared twice in the desired state (also at ${where(first.source)})`,
    };
  });
}

function matchPinned(ctx: MatchContext, i: number): void {
  const entry = ctx.entries[i]!;
  if (entry.client_id === undefined) return;
  const found = ctx.live.byId.get(entry.client_id);
  if (found) {
    claim(ctx, i, found, "pin");
    return;
  }
  ctx.results[i] =
    entry.ensure === "absent"
      ? { status: "unmatched" }
      : {
          status: "conflict",
          code: "pinned-not-found",
          reason: `pinned client not found: no live client has client_id ${entry.client_id}; it is never re-created, remove the pin to create a new client`,
        };
}

function matchInventory(ctx: MatchContext, i: number): void {
  const entry = ctx.entries[i]!;
  const owned = ctx.inventory.liveByName.get(entry.client_name);
  if (!owned) return;
  if (owned.length > 1) {
    for (const e of owned) ctx.held.add(e.client_id);
    ctx.results[i] = {
      status: "conflict",
      code: "duplicate-inventory-name",
      reason: `the inventory owns ${owned.length} live clients named "${entry.client_name}" (${ids(owned)}); pin one with client_id`,
    };
    return;
  }
  claim(ctx, i, ctx.live.byId.get(owned[0]!.client_id)!, "inventory");
}

function matchName(ctx: MatchContext, i: number): void {
  const entry = ctx.entries[i]!;
  const same = ctx.live.byName.get(entry.client_name);
  if (!same) return;
  if (same.length > 1) {
    for (const c of same) ctx.held.add(c.client_id);
    ctx.results[i] = {
      status: "conflict",
      code: "duplicate-live-name",
      reason: `${same.length} live clients are named "${entry.client_name}" (${ids(same)}); pin one with client_id`,
    };
    return;
  }
  claim(ctx, i, same[0]!, "name");
}

function claim(ctx: MatchContext, i: number, live: LiveClient, via: MatchVia): void {
  const entry = ctx.entries[i]!;
  const other = ctx.claimedBy.get(live.client_id);
  if (other) {
    ctx.results[i] = {
      status: "conflict",
      code: "already-claimed",
      reason: `live client ${live.client_id} ("${live.client_name ?? ""}") is already matched to the entry at ${where(other.source)}; pin client_id to say which client this entry means`,
    };
    return;
  }
  ctx.claimedBy.set(live.client_id, entry);
  ctx.results[i] = { status: "matched", live, via };
}

function ids(items: readonly { client_id: string }[]): string {
  return items
    .map((c) => c.client_id)
    .sort()
    .join(", ");
}

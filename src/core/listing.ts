import type { LiveClient } from "../api/oauth-clients.js";
import type { DesiredState, Inventory } from "./model.js";

/**
 * What a list answer must show, and what to conclude when it does not. Pure: the engine
 * (src/engine/live.ts) does the GETs and passes their outcomes in.
 *
 * A list answer can be `success: true` and still leave clients out (a proxy, a bug, a partial
 * outage). Planned from such an answer, every owned client it left out would look deleted: the
 * inventory would forget it, a create would duplicate it, and the original would go unmanaged with
 * valid secrets. So a client the tool has a record of (owned in the inventory, pinned by a desired
 * entry, or named by a journal entry) counts as gone only when a GET of it answers 404; a GET that
 * finds it proves the list incomplete, and a GET that fails proves nothing. Either way the run stops
 * before planning, and nothing is changed.
 */

/** Per account: the client ids a list must show (or a GET confirm gone), and how many are owned. */
export interface ExpectedClients {
  ids: Set<string>;
  /** Distinct ids the inventory owns in this account (for the message). */
  owned: number;
}

/** A journal entry as far as listing cares: the client it is about, if it has one yet. */
export interface JournalRef {
  account_id: string;
  client_id: string | null;
}

/**
 * The ids each account's list must account for: every id the inventory owns, every pinned
 * `client_id` of a desired entry, and every client a journal entry names (so that journal
 * compaction, too, acts only on a confirmed absence). Only accounts in `accounts` are kept.
 */
export function expectedClients(
  accounts: readonly string[],
  desired: DesiredState,
  inventory: Inventory,
  journal: readonly JournalRef[] = [],
): Map<string, ExpectedClients> {
  const out = new Map<string, ExpectedClients>();
  for (const account of accounts) {
    const owned = new Set((inventory.accounts[account] ?? []).map((e) => e.client_id));
    const ids = new Set(owned);
    for (const entry of desired.accounts.get(account) ?? []) {
      if (entry.client_id !== undefined) ids.add(entry.client_id);
    }
    for (const entry of journal) {
      if (entry.account_id === account && entry.client_id !== null) ids.add(entry.client_id);
    }
    out.set(account, { ids, owned: owned.size });
  }
  return out;
}

/** Expected ids the list did not show, sorted: each needs a GET before anything may conclude it is gone. */
export function unlistedIds(listed: readonly LiveClient[], expected: ExpectedClients | undefined): string[] {
  if (!expected) return [];
  const seen = new Set(listed.map((c) => c.client_id));
  return [...expected.ids].filter((id) => !seen.has(id)).sort();
}

/** What a GET of one unlisted client answered. */
export type ConfirmOutcome =
  | { client_id: string; status: "gone" }
  | { client_id: string; status: "found" }
  | { client_id: string; status: "failed"; error: { code: string; message: string } };

/** The verdict on one account's list, once every unlisted id has been looked up. */
export type ListVerdict =
  | { ok: true; gone: Set<string> }
  | {
      ok: false;
      /** E_LIST_INCOMPLETE: a GET found a client the list left out. E_LIST_UNCONFIRMED: a GET failed. */
      code: "E_LIST_INCOMPLETE" | "E_LIST_UNCONFIRMED";
      message: string;
      /** The ids found (E_LIST_INCOMPLETE) or not looked up successfully (E_LIST_UNCONFIRMED). */
      client_ids: string[];
    };

/** How many ids a message names before it says `and N more`. */
const NAMED_IDS = 3;

/**
 * Judges one account's list: complete when every unlisted id was confirmed gone (404). A client that
 * exists but was not listed outweighs a failed lookup: it is the stronger evidence, and says what is
 * wrong with the answer.
 */
export function judgeListing(
  accountId: string,
  listed: number,
  expected: ExpectedClients,
  outcomes: readonly ConfirmOutcome[],
): ListVerdict {
  const seen = `the list showed ${listed} ${plural(listed, "client", "clients")} and the inventory owns ${expected.owned}`;
  const found = outcomes.filter((o) => o.status === "found").map((o) => o.client_id);
  if (found.length > 0) {
    const which =
      found.length === 1
        ? `client ${found[0]} exists but was not listed`
        : `clients ${namedIds(found)} exist but were not listed`;
    return {
      ok: false,
      code: "E_LIST_INCOMPLETE",
      message: `account ${accountId}: ${seen}; ${which}: the list answer is incomplete, so nothing is planned or changed; run again later`,
      client_ids: found,
    };
  }
  const failed = outcomes.filter((o) => o.status === "failed");
  if (failed.length > 0) {
    const first = failed[0]!;
    return {
      ok: false,
      code: "E_LIST_UNCONFIRMED",
      message:
        `account ${accountId}: ${seen}; ${plural(failed.length, "client", "clients")} ${namedIds(failed.map((o) => o.client_id))} ` +
        `${failed.length === 1 ? "was" : "were"} not listed and could not be looked up (${first.error.code}: ${first.error.message}); ` +
        `nothing is planned or changed; run again later`,
      client_ids: failed.map((o) => o.client_id),
    };
  }
  return { ok: true, gone: new Set(outcomes.map((o) => o.client_id)) };
}

function namedIds(ids: readonly string[]): string {
  const shown = ids.slice(0, NAMED_IDS).join(", ");
  return ids.length > NAMED_IDS ? `${shown} and ${ids.length - NAMED_IDS} more` : shown;
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

import type { OAuthClientsReader } from "../cloudflare/client.js";
import { isApiError } from "../cloudflare/errors.js";
import type { LiveClient } from "../api/oauth-clients.js";
import { type ConfirmOutcome, type ExpectedClients, judgeListing, unlistedIds } from "../core/listing.js";
import { errorSummary, GitOpsError } from "../errors.js";
import { mapSettledBounded } from "./pool.js";

/** The live state of the accounts in scope, as far as it could be confirmed. */
export interface LiveView {
  /** Live clients per account, exactly as listed. */
  clients: Map<string, LiveClient[]>;
  /**
   * Per account, the expected clients a GET answered 404 for: the only evidence on which the
   * inventory forgets a client or the journal drops its entries (core/listing.ts).
   */
  gone: Map<string, Set<string>>;
}

/**
 * Lists the live clients of every account, four accounts at a time, and confirms the answers: each
 * client in `expected` (owned, pinned or journaled; core/listing.ts) that a list did not show is looked
 * up with a GET. One list call per account is the whole read cost of a converged run; a GET is spent
 * only on a client that is missing from its list.
 *
 * Any failed list, a list whose `total_count` disagrees with it (E_API_LIST_COUNT_MISMATCH), a client
 * that a GET finds although the list left it out (E_LIST_INCOMPLETE) or a lookup that fails
 * (E_LIST_UNCONFIRMED) fails the whole run before anything is planned: the same rule as for a failed
 * list, since planning against a partial view could re-create or prune what it did not see, and one
 * refusal keeps the safety valves' totals (max_deletes counts the whole run) meaningful. These
 * failures are transient: the next run reads again.
 */
export async function listLiveClients(
  reader: OAuthClientsReader,
  accounts: readonly string[],
  signal: AbortSignal | undefined,
  expected: ReadonlyMap<string, ExpectedClients> = new Map(),
): Promise<LiveView> {
  const opts = signal ? { signal } : {};
  const settled = await mapSettledBounded(accounts, 4, async (account) => {
    const listed = await reader.listClients(account, opts);
    const want = expected.get(account);
    const missing = unlistedIds(listed, want);
    if (!want || missing.length === 0) return { listed, gone: new Set<string>() };
    const outcomes = await mapSettledBounded(missing, 4, (id) => confirm(reader, account, id, opts));
    const verdict = judgeListing(
      account,
      listed.length,
      want,
      outcomes.map((o, i) => (o.status === "fulfilled" ? o.value : failedLookup(missing[i]!, o.reason))),
    );
    if (!verdict.ok) {
      throw new GitOpsError(verdict.code, verdict.message, {
        disposition: "transient",
        context: {
          account_id: account,
          listed: listed.length,
          owned: want.owned,
          client_ids: verdict.client_ids,
        },
      });
    }
    return { listed, gone: verdict.gone };
  });
  const view: LiveView = { clients: new Map(), gone: new Map() };
  settled.forEach((outcome, index) => {
    if (outcome.status === "rejected") throw outcome.reason;
    const account = accounts[index] as string;
    view.clients.set(account, outcome.value.listed);
    view.gone.set(account, outcome.value.gone);
  });
  return view;
}

/** One GET: 404 confirms the client is gone; an abort is the caller's and is thrown as is. */
async function confirm(
  reader: OAuthClientsReader,
  account: string,
  clientId: string,
  opts: { signal?: AbortSignal },
): Promise<ConfirmOutcome> {
  try {
    await reader.getClient(account, clientId, opts);
    return { client_id: clientId, status: "found" };
  } catch (error) {
    if (isApiError(error, "E_API_NOT_FOUND")) return { client_id: clientId, status: "gone" };
    if (isApiError(error, "E_API_ABORTED")) throw error;
    return failedLookup(clientId, error);
  }
}

function failedLookup(clientId: string, error: unknown): ConfirmOutcome {
  if (isApiError(error, "E_API_ABORTED")) throw error;
  return { client_id: clientId, status: "failed", error: errorSummary(error) };
}

import type { OAuthClientsReader } from "../cloudflare/client.js";
import type { LiveClient } from "../cloudflare/schemas.js";
import { mapSettledBounded } from "./pool.js";

/**
 * Lists the live clients of every account, four accounts at a time. One list call per account is
 * the whole read cost of a converged run; any failed list fails the run (planning against a partial
 * view could prune what it did not see).
 */
export async function listLiveClients(
  reader: OAuthClientsReader,
  accounts: readonly string[],
  signal: AbortSignal | undefined,
): Promise<Map<string, LiveClient[]>> {
  const settled = await mapSettledBounded(accounts, 4, (account) =>
    reader.listClients(account, signal ? { signal } : {}),
  );
  const live = new Map<string, LiveClient[]>();
  settled.forEach((outcome, index) => {
    if (outcome.status === "rejected") throw outcome.reason;
    live.set(accounts[index] as string, outcome.value);
  });
  return live;
}

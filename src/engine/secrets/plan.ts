import type { Logger } from "pino";
import type { OAuthClientsReader } from "../../cloudflare/client.js";
import type { LiveClient } from "../../api/oauth-clients.js";
import type { DesiredState, Inventory } from "../../core/model.js";
import type { ClientRotationStatus } from "../../core/rotation.js";
import { clientKey } from "../../core/rotation.js";
import {
  compactEntries,
  type JournalRecord,
  planSecrets,
  type SecretPlan,
  type SecretPlanInput,
} from "../../core/rotation-plan.js";
import type { SinkResolver } from "../../sinks/types.js";
import type { LiveView } from "../live.js";
import { mapSettledBounded } from "../pool.js";

/**
 * What the secret planner needs from the world, read and never written: the journal as the next
 * `rotate` will see it, the live clients, and each rotatable client's sink record's `issued_at` (the
 * age of the secret consumers hold). `rotate --dry-run`, `rotate --status`, `plan` and the act stage of
 * `rotate` all come through here, so they plan from the same input.
 */

/** What a caller has already read: the live view of the accounts in scope and the journal as listed. */
export interface SecretReads {
  desired: DesiredState;
  inventory: Inventory;
  live: LiveView;
  journal: readonly JournalRecord[];
}

/**
 * The planner's whole input for what the next `rotate` does (`rotate --dry-run`, the plan's rotation
 * section): the journal without what that rotate compacts away first (entries of clients a GET
 * confirmed gone, superseded done entries), the live clients plus each account holding an
 * interrupted create, and the sinks' ages. Nothing is written: no journal file is removed, no sink is
 * probed.
 */
export async function readSecretPlanInput(
  deps: { reader: OAuthClientsReader; sinks: SinkResolver; logger: Logger },
  reads: SecretReads,
  options: Pick<SecretPlanInput, "defaultPolicy" | "mode" | "clients" | "now">,
): Promise<SecretPlanInput> {
  const { kept } = compactEntries(reads.journal, reads.live.gone);
  return withSinkAges(
    {
      desired: reads.desired,
      live: await withCreateAccounts(kept, reads.live.clients, deps.reader),
      inventory: reads.inventory,
      entries: kept,
      ...options,
    },
    deps.sinks,
    deps.logger,
  );
}

/** `live`, plus a list of each account holding an interrupted create (it is found there by name). */
export async function withCreateAccounts(
  entries: readonly JournalRecord[],
  live: ReadonlyMap<string, readonly LiveClient[]> | undefined,
  reader: OAuthClientsReader,
): Promise<Map<string, readonly LiveClient[]>> {
  const listed = new Map(live ?? []);
  for (const entry of entries) {
    if (entry.client_id === null && entry.step === "intent" && !listed.has(entry.account_id)) {
      listed.set(entry.account_id, await reader.listClients(entry.account_id));
    }
  }
  return listed;
}

/** The plan with the sinks' ages (see {@link withSinkAges}). */
export async function planWithSinkAges(
  input: Omit<SecretPlanInput, "sinkIssuedAt">,
  sinks: SinkResolver,
  logger: Logger,
): Promise<SecretPlan> {
  return planSecrets(await withSinkAges(input, sinks, logger));
}

/**
 * The input with the sinks' ages: a first pass of the (pure) planner finds the clients the act stage
 * will see, and their sink records are read.
 */
export async function withSinkAges(
  input: Omit<SecretPlanInput, "sinkIssuedAt">,
  sinks: SinkResolver,
  logger: Logger,
): Promise<SecretPlanInput> {
  const first = planSecrets({ ...input, sinkIssuedAt: new Map() });
  return { ...input, sinkIssuedAt: await readSinkIssuedAt(first.statuses, sinks, logger) };
}

/**
 * Reads each client's sink record for its `issued_at` (null: no record for this client id). A sink that
 * cannot be read is left out of the map (the age falls back to the journal) and logged: a plan-only
 * run without sink credentials must still work.
 */
export async function readSinkIssuedAt(
  clients: readonly Pick<ClientRotationStatus, "account_id" | "client_id" | "target">[],
  sinks: SinkResolver,
  logger: Logger,
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const settled = await mapSettledBounded(clients, 8, async (c) => {
    const record = await sinks(c.target.sink).read({ account_id: c.account_id, key: c.target.key });
    if (!record) return null;
    // A record that does not say whose it is (an exec read command printing the secret alone) tells
    // no age either: leave it out, and the journal's age counts.
    if (record.client_id === "") return undefined;
    return record.client_id === c.client_id ? record.issued_at : null;
  });
  const failures = new Map<string, { count: number; error: string }>();
  settled.forEach((outcome, i) => {
    const c = clients[i] as (typeof clients)[number];
    if (outcome.status === "fulfilled") {
      if (outcome.value !== undefined) out.set(clientKey(c.account_id, c.client_id), outcome.value);
    } else {
      const seen = failures.get(c.target.sink) ?? { count: 0, error: (outcome.reason as Error).message };
      failures.set(c.target.sink, { ...seen, count: seen.count + 1 });
    }
  });
  // One line per sink, not per client: a plan job without sink credentials must not drown its log.
  for (const [sink, { count, error }] of failures) {
    logger.warn(
      { sink, records: count, error },
      "sink records could not be read; secret age taken from the journal",
    );
  }
  return out;
}

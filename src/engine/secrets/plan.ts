import type { Logger } from "pino";
import type { ClientRotationStatus } from "../../core/rotation.js";
import { clientKey } from "../../core/rotation.js";
import { planSecrets, type SecretPlan, type SecretPlanInput } from "../../core/rotation-plan.js";
import type { SinkResolver } from "../../sinks/types.js";
import { mapSettledBounded } from "../pool.js";

/**
 * What the secret planner needs from the sinks: each rotatable client's record's `issued_at` (the age
 * of the secret consumers hold). Read-only: `rotate --dry-run`, `rotate --status`, `plan` and the act
 * stage of `rotate` all come through here.
 */

/**
 * The plan with the sinks' ages: a first pass finds the clients the act stage will see, their sink
 * records are read, and a second pass plans with their ages (both passes pure).
 */
export async function planWithSinkAges(
  input: Omit<SecretPlanInput, "sinkIssuedAt">,
  sinks: SinkResolver,
  logger: Logger,
): Promise<SecretPlan> {
  const first = planSecrets({ ...input, sinkIssuedAt: new Map() });
  const sinkIssuedAt = await readSinkIssuedAt(first.statuses, sinks, logger);
  return planSecrets({ ...input, sinkIssuedAt });
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

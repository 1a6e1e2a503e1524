import { backoffMs, type BackoffPolicy } from "../../backoff.js";
import { errorSummary, GitOpsError, SinkError } from "../../errors.js";
import type { SinkAddress } from "../../sinks/types.js";
import type { JournalEntry } from "../../state/journal.js";
import { label } from "./report.js";
import type { SecretDeps } from "./types.js";

/**
 * Publishing a journaled secret: into its sink, read back, compared. A secret counts as published
 * only once the sink gave back exactly what was written; until then it stays in the journal (0600) and
 * the secret it replaces stays valid.
 */

/** Backoff between publish attempts within one run (src/backoff.ts): 250 ms, 500 ms, ... up to 4 s. */
const PUBLISH_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 4_000 };

/** Writes the journaled secret to its sink, reads it back and compares; retries with backoff. */
export async function stepPublish(
  entry: JournalEntry,
  deps: SecretDeps,
  did: string[],
): Promise<JournalEntry> {
  const attempts = deps.publishAttempts ?? 3;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await publishRecord(entry, deps);
      did.push(`published to ${describeTarget(entry, deps)}`);
      const published: JournalEntry = {
        ...entry,
        step: "published",
        secret: null,
        published_at: deps.now().toISOString(),
        publish_attempts: entry.publish_attempts + attempt,
        last_error: null,
      };
      await deps.journal.write(published);
      return published;
    } catch (error) {
      lastError = error;
      deps.logger.warn(
        {
          account_id: entry.account_id,
          client_id: entry.client_id,
          sink: entry.target.sink,
          attempt,
          error: errorSummary(error),
        },
        "publishing the new secret failed",
      );
      if (attempt < attempts) await sleep(backoffMs(attempt, PUBLISH_BACKOFF));
    }
  }
  await deps.journal.write({
    ...entry,
    publish_attempts: entry.publish_attempts + attempts,
    last_error: errorSummary(lastError),
  });
  throw new SinkError(
    "E_SECRET_UNPUBLISHED",
    `${label(entry)}: sink=${entry.target.sink}: ${errorSummary(lastError).message}; the new secret is kept in ` +
      `${deps.journal.pathOf(entry.id)} (0600) and published on the next run; the old secret stays valid`,
    { cause: lastError, context: { sink: entry.target.sink, journal_entry: entry.id } },
  );
}

async function publishRecord(entry: JournalEntry, deps: SecretDeps): Promise<void> {
  const secret = entry.secret;
  if (!secret || !entry.client_id) {
    throw new GitOpsError(
      "E_JOURNAL_CORRUPT",
      `${label(entry)}: entry ${entry.id} is minted but holds no secret`,
    );
  }
  const sink = deps.sinks(entry.target.sink);
  const address: SinkAddress = { account_id: entry.account_id, key: entry.target.key };
  await sink.write(address, {
    account_id: entry.account_id,
    client_id: entry.client_id,
    client_name: entry.client_name,
    client_secret: secret,
    issued_at: entry.minted_at ?? deps.now().toISOString(),
  });
  const back = await sink.read(address);
  // A record without a client id (an exec read command printing the secret alone) is proven by the
  // secret: a freshly minted secret belongs to this one client.
  const sameClient = back !== null && (back.client_id === "" || back.client_id === entry.client_id);
  if (!back || !sameClient || back.client_secret.reveal() !== secret.reveal()) {
    throw new SinkError(
      "E_SINK_READBACK",
      `sink=${entry.target.sink}: the record read back from ${sink.describe(address)} does not match what was written`,
      { context: { sink: entry.target.sink } },
    );
  }
}

/** Where an entry's secret goes, as its sink describes it (never the value). */
export function describeTarget(
  entry: Pick<JournalEntry, "account_id" | "target">,
  deps: Pick<SecretDeps, "sinks">,
): string {
  return deps.sinks(entry.target.sink).describe({ account_id: entry.account_id, key: entry.target.key });
}

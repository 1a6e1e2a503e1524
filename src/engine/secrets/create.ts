import type { LiveClient } from "../../api/oauth-clients.js";
import type { SecretTarget } from "../../core/model.js";
import type { CreateChange } from "../../core/plan-types.js";
import { continueEntry, type SecretOp } from "../../core/rotation-plan.js";
import { newJournalEntry } from "../../state/journal.js";
import { executeOp, isDefiniteFailure, minted } from "./execute.js";
import { describeTarget } from "./publish.js";
import { outcomeError } from "./report.js";
import type { SecretDeps } from "./types.js";

/**
 * A create whose secret can never be lost: the intent (name, account, ids that already carry the
 * name) is journaled before the POST; the secret is journaled before it is written to the sink; the
 * client is owned in the inventory once the sink holds it. If the answer is lost, in this process or
 * by a crash, the client is found by name and a known secret is minted (rotate, publish, delete the
 * unknown one at once: nobody can be using it). Returns the client and where its secret went.
 */
export async function createWithJournal(
  change: CreateChange & { secret: SecretTarget },
  existingClientIds: readonly string[],
  deps: SecretDeps,
): Promise<{ client: LiveClient; secret_location: string }> {
  let entry = newJournalEntry(deps.now(), {
    op: "create",
    reason: "create",
    account_id: change.account_id,
    client_name: change.client_name,
    client_id: null,
    target: change.secret,
    delete_old: "none",
    grace_seconds: 0,
    unused: true,
    created_by_tool: true,
    existing_client_ids: [...existingClientIds],
  });
  await deps.journal.write(entry);
  let created;
  try {
    created = await deps.writer.createClient(change.account_id, change.body, { existingClientIds });
  } catch (error) {
    // A definite refusal made nothing; anything else is resolved by the next run (by name).
    if (isDefiniteFailure(error)) await deps.journal.remove(entry.id);
    throw error;
  }
  const clientId = created.client.client_id;
  entry =
    created.secret && !created.secretLost
      ? minted(entry, created.secret, deps, { client_id: clientId })
      : { ...entry, client_id: clientId, delete_old: "at-once" };
  await deps.journal.write(entry);
  const op: SecretOp = {
    stage: "resume",
    account_id: entry.account_id,
    client_name: entry.client_name,
    client_id: clientId,
    entry_id: entry.id,
    actions: continueEntry(entry, {
      live: undefined,
      inventory: deps.inventory.current,
      now: deps.now(),
      fresh: true,
      finishDueDeletions: true,
    }),
  };
  const outcome = await executeOp(op, entry, deps, { fresh: true });
  if (outcome.status !== "done") throw outcomeError(outcome);
  return { client: created.client, secret_location: describeTarget(entry, deps) };
}

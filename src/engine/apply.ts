import type { Logger } from "pino";
import type { OAuthClientsReader, OAuthClientsWriter } from "../cloudflare/client.js";
import type { LiveClient } from "../api/oauth-clients.js";
import type { Change, CreateChange, DeleteChange, Plan, UpdateChange } from "../core/plan-types.js";
import type { SecretTarget } from "../core/model.js";
import { clientKey } from "../core/rotation.js";
import { errorSummary, GitOpsError, SinkError } from "../errors.js";
import type { SinkResolver } from "../sinks/types.js";
import type { JournalStore } from "../state/journal.js";
import type { InventoryRecorder } from "./inventory-recorder.js";
import { mapSettledBounded } from "./pool.js";
import { createWithJournal } from "./secrets/create.js";

export interface ApplyDeps {
  writer: OAuthClientsWriter;
  /** Re-reads a client while a create's secret is being made known (has it a rotated secret?). */
  reader: OAuthClientsReader;
  /**
   * The secret write-ahead journal: every create with a secret is journaled step by step, so a crash at
   * any point leaves a record the next run resumes from.
   */
  journal: JournalStore;
  /** Live clients per account as planned: a create journals the ids that already carry its name. */
  live?: ReadonlyMap<string, readonly LiveClient[]>;
  sinks: SinkResolver;
  inventory: InventoryRecorder;
  logger: Logger;
  /** The clock, injected so tests control `issued_at` and ownership times. */
  now: () => Date;
  /** Changes in flight at once; the API client's rate budget paces them further. */
  concurrency?: number;
  /** Called after each change settles: `done` of `total`. */
  onProgress?: (done: number, total: number, result: ChangeResult) => void;
  /**
   * Stops changes from STARTING once aborted (SIGTERM). It is never passed into the API calls of a
   * change already started: a create that minted a secret must get to write it to its sink, and a
   * rotation step must reach its journal record, since a minted secret abandoned on the way exists
   * nowhere else. Timeouts still bound every call.
   */
  signal?: AbortSignal;
}

/** What happened to one change. Never carries a secret: `secret_location` says where it went. */
export interface ChangeResult {
  kind: Change["kind"];
  account_id: string;
  client_name: string;
  client_id?: string;
  status: "applied" | "failed";
  /** For creates and auth-method changes: where the secret was written (a sink description). */
  secret_location?: string;
  error?: { code: string; message: string };
}

export interface ApplyReport {
  results: ChangeResult[];
  applied: number;
  failed: number;
  /** Inventory adjustments made besides the changes (adoptions, stale entries dropped). */
  adopted: number;
  forgotten: number;
}

/**
 * Applies a plan: creates and patches first, deletes last (so a rename that shows up as a create
 * plus a delete never leaves a gap), each phase with bounded concurrency. One failed change does not
 * stop the independent ones; every failure is in the report, and running again converges because
 * the next plan starts from what actually happened.
 *
 * Creates are made safe for the secret: every key a create will write to is checked, written and
 * read back (a probe, never a secret) before any create is sent (`SecretSink.checkWritable`); each
 * create is journaled (engine/rotate.ts `createWithJournal`): the intent before the POST, the secret
 * before the sink write; the client is recorded as owned once its secret reads back from the sink; a
 * create whose answer was lost (in this process or by a crash) gets a known secret by rotating and
 * deleting the unknown one at once (nobody can be using it yet).
 */
export async function applyPlan(plan: Plan, deps: ApplyDeps): Promise<ApplyReport> {
  const log = deps.logger.child({ component: "apply" });
  const total = plan.changes.length;
  let done = 0;
  const settle = (result: ChangeResult): ChangeResult => {
    done += 1;
    deps.onProgress?.(done, total, result);
    return result;
  };

  const adopted = await recordAdoptions(plan, deps);
  const forgotten = await forgetStaleEntries(plan, deps);

  const unwritableSinks = await preflightSinks(plan.changes, deps, log);
  const concurrency = deps.concurrency ?? 4;
  const firstPhase: Change[] = plan.changes.filter((c) => c.kind !== "delete");
  const lastPhase: Change[] = plan.changes.filter((c) => c.kind === "delete");

  const results: ChangeResult[] = [];
  for (const phase of [firstPhase, lastPhase]) {
    // Each change is logged and counted as it settles, so progress and /status move during a long apply.
    const settled = await mapSettledBounded(phase, concurrency, async (change): Promise<ChangeResult> => {
      let result: ChangeResult;
      try {
        if (deps.signal?.aborted)
          throw new GitOpsError("E_ABORTED", "apply stopped before this change started");
        result = await applyChange(change, deps, unwritableSinks);
      } catch (error) {
        result = failedResult(change, error);
      }
      if (result.status === "failed")
        log.error({ change: describeChange(change), error: result.error }, "change failed");
      else log.info({ change: describeChange(change), client_id: result.client_id }, "change applied");
      return settle(result);
    });
    for (const outcome of settled) if (outcome.status === "fulfilled") results.push(outcome.value);
  }
  await deps.inventory.flush();
  await forgetJournalOfDeleted(results, deps);
  const failed = results.filter((r) => r.status === "failed").length;
  return { results, applied: results.length - failed, failed, adopted, forgotten };
}

async function applyChange(
  change: Change,
  deps: ApplyDeps,
  unwritable: Map<string, SinkError>,
): Promise<ChangeResult> {
  switch (change.kind) {
    case "create":
      return applyCreate(change, deps, unwritable);
    case "update":
      return applyUpdate(change, deps);
    case "delete":
      return applyDelete(change, deps);
  }
}

async function applyCreate(
  change: CreateChange,
  deps: ApplyDeps,
  unwritable: Map<string, SinkError>,
): Promise<ChangeResult> {
  if (change.secret) {
    const refused = unwritable.get(sinkKey(change.account_id, change.secret));
    if (refused) return failedResult(change, refused);
  }
  if (change.secret) {
    const existing = (deps.live?.get(change.account_id) ?? [])
      .filter((c) => c.client_name === change.client_name)
      .map((c) => c.client_id);
    const created = await createWithJournal({ ...change, secret: change.secret }, existing, {
      reader: deps.reader,
      writer: deps.writer,
      sinks: deps.sinks,
      journal: deps.journal,
      inventory: deps.inventory,
      logger: deps.logger,
      now: deps.now,
    });
    return {
      kind: "create",
      account_id: change.account_id,
      client_name: change.client_name,
      client_id: created.client.client_id,
      status: "applied",
      secret_location: created.secret_location,
    };
  }
  // A `none` client has no secret to lose: a crash before the answer leaves a client the next plan
  // adopts by name, never a duplicate.
  const created = await deps.writer.createClient(change.account_id, change.body, { existingClientIds: [] });
  const clientId = created.client.client_id;
  await deps.inventory.own(change.account_id, {
    client_id: clientId,
    client_name: change.client_name,
    origin: "created",
    since: deps.now().toISOString(),
  });
  return {
    kind: "create",
    account_id: change.account_id,
    client_name: change.client_name,
    client_id: clientId,
    status: "applied",
  };
}

async function applyUpdate(change: UpdateChange, deps: ApplyDeps): Promise<ChangeResult> {
  await deps.writer.updateClient(change.account_id, change.client_id, change.body);
  return {
    kind: "update",
    account_id: change.account_id,
    client_name: change.client_name,
    client_id: change.client_id,
    status: "applied",
  };
}

async function applyDelete(change: DeleteChange, deps: ApplyDeps): Promise<ChangeResult> {
  try {
    await deps.writer.deleteClient(change.account_id, change.client_id);
  } catch (error) {
    // Already gone (deleted by hand, or an earlier run whose answer was lost): the goal is reached.
    if (!(error instanceof GitOpsError && (error as GitOpsError & { status?: number }).status === 404))
      throw error;
  }
  await deps.inventory.disown(change.account_id, change.client_id);
  return {
    kind: "delete",
    account_id: change.account_id,
    client_name: change.client_name,
    client_id: change.client_id,
    status: "applied",
  };
}

/**
 * Checks every place a create will write a secret to, before any create is sent: each exact key,
 * because a key can fail where its neighbours do not (a name too long, a Secret owned by another key,
 * a file that cannot be read). Returns the refusals by `sinkKey`.
 */
async function preflightSinks(
  changes: readonly Change[],
  deps: ApplyDeps,
  log: Logger,
): Promise<Map<string, SinkError>> {
  const targets = new Map<string, { account_id: string; target: SecretTarget }>();
  for (const change of changes) {
    const target = change.kind === "create" ? change.secret : null;
    if (target) targets.set(sinkKey(change.account_id, target), { account_id: change.account_id, target });
  }
  const refused = new Map<string, SinkError>();
  const entries = [...targets];
  await mapSettledBounded(entries, deps.concurrency ?? 4, async ([key, { account_id, target }]) => {
    try {
      await deps.sinks(target.sink).checkWritable({ account_id, key: target.key });
    } catch (error) {
      const sinkError =
        error instanceof SinkError
          ? error
          : new SinkError("E_SINK_NOT_WRITABLE", `sink=${target.sink}: ${(error as Error).message}`, {
              cause: error,
            });
      log.error(
        { sink: target.sink, account_id, key: target.key, error: sinkError.message },
        "sink cannot store this key; its create is skipped",
      );
      refused.set(key, sinkError);
    }
  });
  return refused;
}

/** One preflight per place a secret goes: account, sink and key. */
function sinkKey(accountId: string, target: SecretTarget): string {
  return `${accountId}\u0000${target.sink}\u0000${target.key}`;
}

async function recordAdoptions(plan: Plan, deps: ApplyDeps): Promise<number> {
  for (const adoption of plan.adoptions) {
    await deps.inventory.own(adoption.account_id, {
      client_id: adoption.client_id,
      client_name: adoption.client_name,
      origin: "adopted",
      since: deps.now().toISOString(),
    });
  }
  return plan.adoptions.length;
}

async function forgetStaleEntries(plan: Plan, deps: ApplyDeps): Promise<number> {
  for (const stale of plan.stale_inventory) await deps.inventory.disown(stale.account_id, stale.client_id);
  return plan.stale_inventory.length;
}

/**
 * A client this run deleted is confirmed gone (the DELETE succeeded, or answered 404): its journal
 * records are moot and go now. Left in place, each would cost the next runs a GET to confirm what
 * this run already knows (engine/live.ts looks up every journaled client a list does not show).
 */
async function forgetJournalOfDeleted(results: readonly ChangeResult[], deps: ApplyDeps): Promise<void> {
  const deleted = new Set(
    results
      .filter((r) => r.kind === "delete" && r.status === "applied" && r.client_id)
      .map((r) => clientKey(r.account_id, r.client_id!)),
  );
  if (deleted.size === 0) return;
  for (const entry of await deps.journal.list()) {
    if (entry.client_id && deleted.has(clientKey(entry.account_id, entry.client_id))) {
      await deps.journal.remove(entry.id);
    }
  }
}

function failedResult(change: Change, reason: unknown): ChangeResult {
  const error = errorSummary(reason);
  return {
    kind: change.kind,
    account_id: change.account_id,
    client_name: change.client_name,
    ...("client_id" in change ? { client_id: change.client_id } : {}),
    status: "failed",
    error,
  };
}

/** `create [account/name]`, the object id every log line and error carries (docs/DESIGN.md, "Errors"). */
export function describeChange(change: Change): string {
  return `${change.kind} [${change.account_id}/${change.client_name}]`;
}

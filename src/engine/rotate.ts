import type { Logger } from "pino";
import type { OAuthClientsReader, OAuthClientsWriter } from "../cloudflare/client.js";
import { isApiError } from "../cloudflare/errors.js";
import type { LiveClient } from "../cloudflare/schemas.js";
import type { DesiredState, Inventory, RotationPolicy, SecretTarget } from "../core/model.js";
import type { CreateChange } from "../core/plan-types.js";
import { expectedClients } from "../core/listing.js";
import { accountsInScope } from "../core/plan.js";
import {
  type ClientRotationStatus,
  clientKey,
  type JournalView,
  rotationStatus,
  addSeconds,
} from "../core/rotation.js";
import { GitOpsError, SinkError } from "../errors.js";
import type { Secret } from "../secret.js";
import type { SinkAddress, SinkResolver } from "../sinks/types.js";
import {
  type DeleteOld,
  type JournalEntry,
  type JournalReason,
  type JournalStore,
  journalView,
  newJournalEntry,
} from "../state/journal.js";
import type { InventoryStore } from "../state/inventory.js";
import { InventoryRecorder } from "./inventory-recorder.js";
import { listLiveClients } from "./live.js";
import { mapSettledBounded } from "./pool.js";

/**
 * The secret engine (issue #4): creates, known-secret mints and rotations, each step written ahead to
 * the journal (src/state/journal.ts) so a process killed at any point is resumed by the next run.
 *
 * The rules it keeps, whatever happens:
 * - DELETE rotate_secret is sent only once the newest secret is published (in the sink and read back
 *   equal), and for scheduled rotations only once `grace` has passed since then. The one exception is
 *   a client no secret of which was ever published (`unused`: just created by this tool, or just made
 *   confidential): nobody can hold any of its secrets, so an unknown one may go at once.
 * - A minted secret stays in the journal (mode 0600) until a sink holds it; the publish is retried on
 *   every run, first thing, and the old secret stays valid meanwhile.
 * - The exact key a secret goes to is checked before anything is minted for it (preflight: the sink
 *   writes and reads back a probe there, or asks its server the equivalent; never a real secret).
 * - A client with `has_rotated_secret: true` and no operation of ours in the journal is reported and
 *   left alone; `rotate --recover` is the explicit way out.
 * - Secrets never reach a log line, an error, a result or a status: only fingerprints and sink
 *   descriptions do.
 */

/** What the secret engine needs. The clock and the sleep are injected so tests never wait. */
export interface SecretDeps {
  reader: OAuthClientsReader;
  writer: OAuthClientsWriter;
  sinks: SinkResolver;
  journal: JournalStore;
  inventory: InventoryRecorder;
  logger: Logger;
  now: () => Date;
  signal?: AbortSignal;
  /** Waits between publish attempts. Default: a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Publish attempts per run before the secret is left in the journal for the next run. Default 3. */
  publishAttempts?: number;
}

/** One line of a report: what happened to one client's secret. Never carries a secret. */
export interface SecretOpResult {
  account_id: string;
  client_name: string;
  client_id: string | null;
  /**
   * `ok`: the work was done; `waiting`: grace is running; `attention`: left alone, an operator must
   * decide (exit 1); `failed`: an error, retried on the next run (exit 1).
   */
  status: "ok" | "waiting" | "attention" | "failed";
  /** One line, safe to print. */
  message: string;
  /** A stable code for `attention` and `failed`. */
  code?: string;
  secret_location?: string;
}

/** Backoff between publish attempts within one run: 250 ms, 500 ms, ... */
const PUBLISH_BACKOFF_MS = 250;

/** The defaults (`rotation: {every: 90d, grace: 24h}`), for callers without a config. */
export const DEFAULT_ROTATION_POLICY: RotationPolicy = { every: 90 * 86_400, grace: 24 * 3_600 };

// ---------------------------------------------------------------------------------------------
// Starting operations
// ---------------------------------------------------------------------------------------------

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
  const outcome = await advance(entry, deps, { finishDueDeletions: true, fresh: true });
  if (outcome.status !== "done") throw outcomeError(outcome);
  return { client: created.client, secret_location: describeTarget(entry, deps) };
}

// ---------------------------------------------------------------------------------------------
// Resuming
// ---------------------------------------------------------------------------------------------

export interface ResumeOptions {
  /** Delete old secrets whose grace has passed (rotate does; apply leaves that to rotate). */
  finishDueDeletions: boolean;
  /** Live clients per account as just listed; accounts missing here are listed when needed. */
  live?: ReadonlyMap<string, readonly LiveClient[]>;
  /**
   * Per account, clients a GET answered 404 for (engine/live.ts): their journal entries are dropped.
   * Absence from `live` alone never drops an entry: a list answer can leave clients out.
   */
  gone?: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface ResumeReport {
  results: SecretOpResult[];
  /** True when anything was written to the API, a sink or the inventory (callers re-read live). */
  changed: boolean;
}

/**
 * Finishes what earlier runs left in the journal, first thing on every run: creates whose answer was
 * lost, secrets minted but not yet published (retried with backoff), old secrets due for deletion.
 * Blocked entries (a rotation whose new secret was lost) are reported, not touched.
 */
export async function resumeJournal(deps: SecretDeps, options: ResumeOptions): Promise<ResumeReport> {
  const entries = await compactJournal(deps.journal, options.gone);
  const listed = new Map(options.live ?? []);
  for (const entry of entries) {
    if (entry.client_id === null && entry.step === "intent" && !listed.has(entry.account_id)) {
      listed.set(entry.account_id, await deps.reader.listClients(entry.account_id));
    }
  }
  const pending = entries.filter(
    (e) =>
      e.step !== "done" &&
      !(
        e.step === "published" &&
        e.delete_old === "after-grace" &&
        !(options.finishDueDeletions && graceOver(e, deps, {}))
      ),
  );
  /** Sinks that failed a publish in this run: their other pending secrets wait for the next run. */
  const failingSinks = new Set<string>();
  let changed = false;
  const settled = await mapSettledBounded(pending, 4, async (entry): Promise<SecretOpResult> => {
    if (entry.blocked === "secret-lost") return secretLostResult(entry);
    if (entry.step === "minted" && failingSinks.has(entry.target.sink)) {
      return {
        ...entryRef(entry),
        status: "failed",
        code: "E_SECRET_UNPUBLISHED",
        message: `sink=${entry.target.sink} failed earlier in this run; the new secret stays in the journal for the next run`,
      };
    }
    try {
      const outcome = await advance(entry, deps, {
        finishDueDeletions: options.finishDueDeletions,
        fresh: false,
        live: listed.get(entry.account_id),
      });
      changed ||= outcome.status !== "waiting" || outcome.did.length > 0;
      return resultOf(outcome);
    } catch (error) {
      changed = true;
      if (error instanceof SinkError) failingSinks.add(entry.target.sink);
      return failedResult(entryRef(entry), error);
    }
  });
  const results = settled.map((o, i) =>
    o.status === "fulfilled" ? o.value : failedResult(entryRef(pending[i] as JournalEntry), o.reason),
  );
  for (const r of results) logResult(deps.logger, r, "resumed");
  await deps.inventory.flush();
  return { results, changed };
}

/**
 * Drops done entries superseded by a newer one for the same client (the newest stays as its record),
 * and every entry, finished or not, of a client confirmed gone (a GET answered 404 at the start of
 * the run: engine/live.ts): a deleted client has no secret anyone could use, so a blocked or half-done
 * operation on it is moot (and would otherwise block every later run). A client a list merely left
 * out keeps its entries: a minted secret waiting in the journal may be the only copy. The lookups are
 * made at the start of the run under the journal lock, so no entry of this run can be mistaken for one
 * of a vanished client.
 */
async function compactJournal(
  journal: JournalStore,
  gone: ReadonlyMap<string, ReadonlySet<string>> | undefined,
): Promise<JournalEntry[]> {
  const entries = await journal.list();
  const newestDone = new Map<string, string>();
  for (const e of entries) {
    if (e.step === "done" && e.client_id) newestDone.set(clientKey(e.account_id, e.client_id), e.id);
  }
  const kept: JournalEntry[] = [];
  for (const e of entries) {
    const vanished = e.client_id !== null && gone?.get(e.account_id)?.has(e.client_id) === true;
    const superseded =
      vanished ||
      (e.step === "done" &&
        e.client_id !== null &&
        newestDone.get(clientKey(e.account_id, e.client_id)) !== e.id);
    if (superseded) await journal.remove(e.id);
    else kept.push(e);
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------
// The rotate run
// ---------------------------------------------------------------------------------------------

/**
 * `auto`: finish due deletions, rotate due secrets (the default, and what the schedule calls).
 * `now`: rotate the selected clients whatever their age. `finish`: only delete old secrets whose grace
 * has passed. `compromised`: break-glass: delete any old secret of ours, rotate, publish, delete the
 * replaced one at once. `recover`: for clients left alone with an unknown rotated secret (or a lost
 * new one): trust that the sink holds the newest, delete the rotated (older) one, then rotate and
 * publish at once so the tool again knows a valid secret.
 */
export type RotateMode = "auto" | "now" | "finish" | "compromised" | "recover";

export interface RotateDeps extends Omit<SecretDeps, "inventory"> {
  inventoryStore: InventoryStore;
}

export interface RotateOptions {
  desired: DesiredState;
  /** The config's `rotation.every`/`grace`: used when an entry turned rotation off and is forced. */
  defaults: RotationPolicy;
  mode: RotateMode;
  /** Client names to act on; empty means every rotatable client. Resuming ignores it. */
  clients?: readonly string[];
  /** The config's `rotation.max_concurrent`. */
  concurrency?: number;
}

export interface RotateReport {
  results: SecretOpResult[];
  /** Every rotatable client as found before acting (after resuming). */
  statuses: ClientRotationStatus[];
  failed: number;
  attention: number;
}

/**
 * One rotation run (what `rotate` and the daemon's schedule call): resume the journal, then act on
 * each client's phase according to the mode. Never throws for one client's failure: every outcome is
 * in the report; the caller exits 1 when `failed + attention > 0`.
 */
export async function rotateOnce(deps: RotateDeps, options: RotateOptions): Promise<RotateReport> {
  const release = await deps.journal.lock();
  try {
    return await rotateLocked(deps, options);
  } finally {
    await release();
  }
}

async function rotateLocked(deps: RotateDeps, options: RotateOptions): Promise<RotateReport> {
  const log = deps.logger.child({ component: "rotate" });
  const inventory = new InventoryRecorder(deps.inventoryStore, await deps.inventoryStore.load());
  const secretDeps: SecretDeps = { ...deps, inventory };
  const accounts = accountsInScope(options.desired.accounts, inventory.current);
  const readLive = async () =>
    listLiveClients(
      deps.reader,
      accounts,
      deps.signal,
      expectedClients(accounts, options.desired, inventory.current, await deps.journal.list()),
    );
  const first = await readLive();
  let live = first.clients;
  const resumed = await resumeJournal(secretDeps, { finishDueDeletions: true, live, gone: first.gone });
  if (resumed.changed) live = (await readLive()).clients;

  const entries = await deps.journal.list();
  const view = journalView(entries);
  const statuses = await readStatuses(secretDeps, options, live, inventory.current, view);
  const { selected, unknown } = selectClients(statuses, options.clients ?? []);
  // In recover mode the selected blocked clients are handled below; their resume report would repeat it.
  const recovering = new Set(
    options.mode === "recover" ? selected.map((s) => clientKey(s.account_id, s.client_id)) : [],
  );
  const results = [
    ...resumed.results.filter((r) => !(r.client_id && recovering.has(clientKey(r.account_id, r.client_id)))),
    ...unknown,
  ];
  const settled = await mapSettledBounded(selected, options.concurrency ?? 4, (status) =>
    actOn(status, options.mode, secretDeps, entries),
  );
  settled.forEach((outcome, i) => {
    const status = selected[i] as ClientRotationStatus;
    const result =
      outcome.status === "fulfilled"
        ? outcome.value
        : failedResult(statusRef(status), outcome.reason as unknown);
    if (result) {
      logResult(log, result, options.mode);
      results.push(result);
    }
  });
  await inventory.flush();
  return {
    results,
    statuses,
    failed: results.filter((r) => r.status === "failed").length,
    attention: results.filter((r) => r.status === "attention").length,
  };
}

/** Status only (`rotate --status`, metrics): reads, never writes. */
export async function readRotationStatus(
  deps: Pick<RotateDeps, "reader" | "sinks" | "journal" | "inventoryStore" | "logger" | "now" | "signal">,
  options: Pick<RotateOptions, "desired" | "defaults">,
): Promise<ClientRotationStatus[]> {
  const inventory = await deps.inventoryStore.load();
  const accounts = accountsInScope(options.desired.accounts, inventory);
  const entries = await deps.journal.list();
  const live = await listLiveClients(
    deps.reader,
    accounts,
    deps.signal,
    expectedClients(accounts, options.desired, inventory, entries),
  );
  return readStatuses(deps, options, live.clients, inventory, journalView(entries));
}

/** Statuses with the sinks' `issued_at` read for every rotatable client (two passes, both pure). */
async function readStatuses(
  deps: Pick<SecretDeps, "sinks" | "logger" | "now">,
  options: Pick<RotateOptions, "desired" | "defaults">,
  live: ReadonlyMap<string, readonly LiveClient[]>,
  inventory: Inventory,
  journal: JournalView,
): Promise<ClientRotationStatus[]> {
  const input = {
    desired: options.desired,
    live,
    inventory,
    journal,
    sinkIssuedAt: new Map<string, string | null>(),
    defaultPolicy: options.defaults,
    now: deps.now(),
  };
  const candidates = rotationStatus(input);
  const sinkIssuedAt = await readSinkIssuedAt(candidates, deps.sinks, deps.logger);
  return rotationStatus({ ...input, sinkIssuedAt });
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

function selectClients(
  statuses: ClientRotationStatus[],
  names: readonly string[],
): { selected: ClientRotationStatus[]; unknown: SecretOpResult[] } {
  if (names.length === 0) return { selected: statuses, unknown: [] };
  const wanted = new Set(names);
  const selected = statuses.filter((s) => wanted.has(s.client_name));
  const found = new Set(selected.map((s) => s.client_name));
  const unknown = names
    .filter((n) => !found.has(n))
    .map((name): SecretOpResult => ({
      account_id: "-",
      client_name: name,
      client_id: null,
      status: "failed",
      code: "E_UNKNOWN_CLIENT",
      message: `no rotatable client named "${name}" (desired, owned, confidential, with a secret target)`,
    }));
  return { selected, unknown };
}

/** What one client's phase and the mode call for; null when nothing is to be done or said. */
async function actOn(
  s: ClientRotationStatus,
  mode: RotateMode,
  deps: SecretDeps,
  all: readonly JournalEntry[],
): Promise<SecretOpResult | null> {
  const ref = statusRef(s);
  const entries = entriesOf(all, s);
  switch (s.phase) {
    case "unknown-rotated":
      if (mode === "recover") return startRotation(s, "recover", "after-grace", false, deps, entries);
      return {
        ...ref,
        status: "attention",
        code: "E_UNKNOWN_ROTATED_SECRET",
        message:
          "has_rotated_secret is true and the journal has no rotation of ours: left alone (deleting it could lock " +
          "out consumers); once you know the sink holds the newest secret, run `rotate --recover --client " +
          `${s.client_name}\``,
      };
    case "secret-lost":
      if (mode === "recover") return startRotation(s, "recover", "after-grace", false, deps, entries);
      return null; // reported by resume
    case "in-progress":
    case "unpublished":
    case "delete-due":
      return null; // resume did (or reported) what there was to do
    case "grace":
      if (mode === "compromised") {
        // The newest secret is published, so its predecessor may go now; then a fresh one replaces it.
        const active = entries.find((e) => e.step !== "done");
        if (!active) return startRotation(s, "compromised", "at-once", false, deps, entries);
        const finished = await advance(active, deps, {
          finishDueDeletions: true,
          fresh: false,
          ignoreGrace: true,
        });
        if (finished.status !== "done") return resultOf(finished);
        const rest = entries.map((e) => (e.id === finished.entry.id ? finished.entry : e));
        return startRotation(s, "compromised", "at-once", false, deps, rest);
      }
      if (mode === "now") {
        return {
          ...ref,
          status: "waiting",
          message: `the previous rotation is in its grace period: the old secret is deleted at ${s.next_due_at ?? "?"}; rotate again after that`,
        };
      }
      return null;
    case "no-secret":
      if (mode === "finish" || mode === "recover") return null;
      return startRotation(
        s,
        "missing-record",
        s.ever_published ? "after-grace" : "at-once",
        !s.ever_published,
        deps,
        entries,
      );
    case "due":
    case "idle":
    case "off":
      if (mode === "compromised") return startRotation(s, "compromised", "at-once", false, deps, entries);
      if (mode === "now") return startRotation(s, "now", "after-grace", false, deps, entries);
      if (mode === "auto" && s.phase === "due")
        return startRotation(s, "scheduled", "after-grace", false, deps, entries);
      if (mode === "recover") return { ...ref, status: "ok", message: "nothing to recover" };
      return null;
  }
}

/**
 * Preflight the sink, journal the intent, then drive the rotation as far as it goes now. `previous` are
 * the client's journal entries; a recover replaces the blocked one, nothing else starts over an active one.
 */
async function startRotation(
  s: ClientRotationStatus,
  reason: JournalReason,
  deleteOld: DeleteOld,
  unused: boolean,
  deps: SecretDeps,
  previous: readonly JournalEntry[],
): Promise<SecretOpResult> {
  const address: SinkAddress = { account_id: s.account_id, key: s.target.key };
  await deps.sinks(s.target.sink).checkWritable(address);
  const active = previous.find((e) => e.step !== "done");
  if (active && !(reason === "recover" && active.blocked === "secret-lost")) {
    throw new GitOpsError("E_ROTATION_BUSY", `${label(s)}: journal entry ${active.id} is still in progress`);
  }
  const entry = newJournalEntry(deps.now(), {
    op: "rotate",
    reason,
    account_id: s.account_id,
    client_name: s.client_name,
    client_id: s.client_id,
    target: s.target,
    delete_old: deleteOld,
    grace_seconds: s.policy.grace,
    unused,
    created_by_tool: previous.some((e) => e.created_by_tool),
    existing_client_ids: [],
    step: reason === "recover" ? "recover" : "intent",
  });
  await deps.journal.write(entry);
  if (active) await deps.journal.remove(active.id);
  return resultOf(await advance(entry, deps, { finishDueDeletions: true, fresh: reason !== "recover" }));
}

function entriesOf(entries: readonly JournalEntry[], s: ClientRotationStatus): JournalEntry[] {
  return entries.filter((e) => e.account_id === s.account_id && e.client_id === s.client_id);
}

// ---------------------------------------------------------------------------------------------
// The state machine
// ---------------------------------------------------------------------------------------------

interface AdvanceOptions {
  finishDueDeletions: boolean;
  /** The live state was read moments ago: skip the re-read before rotating. */
  fresh: boolean;
  /** `--compromised`: delete the old secret now (the newest is published), whatever the grace. */
  ignoreGrace?: boolean;
  /** The account's live clients, for finding a create by name. */
  live?: readonly LiveClient[] | undefined;
}

type Outcome =
  | { status: "done"; entry: JournalEntry; did: string[] }
  | { status: "waiting"; entry: JournalEntry; did: string[]; until: string }
  | { status: "blocked"; entry: JournalEntry; did: string[] }
  | { status: "dropped"; entry: JournalEntry; did: string[] };

/**
 * Drives one entry through its steps until it is done, waiting for grace, blocked, or failed (thrown,
 * with the journal holding how far it got). Each step is journaled before the next action.
 */
async function advance(start: JournalEntry, deps: SecretDeps, options: AdvanceOptions): Promise<Outcome> {
  let entry = start;
  const did: string[] = [];
  let fresh = options.fresh;
  for (let guard = 0; guard < 12; guard++) {
    try {
      const next = await step(entry, deps, options, fresh, did);
      if ("status" in next) return next;
      entry = next;
      fresh = false;
    } catch (error) {
      if (!isApiError(error, "E_API_NOT_FOUND") || entry.client_id === null) throw error;
      // The client is gone (deleted by hand or by a prune): nothing of its secret is left to look after.
      did.push("the client no longer exists");
      entry = await save(deps, {
        ...entry,
        step: "done",
        done_at: deps.now().toISOString(),
        last_error: errorInfo(error),
      });
    }
  }
  throw new GitOpsError("E_JOURNAL_LOOP", `${label(entry)}: journal entry ${entry.id} did not settle`);
}

/** One step of {@link advance}: the next entry, or how the entry settled. */
async function step(
  entry: JournalEntry,
  deps: SecretDeps,
  options: AdvanceOptions,
  fresh: boolean,
  did: string[],
): Promise<JournalEntry | Outcome> {
  {
    switch (entry.step) {
      case "recover":
        return stepRecover(entry, deps, did);
      case "intent": {
        if (entry.client_id === null) {
          const found = await stepFindCreated(entry, deps, options.live);
          if (!found) return { status: "dropped", entry, did };
          did.push("found the created client by name; minting a known secret");
          return found;
        }
        const next = await stepRotate(entry, deps, fresh, did);
        return next.blocked ? { status: "blocked", entry: next, did } : next;
      }
      case "minted":
        return stepPublish(entry, deps, did);
      case "published": {
        const next = await stepFinish(entry, deps, options, did);
        if (next.step !== "published") return next;
        return {
          status: "waiting",
          entry: next,
          did,
          until: addSeconds(next.published_at ?? "", next.grace_seconds),
        };
      }
      case "done":
        return { status: "done", entry, did };
    }
  }
}

/** `recover`: the operator vouched that the sink holds the newest secret: delete the rotated one. */
async function stepRecover(entry: JournalEntry, deps: SecretDeps, did: string[]): Promise<JournalEntry> {
  const client = await deps.reader.getClient(entry.account_id, entry.client_id ?? "");
  if (client.has_rotated_secret) {
    await deps.writer.deleteRotatedSecret(entry.account_id, client.client_id);
    did.push("deleted the rotated secret (recover)");
  }
  return save(deps, { ...entry, step: "intent" });
}

/**
 * After a crash between intent and answer of a create: did the POST make a client? One with the name
 * that was not there before and that no one owns is ours. None: the create never happened; the entry
 * is dropped and the plan creates the client again.
 */
async function stepFindCreated(
  entry: JournalEntry,
  deps: SecretDeps,
  live: readonly LiveClient[] | undefined,
): Promise<JournalEntry | null> {
  const clients = live ?? (await deps.reader.listClients(entry.account_id));
  const owned = new Set((deps.inventory.current.accounts[entry.account_id] ?? []).map((e) => e.client_id));
  const made = clients
    .filter(
      (c) =>
        c.client_name === entry.client_name &&
        !entry.existing_client_ids.includes(c.client_id) &&
        !owned.has(c.client_id),
    )
    .sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? ""));
  const client = made[0];
  if (!client) {
    await deps.journal.remove(entry.id);
    return null;
  }
  return save(deps, { ...entry, client_id: client.client_id, delete_old: "at-once" });
}

/** rotate_secret, then the new secret into the journal before anything else happens. */
async function stepRotate(
  entry: JournalEntry,
  deps: SecretDeps,
  fresh: boolean,
  did: string[],
): Promise<JournalEntry & { blocked?: unknown }> {
  const clientId = entry.client_id as string;
  if (!fresh) {
    const client = await deps.reader.getClient(entry.account_id, clientId);
    if (client.has_rotated_secret) {
      if (!entry.unused) return blockSecretLost(entry, deps);
      // Nobody can hold any secret of this client: clear the unknown one so a known one can be minted.
      await deps.writer.deleteRotatedSecret(entry.account_id, clientId);
      did.push("deleted an unknown secret of an unused client");
    }
  }
  let secret: Secret;
  try {
    secret = await deps.writer.rotateSecret(entry.account_id, clientId);
  } catch (error) {
    if (isApiError(error, "E_ROTATE_AMBIGUOUS")) {
      if (entry.unused) throw error; // the next pass re-reads and clears it
      return blockSecretLost(entry, deps);
    }
    // A definite refusal changed nothing: forget the intent (the client's last record stays as it was).
    if (isDefiniteFailure(error) && !entry.unused) await deps.journal.remove(entry.id);
    throw error;
  }
  did.push(`minted ${secret.fingerprint()}`);
  return save(deps, minted(entry, secret, deps));
}

async function blockSecretLost(
  entry: JournalEntry,
  deps: SecretDeps,
): Promise<JournalEntry & { blocked: true }> {
  const saved = await save(deps, {
    ...entry,
    blocked: "secret-lost",
    last_error: {
      code: "E_ROTATION_SECRET_LOST",
      message: "rotate_secret happened but its answer never reached the journal",
    },
  });
  return { ...saved, blocked: true } as JournalEntry & { blocked: true };
}

/** Writes the journaled secret to its sink, reads it back and compares; retries with backoff. */
async function stepPublish(entry: JournalEntry, deps: SecretDeps, did: string[]): Promise<JournalEntry> {
  const attempts = deps.publishAttempts ?? 3;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await publishRecord(entry, deps);
      did.push(`published to ${describeTarget(entry, deps)}`);
      return save(deps, {
        ...entry,
        step: "published",
        secret: null,
        published_at: deps.now().toISOString(),
        publish_attempts: entry.publish_attempts + attempt,
        last_error: null,
      });
    } catch (error) {
      lastError = error;
      deps.logger.warn(
        {
          account_id: entry.account_id,
          client_id: entry.client_id,
          sink: entry.target.sink,
          attempt,
          error: errorInfo(error),
        },
        "publishing the new secret failed",
      );
      if (attempt < attempts) await sleep(PUBLISH_BACKOFF_MS * 2 ** (attempt - 1));
    }
  }
  await save(deps, {
    ...entry,
    publish_attempts: entry.publish_attempts + attempts,
    last_error: errorInfo(lastError),
  });
  throw new SinkError(
    "E_SECRET_UNPUBLISHED",
    `${label(entry)}: sink=${entry.target.sink}: ${errorInfo(lastError).message}; the new secret is kept in ` +
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

/**
 * After publish: own a created client; then delete the replaced secret (at once, or once grace has
 * passed) and close the entry. A client that is gone, or has no rotated secret any more, closes too.
 */
async function stepFinish(
  entry: JournalEntry,
  deps: SecretDeps,
  options: AdvanceOptions,
  did: string[],
): Promise<JournalEntry> {
  const clientId = entry.client_id as string;
  if (entry.op === "create") {
    await deps.inventory.own(entry.account_id, {
      client_id: clientId,
      client_name: entry.client_name,
      origin: "created",
      since: entry.published_at ?? deps.now().toISOString(),
    });
    await deps.inventory.flush();
  }
  if (entry.delete_old === "after-grace" && !options.ignoreGrace) {
    if (!options.finishDueDeletions || !graceOver(entry, deps, options)) return entry;
  }
  if (entry.delete_old !== "none") {
    const deleted = await deleteRotatedIfAny(entry.account_id, clientId, deps);
    if (deleted) did.push("deleted the old secret");
  }
  return save(deps, { ...entry, step: "done", done_at: deps.now().toISOString(), last_error: null });
}

/** DELETE rotate_secret; a 400 because there is none left (an earlier run's delete landed) is fine. */
async function deleteRotatedIfAny(accountId: string, clientId: string, deps: SecretDeps): Promise<boolean> {
  try {
    await deps.writer.deleteRotatedSecret(accountId, clientId);
    return true;
  } catch (error) {
    if (isApiError(error, "E_API_NOT_FOUND")) return false;
    if (!isDefiniteFailure(error)) throw error;
    const client = await deps.reader.getClient(accountId, clientId);
    if (client.has_rotated_secret) throw error;
    return false;
  }
}

function graceOver(
  entry: JournalEntry,
  deps: Pick<SecretDeps, "now">,
  options: { ignoreGrace?: boolean },
): boolean {
  if (options.ignoreGrace) return true;
  if (!entry.published_at) return false;
  return deps.now().getTime() >= Date.parse(entry.published_at) + entry.grace_seconds * 1000;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function minted(
  entry: JournalEntry,
  secret: Secret,
  deps: Pick<SecretDeps, "now">,
  extra: Partial<JournalEntry> = {},
): JournalEntry {
  return {
    ...entry,
    ...extra,
    step: "minted",
    secret,
    fingerprint: secret.fingerprint(),
    minted_at: deps.now().toISOString(),
    blocked: null,
    last_error: null,
  };
}

async function save(deps: Pick<SecretDeps, "journal">, entry: JournalEntry): Promise<JournalEntry> {
  await deps.journal.write(entry);
  return entry;
}

/** A definite refusal (4xx): the request changed nothing, so nothing needs checking later. */
function isDefiniteFailure(error: unknown): boolean {
  return (
    isApiError(error) &&
    !error.ambiguous &&
    error.code !== "E_API_ABORTED" &&
    error.status !== null &&
    error.status < 500
  );
}

function describeTarget(entry: JournalEntry, deps: Pick<SecretDeps, "sinks">): string {
  return deps.sinks(entry.target.sink).describe({ account_id: entry.account_id, key: entry.target.key });
}

function label(ref: { account_id: string; client_name: string }): string {
  return `[${ref.account_id}/${ref.client_name}]`;
}

function entryRef(e: JournalEntry) {
  return { account_id: e.account_id, client_name: e.client_name, client_id: e.client_id };
}

function statusRef(s: Pick<ClientRotationStatus, "account_id" | "client_name" | "client_id">) {
  return { account_id: s.account_id, client_name: s.client_name, client_id: s.client_id };
}

function errorInfo(error: unknown): { code: string; message: string } {
  if (error instanceof GitOpsError) return { code: error.code, message: error.message };
  return { code: "E_UNEXPECTED", message: error instanceof Error ? error.message : String(error) };
}

function resultOf(outcome: Outcome): SecretOpResult {
  const e = outcome.entry;
  const ref = { account_id: e.account_id, client_name: e.client_name, client_id: e.client_id };
  const did = outcome.did.length > 0 ? outcome.did.join("; ") : "nothing to do";
  switch (outcome.status) {
    case "done":
      return { ...ref, status: "ok", message: `${e.reason}: ${did}` };
    case "waiting":
      return {
        ...ref,
        status: "waiting",
        message: `${e.reason}: ${did}; the old secret stays valid until ${outcome.until}`,
      };
    case "blocked":
      return secretLostResult(e);
    case "dropped":
      return {
        ...ref,
        status: "ok",
        message: "create: the interrupted create never reached the API; it will be planned again",
      };
  }
}

function secretLostResult(e: JournalEntry): SecretOpResult {
  return {
    account_id: e.account_id,
    client_name: e.client_name,
    client_id: e.client_id,
    status: "attention",
    code: "E_ROTATION_SECRET_LOST",
    message:
      "a rotation was interrupted after rotate_secret and its new secret never reached the journal; the old " +
      "secret (in the sink) still works and is left alone; run `rotate --recover --client " +
      `${e.client_name}\` to delete the lost one's predecessor and mint a known secret (consumers are locked out ` +
      "until they read the new secret)",
  };
}

function outcomeError(outcome: Outcome): GitOpsError {
  const r = resultOf(outcome);
  return new GitOpsError(r.code ?? "E_SECRET_PENDING", `${label(r)}: ${r.message}`, {
    disposition: "transient",
  });
}

function failedResult(
  ref: { account_id: string; client_name: string; client_id: string | null },
  error: unknown,
): SecretOpResult {
  const info = errorInfo(error);
  return {
    account_id: ref.account_id,
    client_name: ref.client_name,
    client_id: ref.client_id,
    status: "failed",
    code: info.code,
    message: info.message,
  };
}

function logResult(log: Logger, r: SecretOpResult, context: string): void {
  const fields = {
    account_id: r.account_id,
    client_name: r.client_name,
    client_id: r.client_id,
    code: r.code,
    context,
  };
  if (r.status === "failed") log.error(fields, r.message);
  else if (r.status === "attention") log.warn(fields, r.message);
  else log.info(fields, r.message);
}

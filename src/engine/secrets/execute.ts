import { isApiError } from "../../cloudflare/errors.js";
import type { LiveClient } from "../../api/oauth-clients.js";
import { findCreated, type SecretAction, type SecretOp } from "../../core/rotation-plan.js";
import { addSeconds } from "../../core/rotation.js";
import { type ErrorCode, errorSummary, GitOpsError } from "../../errors.js";
import type { Secret } from "../../secret.js";
import { type JournalEntry, type JournalStep, newJournalEntry } from "../../state/journal.js";
import { stepPublish } from "./publish.js";
import { entryRef, label, type Outcome } from "./report.js";
import type { SecretDeps } from "./types.js";

/**
 * The executor: carries out one planned operation (src/core/rotation-plan.ts `SecretOp`) one action
 * at a time, each journaled before the next is taken, so a process killed at any point leaves the
 * journal saying exactly how far it got. It decides nothing about what to do; before each action it
 * checks the entry stands at the step the plan expects, and before a rotate_secret it re-reads the
 * client (a list answer can be stale): if the world is not what the plan saw, it takes the safe branch
 * (block, or clear an unknown secret of an unused client) and says so.
 */

export interface ExecuteContext {
  /** The account's live clients as just listed (a create is found by name among them). */
  live?: readonly LiveClient[] | undefined;
  /** The client's journal entries, for a `start` (nothing starts over an operation in flight). */
  entries?: readonly JournalEntry[];
  /** The live state was read moments ago (a create's answer): no re-read before the first rotate. */
  fresh?: boolean;
}

/**
 * Runs `op` from `entry` (null when the operation begins with `start`). Resolves to how it settled;
 * throws on a failure, with the journal holding how far it got.
 */
export async function executeOp(
  op: SecretOp,
  entry: JournalEntry | null,
  deps: SecretDeps,
  ctx: ExecuteContext = {},
): Promise<Outcome> {
  let current = entry;
  let did: string[] = [];
  let fresh = ctx.fresh ?? false;
  const known = new Map((ctx.entries ?? []).map((e) => [e.id, e]));
  for (const action of op.actions) {
    try {
      if (action.kind === "start") {
        current = await start(action, op, [...known.values()], deps);
        did = [];
        fresh = action.reason !== "recover";
        continue;
      }
      if (action.kind === "none") return held(op, "ok", null, action.reason);
      if (action.kind === "blocked" && action.code !== "E_ROTATION_SECRET_LOST") {
        return held(op, action.status, action.code, action.reason);
      }
      if (!current) throw planError(op, `${action.kind} has no journal entry to act on`);
      const next = await perform(action, current, deps, ctx, fresh, did);
      fresh = false;
      if ("status" in next) return next;
      current = next;
      known.set(current.id, current);
    } catch (error) {
      if (!current || !isApiError(error, "E_API_NOT_FOUND") || current.client_id === null) throw error;
      // The client is gone (deleted by hand or by a prune): nothing of its secret is left to look after.
      did.push("the client no longer exists");
      current = await save(deps, {
        ...current,
        step: "done",
        done_at: deps.now().toISOString(),
        last_error: errorSummary(error),
      });
      return { status: "done", entry: current, did };
    }
  }
  if (!current || current.step !== "done") {
    throw planError(op, `the plan ended with the journal entry at step ${current?.step ?? "none"}`);
  }
  return { status: "done", entry: current, did };
}

/** One action on the entry: the entry it leaves, or how the operation settled. */
async function perform(
  action: Exclude<SecretAction, { kind: "start" }>,
  entry: JournalEntry,
  deps: SecretDeps,
  ctx: ExecuteContext,
  fresh: boolean,
  did: string[],
): Promise<JournalEntry | Outcome> {
  switch (action.kind) {
    case "recover":
      expectStep(entry, "recover");
      return stepRecover(entry, deps, did);
    case "find-created":
    case "drop": {
      expectStep(entry, "intent");
      const found = await stepFindCreated(entry, deps, ctx.live);
      if (!found) return { status: "dropped", entry, did };
      if (action.kind === "drop") {
        throw planError(entry, "a client made by the interrupted create appeared; the next run continues it");
      }
      did.push("found the created client by name; minting a known secret");
      return found;
    }
    case "mint": {
      expectStep(entry, "intent");
      const next = await stepRotate(entry, deps, fresh, did);
      return next.blocked ? { status: "blocked", entry: next, did } : next;
    }
    case "publish":
      expectStep(entry, "minted");
      return stepPublish(entry, deps, did);
    case "delete-old-secret":
    case "close":
      expectStep(entry, "published");
      return stepFinish(entry, deps, action.kind === "delete-old-secret", did);
    case "wait":
      expectStep(entry, "published");
      return {
        status: "waiting",
        entry,
        did,
        until: addSeconds(entry.published_at ?? "", entry.grace_seconds),
      };
    case "blocked": {
      // The list showed the secret this rotation made, and the journal never got it.
      const blocked = entry.blocked ? entry : await blockSecretLost(entry, deps);
      return { status: "blocked", entry: blocked, did };
    }
    case "none":
      return { status: "done", entry, did };
  }
}

/**
 * Preflight the sink, journal the intent. `previous` are the client's journal entries; a recover
 * replaces the blocked one, nothing else starts over an active one.
 */
async function start(
  action: Extract<SecretAction, { kind: "start" }>,
  op: SecretOp,
  previous: readonly JournalEntry[],
  deps: SecretDeps,
): Promise<JournalEntry> {
  await deps.sinks(action.sink).checkWritable({ account_id: op.account_id, key: action.key });
  const active = previous.find((e) => e.step !== "done");
  if (active && !(action.reason === "recover" && active.blocked === "secret-lost")) {
    throw new GitOpsError("E_ROTATION_BUSY", `${label(op)}: journal entry ${active.id} is still in progress`);
  }
  const entry = newJournalEntry(deps.now(), {
    op: "rotate",
    reason: action.reason,
    account_id: op.account_id,
    client_name: op.client_name,
    client_id: op.client_id,
    target: { sink: action.sink, key: action.key },
    delete_old: action.delete_old,
    grace_seconds: action.grace_seconds,
    unused: action.unused,
    created_by_tool: previous.some((e) => e.created_by_tool),
    existing_client_ids: [],
    step: action.reason === "recover" ? "recover" : "intent",
  });
  await deps.journal.write(entry);
  if (active) await deps.journal.remove(active.id);
  return entry;
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
 * After a crash between intent and answer of a create: did the POST make a client
 * (src/core/rotation-plan.ts `findCreated`)? None: the create never happened; the entry is dropped
 * and the plan creates the client again.
 */
async function stepFindCreated(
  entry: JournalEntry,
  deps: SecretDeps,
  live: readonly LiveClient[] | undefined,
): Promise<JournalEntry | null> {
  const clients = live ?? (await deps.reader.listClients(entry.account_id));
  const client = findCreated(entry, clients, deps.inventory.current);
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
): Promise<JournalEntry & { blocked: "secret-lost" }> {
  const saved = await save(deps, {
    ...entry,
    blocked: "secret-lost",
    last_error: {
      code: "E_ROTATION_SECRET_LOST",
      message: "rotate_secret happened but its answer never reached the journal",
    },
  });
  return saved as JournalEntry & { blocked: "secret-lost" };
}

/**
 * After publish: own a created client; then, when the plan says so, delete the replaced secret, and
 * close the entry.
 */
async function stepFinish(
  entry: JournalEntry,
  deps: SecretDeps,
  deleteOld: boolean,
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
  if (deleteOld) {
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

/** The entry with its new secret, at step `minted`. */
export function minted(
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
export function isDefiniteFailure(error: unknown): boolean {
  return (
    isApiError(error) &&
    !error.ambiguous &&
    error.code !== "E_API_ABORTED" &&
    error.status !== null &&
    error.status < 500
  );
}

/** A report with nothing done: the plan's own words. */
function held(
  op: SecretOp,
  as: "ok" | "attention" | "waiting" | "failed",
  code: ErrorCode | null,
  message: string,
): Outcome {
  return { status: "held", ref: entryRef(op), as, code, message };
}

function expectStep(entry: JournalEntry, step: JournalStep): void {
  if (entry.step !== step) {
    throw planError(entry, `journal entry ${entry.id} is at step ${entry.step}, the plan expected ${step}`);
  }
}

function planError(ref: { account_id: string; client_name: string }, message: string): GitOpsError {
  return new GitOpsError("E_SECRET_PLAN_STALE", `${label(ref)}: ${message}; the next run plans again`, {
    disposition: "transient",
  });
}

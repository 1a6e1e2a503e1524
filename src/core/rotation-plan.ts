import type { LiveClient } from "../api/oauth-clients.js";
import type { ErrorCode } from "../error-codes.js";
import type { DesiredState, Inventory, RotationPolicy } from "./model.js";
import {
  addSeconds,
  type ClientRotationStatus,
  clientKey,
  type JournalClientState,
  type JournalView,
  rotationStatus,
} from "./rotation.js";
import type { BlockedStatus, SecretActionKindName } from "./rotation-terms.js";

/**
 * The secret engine's decisions, pure (docs/DESIGN.md, "Every engine is a plan, then its execution"): the
 * live clients, the journal's entries, the sinks' `issued_at`, the policy, the mode and the time in;
 * per operation the list of actions out, each a plain value. `rotate --dry-run` prints this plan;
 * `rotate` carries it out one action at a time through the journal (src/engine/secrets/execute.ts),
 * and nothing in the engine decides again what to do with a client.
 *
 * A run has two stages. First the journal is resumed: each unfinished entry continues from its step
 * (an interrupted create is found by name, a minted secret is published, an old secret whose grace
 * has passed is deleted). Then the mode acts on each client's phase (src/core/rotation.ts), as the
 * phases stand once the resume has done its work: the planner works that out here from the resume's
 * own actions, so the plan of a whole run is known before anything is written.
 */

/** Why an operation was started (kept in the journal, shown in reports and status). */
export const SECRET_REASONS = [
  "create",
  "scheduled",
  "now",
  "compromised",
  "recover",
  "missing-record",
] as const;
export type SecretReason = (typeof SECRET_REASONS)[number];

/** The steps of a journal entry, in order (src/state/journal.ts explains each). */
export type SecretStep = "recover" | "intent" | "minted" | "published" | "done";

/** When the secret the new one replaces is deleted (DELETE rotate_secret). */
export type DeleteOld = "none" | "at-once" | "after-grace";

/**
 * `auto`: finish due deletions, rotate due secrets (the default, and what the schedule calls).
 * `now`: rotate the selected clients whatever their age. `finish`: only delete old secrets whose grace
 * has passed. `compromised`: break-glass: delete any old secret of ours, rotate, publish, delete the
 * replaced one at once. `recover`: for clients left alone with an unknown rotated secret (or a lost
 * new one): trust that the sink holds the newest, delete the rotated (older) one, then rotate and
 * publish at once so the tool again knows a valid secret.
 */
export type RotateMode = "auto" | "now" | "finish" | "compromised" | "recover";

/** What the planner reads of a journal entry: src/state/journal.ts `JournalEntry` without the secret. */
export interface JournalRecord {
  id: string;
  op: "create" | "rotate";
  reason: SecretReason;
  step: SecretStep;
  account_id: string;
  client_name: string;
  /** Null only for a create whose POST has not answered yet. */
  client_id: string | null;
  /** Where the secret goes. */
  target: { sink: string; key: string };
  delete_old: DeleteOld;
  /** Seconds the replaced secret stays valid after the new one is published (`after-grace`). */
  grace_seconds: number;
  /**
   * True while no secret of this client can be held by anyone (a create whose secret never reached a
   * sink): only then may an unknown secret be deleted without the newest being published.
   */
  unused: boolean;
  /** The tool created this client (carried forward to later entries; licenses minting a lost secret). */
  created_by_tool: boolean;
  /** Creates: ids of live clients that already had this name when the create was planned. */
  existing_client_ids: readonly string[];
  minted_at: string | null;
  published_at: string | null;
  /** Set when the new secret of this rotation was lost: the tool will not go on without `--recover`. */
  blocked: "secret-lost" | null;
}

/**
 * One thing the executor does (or reports), in order within its operation. Each names a single
 * journal step, so the executor can check the entry stands where the plan expects before acting.
 * - `start`: preflight the sink (a probe write and read-back, never a secret) and journal the intent
 *   of a new operation; `replaces` is the blocked entry a `--recover` supersedes.
 * - `recover`: DELETE rotate_secret, the operator having vouched that the sink holds the newest.
 * - `find-created`: an interrupted create: the client made under the name is taken as ours;
 *   `drop`: no such client, the create never happened; the entry goes and `apply` plans it again.
 * - `mint`: rotate_secret, the new secret into the journal first; `clears_unknown`: delete an unknown
 *   rotated secret before (only for a client nobody can hold a secret of).
 * - `publish`: the journaled secret into the sink, read back equal.
 * - `delete-old-secret`: DELETE rotate_secret for the replaced secret; `early` when `--compromised`
 *   cuts the grace short. `close`: nothing to delete; the entry is done.
 * - `wait`: the replaced secret stays valid until `until`; a later run deletes it.
 * - `blocked`: nothing is done; `reason` says why and what the operator can do.
 * - `none`: nothing to do, said (`rotate --recover` on a client with nothing to recover).
 */
export type SecretAction =
  | {
      kind: "start";
      reason: SecretReason;
      delete_old: DeleteOld;
      grace_seconds: number;
      unused: boolean;
      sink: string;
      key: string;
      replaces: string | null;
    }
  | { kind: "recover"; deletes_rotated: boolean }
  | { kind: "find-created"; client_id: string }
  | { kind: "drop" }
  | { kind: "mint"; clears_unknown: boolean }
  | { kind: "publish"; sink: string; key: string }
  | { kind: "delete-old-secret"; early: boolean }
  | { kind: "close" }
  | { kind: "wait"; until: string }
  | {
      kind: "blocked";
      /** How a report counts it: `attention` and `failed` make the run exit 1. */
      status: BlockedStatus;
      /** The stable code a report carries; null for a plain wait. */
      code: ErrorCode | null;
      reason: string;
    }
  | { kind: "none"; reason: string };

export type SecretActionKind = SecretAction["kind"];

// Compile-time guard: src/core/rotation-terms.ts lists exactly these kinds (the saved plan's schema
// names them from there).
const _actionKindsListed: [SecretActionKind, SecretActionKindName] extends [
  SecretActionKindName,
  SecretActionKind,
]
  ? true
  : never = true;

/**
 * One journal entry's work (or one client's report): the actions run one after another, and the
 * operations of a stage run side by side. A `start` action switches the operation to the entry it
 * creates (`--compromised` first finishes the entry in grace, then starts a new one).
 */
export interface SecretOp {
  stage: "resume" | "act";
  account_id: string;
  client_name: string;
  client_id: string | null;
  /** The journal entry the first action continues; null when the operation begins with `start`. */
  entry_id: string | null;
  actions: SecretAction[];
}

export interface SecretPlan {
  /** The resume stage, then the act stage, in the order they are reported. */
  ops: SecretOp[];
  /** Every rotatable client's status as the act stage sees it (after the resume). */
  statuses: ClientRotationStatus[];
}

export interface SecretPlanInput {
  desired: DesiredState;
  /** Live clients per account (accounts with an interrupted create included). */
  live: ReadonlyMap<string, readonly LiveClient[]>;
  inventory: Inventory;
  /** The journal as read, after {@link compactEntries}. */
  entries: readonly JournalRecord[];
  /** As in src/core/rotation.ts `RotationInput.sinkIssuedAt`. */
  sinkIssuedAt: ReadonlyMap<string, string | null>;
  /** The config's `rotation`: used when an entry turned rotation off and a rotation is forced. */
  defaultPolicy: RotationPolicy;
  mode: RotateMode;
  /** Client names to act on; empty: every rotatable client. The resume stage ignores it. */
  clients: readonly string[];
  now: Date;
  /**
   * The resume stage has already run in this process (the engine plans the act stage again from
   * what it then reads): plan no resume and take the journal as it stands.
   */
  resumed?: boolean;
}

/** Options of the resume stage. */
export interface ResumePlanInput {
  entries: readonly JournalRecord[];
  live: ReadonlyMap<string, readonly LiveClient[]>;
  inventory: Inventory;
  now: Date;
  /** Delete old secrets whose grace has passed (rotate does; apply leaves that to rotate). */
  finishDueDeletions: boolean;
}

/** The whole run: the resume stage, then what the mode does with each client's phase. */
export function planSecrets(input: SecretPlanInput): SecretPlan {
  const resume = input.resumed
    ? []
    : planResume({
        entries: input.entries,
        live: input.live,
        inventory: input.inventory,
        now: input.now,
        finishDueDeletions: true,
      });
  const after = input.resumed ? stateOf(input) : simulate(input, resume);
  const statuses = rotationStatus({
    desired: input.desired,
    live: after.live,
    inventory: after.inventory,
    journal: journalView(after.entries),
    sinkIssuedAt: after.sinkIssuedAt,
    defaultPolicy: input.defaultPolicy,
    now: input.now,
  });
  const { selected, unknown } = selectClients(statuses, input.clients);
  // In recover mode a selected client's lost secret is dealt with by its act; a report would repeat it.
  const recovering = new Set(
    input.mode === "recover" ? selected.map((s) => clientKey(s.account_id, s.client_id)) : [],
  );
  const act: SecretOp[] = [...unknown];
  for (const status of selected) {
    const op = actOnPhase(status, input.mode, entriesOf(after.entries, status), input.now);
    if (op) act.push(op);
  }
  return {
    ops: [
      ...resume.filter(
        (op) =>
          !(
            op.client_id &&
            recovering.has(clientKey(op.account_id, op.client_id)) &&
            op.actions[0]?.kind === "blocked"
          ),
      ),
      ...act,
    ],
    statuses,
  };
}

/**
 * The resume stage: every entry that is not done and not simply waiting out its grace continues from
 * its step. A blocked entry (a rotation whose new secret was lost) is reported, never touched.
 */
export function planResume(input: ResumePlanInput): SecretOp[] {
  const ops: SecretOp[] = [];
  for (const entry of input.entries) {
    if (entry.step === "done") continue;
    if (
      entry.step === "published" &&
      entry.delete_old === "after-grace" &&
      !(input.finishDueDeletions && graceOver(entry.published_at, entry.grace_seconds, input.now))
    ) {
      continue;
    }
    const actions =
      entry.blocked === "secret-lost"
        ? [secretLostAction(entry.client_name)]
        : continueEntry(entry, {
            live: input.live.get(entry.account_id),
            inventory: input.inventory,
            now: input.now,
            fresh: false,
            finishDueDeletions: input.finishDueDeletions,
          });
    ops.push({
      stage: "resume",
      account_id: entry.account_id,
      client_name: entry.client_name,
      client_id: entry.client_id,
      entry_id: entry.id,
      actions,
    });
  }
  // By account and name, whatever order the journal was read in (its file names carry a random part):
  // a dry run and the run after it list the same operations in the same order. The sort is stable, so
  // a client's own entries keep the journal's order.
  return ops.sort((a, b) => cmp(a.account_id, b.account_id) || cmp(a.client_name, b.client_name));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What continuing an entry takes. */
export interface ContinueContext {
  /** The account's live clients (a create is found by name; `has_rotated_secret` is read here). */
  live: readonly LiveClient[] | undefined;
  /** Overrides what `live` says of the entry's client: whether it has a rotated secret now. */
  hasRotated?: boolean;
  inventory: Inventory;
  now: Date;
  /** The live state was read moments ago (a create's answer, a start): no re-read before rotating. */
  fresh: boolean;
  finishDueDeletions: boolean;
  /** `--compromised`: the old secret goes now, whatever the grace. */
  ignoreGrace?: boolean;
}

/**
 * The actions that take one entry from its step to done (or to its grace, or to a block). Used for
 * entries found in the journal, for an entry a create has just written, and for a started operation.
 */
export function continueEntry(entry: JournalRecord, ctx: ContinueContext): SecretAction[] {
  const actions: SecretAction[] = [];
  let step = entry.step;
  let clientId = entry.client_id;
  let deleteOld = entry.delete_old;
  let publishedAt = entry.published_at;
  let fresh = ctx.fresh;
  let hasRotated = ctx.hasRotated ?? liveClient(ctx.live, clientId)?.has_rotated_secret === true;
  for (;;) {
    switch (step) {
      case "recover":
        actions.push({ kind: "recover", deletes_rotated: hasRotated });
        hasRotated = false;
        step = "intent";
        fresh = false;
        continue;
      case "intent": {
        if (clientId === null) {
          const found = findCreated(entry, ctx.live, ctx.inventory);
          if (!found) {
            actions.push({ kind: "drop" });
            return actions;
          }
          actions.push({ kind: "find-created", client_id: found.client_id });
          clientId = found.client_id;
          hasRotated = found.has_rotated_secret === true;
          deleteOld = "at-once";
          fresh = false;
          continue;
        }
        const clearsUnknown = !fresh && hasRotated;
        if (clearsUnknown && !entry.unused) {
          actions.push(secretLostAction(entry.client_name));
          return actions;
        }
        actions.push({ kind: "mint", clears_unknown: clearsUnknown });
        // The secret it replaces is now the rotated one.
        hasRotated = true;
        step = "minted";
        fresh = false;
        continue;
      }
      case "minted":
        actions.push({ kind: "publish", sink: entry.target.sink, key: entry.target.key });
        publishedAt = ctx.now.toISOString();
        step = "published";
        continue;
      case "published": {
        if (deleteOld === "after-grace" && !ctx.ignoreGrace) {
          if (!ctx.finishDueDeletions || !graceOver(publishedAt, entry.grace_seconds, ctx.now)) {
            actions.push({ kind: "wait", until: addSeconds(publishedAt ?? "", entry.grace_seconds) });
            return actions;
          }
        }
        actions.push(
          deleteOld === "none"
            ? { kind: "close" }
            : { kind: "delete-old-secret", early: ctx.ignoreGrace === true },
        );
        return actions;
      }
      case "done":
        return actions;
    }
  }
}

/**
 * After a crash between the intent and the answer of a create: a client with the name that was not
 * there before and that nobody owns is the one the POST made (the newest, if several).
 */
export function findCreated(
  entry: Pick<JournalRecord, "account_id" | "client_name" | "existing_client_ids">,
  live: readonly LiveClient[] | undefined,
  inventory: Inventory,
): LiveClient | null {
  const owned = new Set((inventory.accounts[entry.account_id] ?? []).map((e) => e.client_id));
  const made = (live ?? [])
    .filter(
      (c) =>
        c.client_name === entry.client_name &&
        !entry.existing_client_ids.includes(c.client_id) &&
        !owned.has(c.client_id),
    )
    .sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? ""));
  return made[0] ?? null;
}

/**
 * Done entries superseded by a newer one for the same client (the newest stays as its record), and
 * every entry of a client a GET confirmed gone (src/engine/live.ts): a deleted client has no secret
 * anyone could use. A client a list merely left out keeps its entries: a minted secret waiting in the
 * journal may be the only copy.
 */
export function compactEntries<E extends JournalRecord>(
  entries: readonly E[],
  gone: ReadonlyMap<string, ReadonlySet<string>> | undefined,
): { kept: E[]; removed: E[] } {
  const newestDone = new Map<string, string>();
  for (const e of entries) {
    if (e.step === "done" && e.client_id) newestDone.set(clientKey(e.account_id, e.client_id), e.id);
  }
  const kept: E[] = [];
  const removed: E[] = [];
  for (const e of entries) {
    const vanished = e.client_id !== null && gone?.get(e.account_id)?.has(e.client_id) === true;
    const superseded =
      e.step === "done" &&
      e.client_id !== null &&
      newestDone.get(clientKey(e.account_id, e.client_id)) !== e.id;
    (vanished || superseded ? removed : kept).push(e);
  }
  return { kept, removed };
}

/**
 * The journal as src/core/rotation.ts sees it (no secrets, no ids): per client, the operation in
 * flight and the last time a secret of ours was published. Creates with no client id yet are left out.
 */
export function journalView(entries: readonly JournalRecord[]): JournalView {
  const view = new Map<string, JournalClientState>();
  for (const entry of entries) {
    if (entry.client_id === null) continue;
    const key = clientKey(entry.account_id, entry.client_id);
    const state: JournalClientState = view.get(key) ?? {
      account_id: entry.account_id,
      client_id: entry.client_id,
      active: null,
      last_published_at: null,
      created_by_tool: false,
    };
    state.created_by_tool ||= entry.created_by_tool;
    if (entry.published_at && (!state.last_published_at || entry.published_at > state.last_published_at)) {
      state.last_published_at = entry.published_at;
    }
    if (entry.step !== "done") {
      state.active = {
        op: entry.op,
        reason: entry.reason,
        step: entry.step,
        delete_old: entry.delete_old,
        published_at: entry.published_at,
        grace_seconds: entry.grace_seconds,
        blocked: entry.blocked,
      };
    }
    view.set(key, state);
  }
  return view;
}

/** Whether the replaced secret's grace has passed (to the second; no publish time: not yet). */
export function graceOver(publishedAt: string | null, graceSeconds: number, now: Date): boolean {
  if (!publishedAt) return false;
  return now.getTime() >= Date.parse(publishedAt) + graceSeconds * 1000;
}

/** The block a lost new secret puts on a client, with the way out. */
export function secretLostAction(clientName: string): SecretAction {
  return {
    kind: "blocked",
    status: "attention",
    code: "E_ROTATION_SECRET_LOST",
    reason: secretLostReason(clientName),
  };
}

/** Why a client whose new secret was lost is left alone, and what the operator can do. */
export function secretLostReason(clientName: string): string {
  return (
    "a rotation was interrupted after rotate_secret and its new secret never reached the journal; the old " +
    "secret (in the sink) still works and is left alone; run `rotate --recover --client " +
    `${clientName}\` to delete the lost one's predecessor and mint a known secret (consumers are locked out ` +
    "until they read the new secret)"
  );
}

// ---------------------------------------------------------------------------------------------
// The act stage: mode × phase
// ---------------------------------------------------------------------------------------------

/** What one client's phase and the mode call for; null when nothing is to be done or said. */
function actOnPhase(
  s: ClientRotationStatus,
  mode: RotateMode,
  entries: readonly JournalRecord[],
  now: Date,
): SecretOp | null {
  const op = (entryId: string | null, actions: SecretAction[]): SecretOp => ({
    stage: "act",
    account_id: s.account_id,
    client_name: s.client_name,
    client_id: s.client_id,
    entry_id: entryId,
    actions,
  });
  const start = (reason: SecretReason, deleteOld: DeleteOld, unused: boolean): SecretOp => {
    const active = entries.find((e) => e.step !== "done");
    const replaces = reason === "recover" && active?.blocked === "secret-lost" ? active.id : null;
    return op(null, startActions(s, reason, deleteOld, unused, replaces, now));
  };
  switch (s.phase) {
    case "unknown-rotated":
      if (mode === "recover") return start("recover", "after-grace", false);
      return op(null, [
        {
          kind: "blocked",
          status: "attention",
          code: "E_UNKNOWN_ROTATED_SECRET",
          reason:
            "has_rotated_secret is true and the journal has no rotation of ours: left alone (deleting it could lock " +
            "out consumers); once you know the sink holds the newest secret, run `rotate --recover --client " +
            `${s.client_name}\``,
        },
      ]);
    case "secret-lost":
      return mode === "recover" ? start("recover", "after-grace", false) : null;
    case "in-progress":
    case "unpublished":
    case "delete-due":
      return null; // the resume stage does (or reports) what there is to do
    case "grace":
      if (mode === "compromised") {
        // The newest secret is published, so its predecessor may go now; then a fresh one replaces it.
        const active = entries.find((e) => e.step !== "done");
        if (!active) return start("compromised", "at-once", false);
        const finish = continueEntry(active, {
          live: undefined,
          inventory: { accounts: {} },
          now,
          fresh: false,
          finishDueDeletions: true,
          ignoreGrace: true,
        });
        return op(active.id, [...finish, ...startActions(s, "compromised", "at-once", false, null, now)]);
      }
      if (mode === "now") {
        return op(null, [
          {
            kind: "blocked",
            status: "waiting",
            code: null,
            reason: `the previous rotation is in its grace period: the old secret is deleted at ${s.next_due_at ?? "?"}; rotate again after that`,
          },
        ]);
      }
      return null;
    case "no-secret":
      if (mode === "finish" || mode === "recover") return null;
      return start("missing-record", s.ever_published ? "after-grace" : "at-once", !s.ever_published);
    case "due":
    case "idle":
    case "off":
      if (mode === "compromised") return start("compromised", "at-once", false);
      if (mode === "now") return start("now", "after-grace", false);
      if (mode === "auto" && s.phase === "due") return start("scheduled", "after-grace", false);
      if (mode === "recover") return op(null, [{ kind: "none", reason: "nothing to recover" }]);
      return null;
  }
}

/** `start`, then what takes the new entry to done or to its grace (a recover re-reads the client). */
function startActions(
  s: ClientRotationStatus,
  reason: SecretReason,
  deleteOld: DeleteOld,
  unused: boolean,
  replaces: string | null,
  now: Date,
): SecretAction[] {
  const entry: JournalRecord = {
    id: "",
    op: "rotate",
    reason,
    step: reason === "recover" ? "recover" : "intent",
    account_id: s.account_id,
    client_name: s.client_name,
    client_id: s.client_id,
    target: s.target,
    delete_old: deleteOld,
    grace_seconds: s.policy.grace,
    unused,
    created_by_tool: false,
    existing_client_ids: [],
    minted_at: null,
    published_at: null,
    blocked: null,
  };
  return [
    {
      kind: "start",
      reason,
      delete_old: deleteOld,
      grace_seconds: s.policy.grace,
      unused,
      sink: s.target.sink,
      key: s.target.key,
      replaces,
    },
    ...continueEntry(entry, {
      live: undefined,
      // recover: the phase (unknown-rotated, secret-lost) says a rotated secret is there to delete.
      hasRotated: reason === "recover",
      inventory: { accounts: {} },
      now,
      fresh: reason !== "recover",
      finishDueDeletions: true,
    }),
  ];
}

function selectClients(
  statuses: readonly ClientRotationStatus[],
  names: readonly string[],
): { selected: ClientRotationStatus[]; unknown: SecretOp[] } {
  if (names.length === 0) return { selected: [...statuses], unknown: [] };
  const wanted = new Set(names);
  const selected = statuses.filter((s) => wanted.has(s.client_name));
  const found = new Set(selected.map((s) => s.client_name));
  const unknown = names
    .filter((n) => !found.has(n))
    .map((name): SecretOp => ({
      stage: "act",
      account_id: "-",
      client_name: name,
      client_id: null,
      entry_id: null,
      actions: [
        {
          kind: "blocked",
          status: "failed",
          code: "E_UNKNOWN_CLIENT",
          reason: `no rotatable client named "${name}" (desired, owned, confidential, with a secret target)`,
        },
      ],
    }));
  return { selected, unknown };
}

function entriesOf(entries: readonly JournalRecord[], s: ClientRotationStatus): JournalRecord[] {
  return entries.filter((e) => e.account_id === s.account_id && e.client_id === s.client_id);
}

function liveClient(
  live: readonly LiveClient[] | undefined,
  clientId: string | null,
): LiveClient | undefined {
  return clientId === null ? undefined : live?.find((c) => c.client_id === clientId);
}

// ---------------------------------------------------------------------------------------------
// What the resume stage leaves behind
// ---------------------------------------------------------------------------------------------

interface WorldState {
  live: ReadonlyMap<string, readonly LiveClient[]>;
  inventory: Inventory;
  entries: readonly JournalRecord[];
  sinkIssuedAt: ReadonlyMap<string, string | null>;
}

function stateOf(input: SecretPlanInput): WorldState {
  return {
    live: input.live,
    inventory: input.inventory,
    entries: input.entries,
    sinkIssuedAt: input.sinkIssuedAt,
  };
}

/**
 * The journal, the live clients, the inventory and the sinks as they stand once every resume action
 * has done what it says: what the act stage then sees (the engine reads them again after the resume
 * and plans the act stage from what it finds, so a failed resume action never leads to an act).
 */
function simulate(input: SecretPlanInput, resume: readonly SecretOp[]): WorldState {
  const byId = new Map(resume.map((op) => [op.entry_id, op]));
  const live = new Map(
    [...input.live].map(([account, clients]) => [account, clients.map((c) => ({ ...c }))]),
  );
  const inventory: Inventory = {
    accounts: Object.fromEntries(Object.entries(input.inventory.accounts).map(([a, list]) => [a, [...list]])),
  };
  const sinkIssuedAt = new Map(input.sinkIssuedAt);
  const now = input.now.toISOString();
  const entries: JournalRecord[] = [];
  for (const original of input.entries) {
    const op = byId.get(original.id);
    if (!op) {
      entries.push(original);
      continue;
    }
    const entry = { ...original };
    let dropped = false;
    const client = () => live.get(entry.account_id)?.find((c) => c.client_id === entry.client_id);
    const setRotated = (value: boolean) => {
      const c = client();
      if (c) c.has_rotated_secret = value;
    };
    for (const action of op.actions) {
      switch (action.kind) {
        case "recover":
          setRotated(false);
          entry.step = "intent";
          break;
        case "find-created":
          entry.client_id = action.client_id;
          entry.delete_old = "at-once";
          break;
        case "drop":
          dropped = true;
          break;
        case "mint":
          setRotated(true);
          entry.step = "minted";
          entry.minted_at = now;
          break;
        case "publish":
          entry.step = "published";
          entry.published_at = now;
          if (entry.client_id)
            sinkIssuedAt.set(clientKey(entry.account_id, entry.client_id), entry.minted_at ?? now);
          break;
        case "delete-old-secret":
        case "close":
          if (action.kind === "delete-old-secret") setRotated(false);
          if (entry.op === "create" && entry.client_id) {
            const owned = (inventory.accounts[entry.account_id] ??= []);
            if (!owned.some((o) => o.client_id === entry.client_id)) {
              owned.push({
                client_id: entry.client_id,
                client_name: entry.client_name,
                origin: "created",
                since: entry.published_at ?? now,
              });
            }
          }
          entry.step = "done";
          break;
        case "blocked":
          if (entry.step === "intent") entry.blocked = "secret-lost";
          break;
        case "start":
        case "wait":
        case "none":
          break;
      }
    }
    if (!dropped) entries.push(entry);
  }
  return { live, inventory, entries, sinkIssuedAt };
}

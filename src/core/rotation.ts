import type { LiveClient } from "../api/oauth-clients.js";
import { indexInventory, indexLive, matchAccount } from "./match.js";
import type { DesiredClient, DesiredState, Inventory, RotationPolicy, SecretTarget } from "./model.js";
import type { RotationPhase } from "./rotation-terms.js";
import { compareStrings } from "./sort.js";

export type { RotationPhase } from "./rotation-terms.js";

/**
 * Rotation due-ness, pure: desired state, live clients, the inventory, a view of the secret
 * journal, the sinks' `issued_at` and the time in; per client a phase (src/core/rotation-terms.ts) out.
 * The secret planner (src/core/rotation-plan.ts) decides from these phases what `rotate` does, and the
 * plan shows that decision; status and metrics report the phases. Nothing here does I/O or reads the
 * clock.
 *
 * Which clients: a desired, present entry with a secret target, matched (pin, inventory, unique name)
 * to a live confidential client that the inventory owns. Clients apply has not adopted yet are left to
 * apply.
 *
 * Age of the current secret, first found of: the sink record's `issued_at` (when the record is for this
 * client id), the journal's last publish, the client's `created_at`. A secret is due when its age
 * reaches `every`.
 */

/** The journal's operation in flight for one client, as plain data. */
export interface JournalActiveOp {
  op: "create" | "rotate";
  reason: string;
  step: "recover" | "intent" | "minted" | "published";
  delete_old: "none" | "at-once" | "after-grace";
  published_at: string | null;
  grace_seconds: number;
  blocked: "secret-lost" | null;
}

/** What the journal knows about one client's secret. */
export interface JournalClientState {
  account_id: string;
  client_id: string;
  active: JournalActiveOp | null;
  last_published_at: string | null;
  created_by_tool: boolean;
}

/** Keyed by {@link clientKey}. */
export type JournalView = ReadonlyMap<string, JournalClientState>;

/** `account/client_id`: the key of every per-client map here. */
export function clientKey(accountId: string, clientId: string): string {
  return `${accountId}/${clientId}`;
}

export interface RotationInput {
  desired: DesiredState;
  live: ReadonlyMap<string, readonly LiveClient[]>;
  inventory: Inventory;
  journal: JournalView;
  /**
   * Per client key: the sink record's `issued_at`, or null when the sink holds no record for this
   * client. A key left out means the sink was not read (or could not be): the age falls back.
   */
  sinkIssuedAt: ReadonlyMap<string, string | null>;
  /** Grace for clients whose rotation is off, when a rotation is forced (`--now`, `--compromised`). */
  defaultPolicy: RotationPolicy;
  now: Date;
}

export interface ClientRotationStatus {
  account_id: string;
  client_id: string;
  client_name: string;
  target: SecretTarget;
  phase: RotationPhase;
  /** The policy in force (the config's default when the entry turned rotation off). */
  policy: RotationPolicy;
  /** Whether scheduled rotation applies (false for `rotation: false`). */
  scheduled: boolean;
  issued_at: string | null;
  age_source: "sink" | "journal" | "created_at" | null;
  /** Whole seconds; null when no time is known. */
  age_seconds: number | null;
  /** When the next step falls due: the deletion of the old secret in `grace`, else the next rotation. */
  next_due_at: string | null;
  /** For `no-secret`: whether a secret of ours was ever published (then the replacement keeps a grace). */
  ever_published: boolean;
}

/** Every rotatable client's status, sorted by account, name, id. */
export function rotationStatus(input: RotationInput): ClientRotationStatus[] {
  const out: ClientRotationStatus[] = [];
  for (const [accountId, entries] of input.desired.accounts) {
    const live = input.live.get(accountId);
    if (!live) continue;
    for (const { entry, client } of ownedMatches(accountId, entries, live, input.inventory)) {
      out.push(statusOf(accountId, entry, client, input));
    }
  }
  return out.sort(
    (a, b) =>
      compareStrings(a.account_id, b.account_id) ||
      compareStrings(a.client_name, b.client_name) ||
      compareStrings(a.client_id, b.client_id),
  );
}

interface OwnedMatch {
  entry: DesiredClient & { secret: SecretTarget };
  client: LiveClient;
}

/** Present entries with a secret, matched to an owned, confidential live client. */
function ownedMatches(
  accountId: string,
  entries: readonly DesiredClient[],
  live: readonly LiveClient[],
  inventory: Inventory,
): OwnedMatch[] {
  const liveIndex = indexLive(live);
  const inventoryIndex = indexInventory(inventory.accounts[accountId] ?? [], liveIndex);
  const matched = matchAccount(entries, liveIndex, inventoryIndex);
  const out: OwnedMatch[] = [];
  entries.forEach((entry, i) => {
    const result = matched.results[i];
    if (result?.status !== "matched" || entry.ensure !== "present" || entry.secret === null) return;
    const client = result.live;
    if (!inventoryIndex.ownedIds.has(client.client_id)) return;
    if (client.token_endpoint_auth_method === "none") return;
    out.push({ entry: entry as OwnedMatch["entry"], client });
  });
  return out;
}

function statusOf(accountId: string, entry: OwnedMatch["entry"], client: LiveClient, input: RotationInput) {
  const key = clientKey(accountId, client.client_id);
  const journal = input.journal.get(key);
  const policy = entry.rotation ?? input.defaultPolicy;
  const sinkIssued = input.sinkIssuedAt.get(key);
  const age = ageOf(sinkIssued, journal, client, input.now);
  const status: ClientRotationStatus = {
    account_id: accountId,
    client_id: client.client_id,
    client_name: client.client_name ?? entry.client_name,
    target: entry.secret,
    phase: "idle",
    policy,
    scheduled: entry.rotation !== null,
    ...age,
    next_due_at: age.issued_at ? addSeconds(age.issued_at, policy.every) : null,
    ever_published: journal?.last_published_at != null,
  };
  status.phase = phaseOf(status, journal, client, sinkIssued, input.now);
  if (status.phase === "grace" || status.phase === "delete-due") {
    const active = journal?.active;
    status.next_due_at = active?.published_at ? addSeconds(active.published_at, active.grace_seconds) : null;
  }
  if (status.phase === "no-secret") status.next_due_at = input.now.toISOString();
  return status;
}

function phaseOf(
  status: ClientRotationStatus,
  journal: JournalClientState | undefined,
  client: LiveClient,
  sinkIssued: string | null | undefined,
  now: Date,
): RotationPhase {
  const active = journal?.active ?? null;
  if (active) {
    if (active.blocked === "secret-lost") return "secret-lost";
    if (active.step === "minted") return "unpublished";
    if (active.step !== "published") return "in-progress";
    if (active.delete_old !== "after-grace" || !active.published_at) return "in-progress";
    const graceEnds = Date.parse(active.published_at) + active.grace_seconds * 1000;
    return now.getTime() >= graceEnds ? "delete-due" : "grace";
  }
  if (client.has_rotated_secret === true) return "unknown-rotated";
  if (sinkIssued === null && journal?.created_by_tool === true) return "no-secret";
  if (!status.scheduled) return "off";
  if (status.next_due_at === null) return "idle";
  return now.getTime() >= Date.parse(status.next_due_at) ? "due" : "idle";
}

function ageOf(
  sinkIssued: string | null | undefined,
  journal: JournalClientState | undefined,
  client: LiveClient,
  now: Date,
): Pick<ClientRotationStatus, "issued_at" | "age_source" | "age_seconds"> {
  const candidates: [ClientRotationStatus["age_source"], string | null | undefined][] = [
    ["sink", sinkIssued],
    ["journal", journal?.last_published_at],
    ["created_at", client.created_at],
  ];
  for (const [source, at] of candidates) {
    if (!at || Number.isNaN(Date.parse(at))) continue;
    return {
      issued_at: at,
      age_source: source,
      age_seconds: Math.max(0, Math.floor((now.getTime() - Date.parse(at)) / 1000)),
    };
  }
  return { issued_at: null, age_source: null, age_seconds: null };
}

/** ISO time `seconds` after `iso` (whole seconds: grace is honoured to the second). */
export function addSeconds(iso: string, seconds: number): string {
  return new Date(Date.parse(iso) + seconds * 1000).toISOString();
}

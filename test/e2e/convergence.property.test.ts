import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { Plan } from "../../src/core/plan-types.js";
import { safeSegment } from "../../src/sinks/naming.js";
import { ACCOUNT_A, ACCOUNT_B, control, useEmulator } from "../helpers/emulator.js";
import {
  LIST_ROUTE,
  checkSecret,
  createDirect,
  liveClients,
  makeWorkspace,
  measure,
  patchDirect,
  slug,
  type Workspace,
} from "./support.js";

/**
 * The convergence property, over seeded random worlds: whatever the desired set (0-25 entries, random
 * valid fields, confidential and `none` clients, optional fields and optional scopes) and whatever the
 * live state (clients made by hand, some with a desired name and drifted fields, some unmanaged, some
 * owned through an earlier apply and then edited by hand), after one `apply`:
 * - the next `plan --detailed-exitcode` exits 0 with nothing to do, and that converged run makes
 *   exactly one `GET /accounts/:account_id/oauth_clients` per account in scope and nothing else;
 * - every desired client exists exactly once with the desired fields, every `ensure: absent` and every
 *   prune rule has been honoured;
 * - every confidential client the tool created has its secret in its sink, accepted by the API.
 * A failure names the seed; rerun one with SEED=<n>.
 */

const ITERATIONS = 25;
const ONLY_SEED = process.env["SEED"] === undefined ? undefined : Number(process.env["SEED"]);
/** Valves out of the way: this property is about convergence (creates count toward the percentage). */
const LOOSE_SAFETY = {
  max_deletes: 1000,
  max_change_percent: 100,
  min_clients_for_percent: 1_000_000,
  allow_empty: true,
};
const SCOPES = [
  "account-settings.read",
  "zone.read",
  "dns-records.read",
  "dns-records.write",
  "workers-scripts.read",
  "user-details.read",
  "email",
  "profile",
];
const PROTOCOL = new Set(["openid", "offline_access"]);

/** mulberry32: small, seeded, good enough to pick test data. */
class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
  /** A random subset of `min`..`max` distinct items, in random order. */
  subset<T>(items: readonly T[], min: number, max = items.length): T[] {
    return this.shuffle(items).slice(0, min + this.int(max - min + 1));
  }
}

type Entry = Record<string, unknown>;

/** A valid entry (and create body) with random fields; the auth class is fixed per name. */
function randomEntry(rng: Rng, name: string, confidential: boolean): Entry {
  const s = slug(name);
  const responseTypes = rng.subset(["code", "token", "id_token"], 1);
  const scopes = rng.subset(SCOPES, 0, 4);
  if (rng.chance(0.15)) scopes.push("openid");
  const entry: Entry = {
    client_name: name,
    token_endpoint_auth_method: confidential
      ? rng.pick(["client_secret_basic", "client_secret_post"])
      : "none",
    grant_types: rng.chance(0.5)
      ? ["authorization_code"]
      : rng.shuffle(["authorization_code", "refresh_token"]),
    response_types: responseTypes,
    redirect_uris: rng.subset(
      [
        `https://${s}.example.com/cb`,
        `https://${s}.example.com/cb2`,
        `app-${s}://callback`,
        "http://127.0.0.1:8080/cb",
      ],
      1,
    ),
    scopes,
  };
  const optional = scopes.filter((x) => !PROTOCOL.has(x));
  if (optional.length > 0 && rng.chance(0.3)) entry["optional_scopes"] = rng.subset(optional, 1);
  if (rng.chance(0.3))
    entry["client_uri"] = rng.pick([`https://${s}.example.com`, `https://${s}.example.com/home`]);
  if (rng.chance(0.3)) entry["logo_uri"] = `https://cdn.example.com/${s}.png`;
  if (rng.chance(0.25))
    entry["policy_uri"] = rng.pick(["https://example.com/privacy", `https://${s}.example.com/p`]);
  if (rng.chance(0.25)) entry["tos_uri"] = "https://example.com/terms";
  if (rng.chance(0.3))
    entry["allowed_cors_origins"] = rng.subset([`https://${s}.example.com`, "http://localhost:3000"], 1);
  if (rng.chance(0.2)) entry["post_logout_redirect_uris"] = [`https://${s}.example.com/bye`];
  return entry;
}

/** A hand edit in the dashboard, on fields any entry has or may have. */
function randomDrift(rng: Rng, name: string): Entry {
  return rng.pick<Entry>([
    { redirect_uris: [`https://${slug(name)}.drift.example.com/cb`] },
    { tos_uri: "https://drift.example.com/terms" },
    { allowed_cors_origins: ["https://drift.example.com"] },
    { grant_types: ["authorization_code", "refresh_token"] },
  ]);
}

interface AccountWorld {
  account: string;
  /** Name -> confidential? for every name the generator may use in this account. */
  pool: Map<string, boolean>;
  /** Entries of phase 2 (present and absent); no document when empty. */
  present: Entry[];
  absent: string[];
  /** Live before phase 2, and which of those the tool owned. */
  liveBefore: LiveClient[];
  ownedBefore: Set<string>;
}

function namePool(rng: Rng): Map<string, boolean> {
  const pool = new Map<string, boolean>();
  for (let i = 0; i < 30; i++) {
    const name = rng.chance(0.2) ? `Team App ${i}` : `app-${i}`;
    pool.set(name, rng.chance(0.6));
  }
  return pool;
}

/** Builds one random world in the emulator and the workspace, up to the phase-2 desired files. */
async function buildWorld(rng: Rng, ws: Workspace, prune: "none" | "owned" | "all"): Promise<AccountWorld[]> {
  const accounts = rng.chance(0.5) ? [ACCOUNT_A, ACCOUNT_B] : [ACCOUNT_A];
  const worlds: AccountWorld[] = [];
  // Live clients made by hand: some with a pool name (drifted from what will be desired), some not.
  for (const account of accounts) {
    const pool = namePool(rng);
    for (const name of rng.subset([...pool.keys()], 0, 8)) {
      await createDirect(ws.emu, account, randomEntry(rng, name, pool.get(name)!));
    }
    for (let j = rng.int(5); j > 0; j--) {
      await createDirect(ws.emu, account, randomEntry(rng, `dashboard-${j}`, rng.chance(0.5)));
    }
    worlds.push({ account, pool, present: [], absent: [], liveBefore: [], ownedBefore: new Set() });
  }

  // Phase 1: an earlier apply (prune none) makes some clients owned, created or adopted.
  await ws.writeConfig({ prune: "none", safety: LOOSE_SAFETY });
  for (const w of worlds) {
    const names = rng.subset([...w.pool.keys()], 0, 10);
    await ws.writeDesired(
      `${w.account}.yaml`,
      w.account,
      names.map((n) => randomEntry(rng, n, w.pool.get(n)!)),
    );
  }
  const first = await ws.run("apply");
  if (first.code !== 0)
    throw new Error(`phase-1 apply exited ${first.code}\n${first.stdout}\n${first.stderr}`);

  // Hand edits to owned clients, then the phase-2 desired set.
  await ws.writeConfig({ prune, safety: LOOSE_SAFETY });
  for (const w of worlds) {
    const owned = await ws.owned(w.account);
    for (const entry of owned) {
      if (rng.chance(0.3))
        await patchDirect(ws.emu, w.account, entry.client_id, randomDrift(rng, entry.client_name));
    }
    w.ownedBefore = new Set(owned.map((e) => e.client_id));
    w.liveBefore = await liveClients(ws.emu, w.account);
    const shuffled = rng.shuffle([...w.pool.keys()]);
    const size = rng.int(26);
    w.present = shuffled.slice(0, size).map((n) => randomEntry(rng, n, w.pool.get(n)!));
    w.absent = shuffled.slice(size).filter(() => rng.chance(0.15));
    const entries: Entry[] = [...w.present, ...w.absent.map((n) => ({ client_name: n, ensure: "absent" }))];
    if (entries.length === 0) await ws.removeDesired(`${w.account}.yaml`);
    else await ws.writeDesired(`${w.account}.yaml`, w.account, rng.shuffle(entries));
  }
  return worlds;
}

/** Set-like comparison key of an array field: unset, empty and absent are the same. */
function setOf(value: unknown, dropProtocol = false): string {
  const items = Array.isArray(value)
    ? (value as string[]).filter((v) => !(dropProtocol && PROTOCOL.has(v)))
    : [];
  return [...new Set(items)].sort().join(" ");
}

/** The desired fields, checked on the live client independently of the planner's comparison code. */
function expectMatches(live: LiveClient, entry: Entry, where: string): void {
  const l = live as unknown as Entry;
  expect(l["token_endpoint_auth_method"], where).toBe(entry["token_endpoint_auth_method"]);
  for (const field of [
    "redirect_uris",
    "grant_types",
    "response_types",
    "optional_scopes",
    "allowed_cors_origins",
    "post_logout_redirect_uris",
  ]) {
    expect(setOf(l[field]), `${where} ${field}`).toBe(setOf(entry[field]));
  }
  expect(setOf(l["scopes"], true), `${where} scopes`).toBe(setOf(entry["scopes"], true));
  for (const field of ["client_uri", "logo_uri", "policy_uri", "tos_uri"]) {
    expect(l[field] ?? null, `${where} ${field}`).toBe(entry[field] ?? null);
  }
}

/** Checks everything the property promises for one world; returns how many secrets were checked. */
async function checkWorld(
  ws: Workspace,
  worlds: AccountWorld[],
  prune: string,
  tag: string,
): Promise<number> {
  let secrets = 0;
  for (const w of worlds) {
    const live = await liveClients(ws.emu, w.account);
    const owned = await ws.owned(w.account);
    const where = `${tag} account ${w.account.slice(0, 6)}`;
    const byName = (name: string) => live.filter((c) => c.client_name === name);
    for (const entry of w.present) {
      const matches = byName(entry["client_name"] as string);
      expect(matches, `${where}: ${String(entry["client_name"])} exactly once`).toHaveLength(1);
      expectMatches(matches[0]!, entry, `${where} ${String(entry["client_name"])}`);
    }
    for (const name of w.absent) {
      const before = w.liveBefore.filter((c) => c.client_name === name);
      const deletable = before.some((c) => w.ownedBefore.has(c.client_id)) || prune === "all";
      expect(byName(name), `${where}: absent ${name}`).toHaveLength(deletable ? 0 : before.length);
    }
    const desiredNames = new Set(w.present.map((e) => e["client_name"] as string));
    const hasDocument = w.present.length + w.absent.length > 0;
    const leftovers = live.filter((c) => !desiredNames.has(c.client_name ?? ""));
    if (prune === "all" && hasDocument)
      expect(
        leftovers.map((c) => c.client_name),
        `${where}: prune all`,
      ).toEqual([]);
    if (prune !== "none") {
      expect(
        leftovers.filter((c) => w.ownedBefore.has(c.client_id)),
        `${where}: owned leftovers`,
      ).toEqual([]);
    } else {
      for (const c of w.liveBefore) {
        if (!w.ownedBefore.has(c.client_id) || w.absent.includes(c.client_name ?? "")) continue;
        expect(
          live.map((x) => x.client_id),
          `${where}: orphan ${String(c.client_name)} kept`,
        ).toContain(c.client_id);
      }
    }
    // Every confidential client the tool created has its secret in the default sink, valid at the API.
    for (const entry of owned.filter((e) => e.origin === "created")) {
      const client = live.find((c) => c.client_id === entry.client_id);
      if (!client || client.token_endpoint_auth_method === "none") continue;
      const record = await ws.secretRecord(w.account, safeSegment(entry.client_name));
      expect(record?.client_id, `${where}: secret file of ${entry.client_name}`).toBe(client.client_id);
      const verdict = await checkSecret(ws.emu, w.account, client.client_id, record!.client_secret);
      expect(verdict, `${where}: secret of ${entry.client_name}`).toEqual({ valid: true, slot: "current" });
      secrets++;
    }
  }
  return secrets;
}

describe("convergence property", () => {
  const emu = useEmulator({ rateLimit: { quota: 1_000_000, windowSeconds: 300 } });

  it(`apply converges in one run over ${ITERATIONS} seeded random worlds`, async () => {
    const totals = { creates: 0, updates: 0, deletes: 0, adoptions: 0, secrets: 0, entries: 0 };
    const seeds = ONLY_SEED === undefined ? Array.from({ length: ITERATIONS }, (_, i) => i + 1) : [ONLY_SEED];
    for (const seed of seeds) {
      const tag = `seed ${seed}`;
      await control(emu(), "POST", "reset");
      const rng = new Rng(seed * 7919);
      const prune = rng.pick(["none", "owned", "all"] as const);
      const ws = await makeWorkspace(emu());
      const worlds = await buildWorld(rng, ws, prune);

      const planned = await ws.planJson(0);
      totals.creates += planned.summary.create;
      totals.updates += planned.summary.update;
      totals.deletes += planned.summary.delete;
      totals.adoptions += planned.summary.adoptions;
      totals.entries += worlds.reduce((n, w) => n + w.present.length, 0);

      const applied = await ws.run("apply");
      expect(applied.code, `${tag} (prune ${prune}) apply:\n${applied.stdout}\n${applied.stderr}`).toBe(0);

      const { value: again, delta } = await measure(emu(), () =>
        ws.run("plan", ["--detailed-exitcode", "--format", "json"]),
      );
      expect(again.code, `${tag}: converged plan exit code\n${again.stdout}`).toBe(0);
      const plan = JSON.parse(again.stdout) as Plan;
      expect(plan.changes, tag).toEqual([]);
      expect(plan.adoptions, tag).toEqual([]);
      expect(plan.stale_inventory, tag).toEqual([]);
      expect(plan.conflicts, tag).toEqual([]);

      const inventory = await ws.inventory();
      const inScope = new Set(
        worlds.filter((w) => w.present.length + w.absent.length > 0).map((w) => w.account),
      );
      for (const [account, entries] of Object.entries(inventory.accounts))
        if (entries.length > 0) inScope.add(account);
      const n = inScope.size;
      expect(delta, `${tag}: calls of the converged plan`).toEqual(
        n === 0
          ? { total: 0, by_route: {}, by_method: {} }
          : { total: n, by_route: { [LIST_ROUTE]: n }, by_method: { GET: n } },
      );
      totals.secrets += await checkWorld(ws, worlds, prune, tag);
    }
    // The worlds really exercised every kind of change (guards against a generator that degenerates).
    if (ONLY_SEED === undefined) {
      expect(totals.creates).toBeGreaterThan(50);
      expect(totals.updates).toBeGreaterThan(20);
      expect(totals.deletes).toBeGreaterThan(10);
      expect(totals.adoptions).toBeGreaterThan(10);
      expect(totals.secrets).toBeGreaterThan(50);
    }
    console.log(`convergence property: ${JSON.stringify(totals)}`);
  });
});

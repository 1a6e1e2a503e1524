import { describe, expect, it } from "vitest";
import type { CreateClientBody, GrantType, LiveClient, ResponseType } from "../../src/api/oauth-clients.js";
import type { DesiredClient, InventoryEntry, PruneMode } from "../../src/core/model.js";
import { computePlan, planHasWork } from "../../src/core/plan.js";
import { ACCOUNT_A, absent, desired, id, inputOf, live, owned, policy } from "./fixtures.js";
import { applyChangesToLive } from "./simulator.js";

/**
 * Seeded random scenarios (fixed seeds, so every run is the same): plan, apply with the simulator, plan
 * again. Whenever the first plan has no blocking conflict, the second must have no work at all. The simulator
 * throws on anything the API would refuse (re-sent client_uri, verified host change, premature
 * promotion, null for a required field), so every scenario also checks the plan only sends valid PATCHes.
 */

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
  const some = <T>(items: readonly T[], min = 0): T[] => {
    const out = items.filter(() => r() < 0.5);
    while (out.length < min) out.push(pick(items));
    if (r() < 0.3 && out.length > 0) out.push(out[0]!); // a duplicate
    return r() < 0.5 ? out.reverse() : out;
  };
  const maybe = <T>(value: T): T | undefined => (r() < 0.5 ? value : undefined);
  const fields = (name: string): Partial<CreateClientBody> => ({
    client_name: name,
    redirect_uris: some(["https://a/cb", "https://b/cb", "https://c/cb"], 1),
    grant_types: some<GrantType>(["refresh_token"]).concat("authorization_code"),
    response_types: some<ResponseType>(["code", "id_token", "token"], 1),
    scopes: some(["account-settings.read", "user-details.read", "profile", "openid", "offline_access"], 1),
    optional_scopes: pick([undefined, [], ["account-settings.read"]]),
    // Only confidential methods: a switch to or from `none` is a blocking conflict, not a change.
    token_endpoint_auth_method: pick(["client_secret_basic", "client_secret_post"] as const),
    client_uri: pick([undefined, "https://h1.dev", "https://h1.dev/about", "https://h2.dev"]),
    logo_uri: maybe("https://h1.dev/logo.png"),
    policy_uri: pick([undefined, "", "https://h1.dev/privacy"]),
    tos_uri: maybe("https://h1.dev/tos"),
    allowed_cors_origins: pick([undefined, [], ["https://a", "https://b"], ["https://b"]]),
    post_logout_redirect_uris: maybe(["https://a/bye"]),
  });
  const clean = <T extends object>(o: T): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return { r, pick, fields, clean };
}

function scenario(seed: number) {
  const g = generator(seed);
  const names = ["n0", "n1", "n2", "n3", "n4", "n5"];
  const liveClients: LiveClient[] = [];
  const inv: InventoryEntry[] = [];
  names.forEach((name, i) => {
    const copies = g.r() < 0.5 ? 1 : g.r() < 0.8 ? 0 : 2;
    for (let c = 0; c < copies; c++) {
      const clientId = id(`l${i}c${c}`);
      const verified = g.r() < 0.5;
      const base = g.clean(g.fields(name));
      const client = live(clientId, base, {
        client_uri_verification: base.client_uri
          ? {
              status: verified ? "verified" : g.pick(["pending", "failed"] as const),
              text: `rec-${clientId}`,
            }
          : undefined,
      });
      if (!base.client_uri) delete client.client_uri_verification;
      for (const k of Object.keys(client) as (keyof LiveClient)[])
        if (client[k] === undefined) delete client[k];
      if (verified && base.client_uri && base.logo_uri && g.r() < 0.5) client.visibility = "public";
      liveClients.push(client);
      if (g.r() < 0.4) inv.push(owned(clientId, name));
    }
  });
  const entries: DesiredClient[] = [];
  for (const name of names) {
    const roll = g.r();
    if (roll < 0.15) continue;
    if (roll < 0.25) {
      entries.push(absent(name));
      continue;
    }
    const fields = g.clean(g.fields(name));
    const pin = g.r() < 0.15 ? liveClients.find((c) => c.client_name === name)?.client_id : undefined;
    entries.push(
      desired(name, fields, {
        visibility: g.r() < 0.3 ? "public" : "private",
        ...(pin ? { client_id: pin } : {}),
      }),
    );
  }
  const prune = g.pick(["none", "owned", "all"] as PruneMode[]);
  return inputOf({
    desired: entries,
    emptyAccounts: [ACCOUNT_A],
    live: { [ACCOUNT_A]: liveClients },
    inventory: { [ACCOUNT_A]: inv },
    policy: policy({ prune, safety: { allow_empty: true } }),
  });
}

describe("convergence over seeded random scenarios", () => {
  const seeds = Array.from({ length: 200 }, (_, i) => i + 1);

  it("plan -> apply -> plan leaves nothing whenever the first plan had no blocking conflict", () => {
    let converged = 0;
    let withWork = 0;
    for (const seed of seeds) {
      const input = scenario(seed);
      const first = computePlan(input);
      const world = applyChangesToLive(first, { live: input.live, inventory: input.inventory });
      const second = computePlan({ ...input, live: world.live, inventory: world.inventory });
      if (first.conflicts.some((c) => c.code !== "visibility-downgrade")) continue;
      if (planHasWork(first)) withWork++;
      expect({ seed, changes: second.changes, adoptions: second.adoptions }).toEqual({
        seed,
        changes: [],
        adoptions: [],
      });
      expect(second.stale_inventory).toEqual([]);
      converged++;
    }
    // The generator must actually exercise the planner: most scenarios conflict-free and with work.
    expect(converged).toBeGreaterThan(60);
    expect(withWork).toBeGreaterThan(50);
  });

  it("a third round equals the second (conflicts included)", () => {
    for (const seed of seeds.slice(0, 100)) {
      const input = scenario(seed);
      let world = { live: input.live, inventory: input.inventory };
      const plans = [];
      for (let round = 0; round < 3; round++) {
        const plan = computePlan({ ...input, ...world });
        plans.push(plan);
        world = applyChangesToLive(plan, world);
      }
      expect({ seed, changes: plans[2]!.changes }).toEqual({ seed, changes: [] });
    }
  });
});

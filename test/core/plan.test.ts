import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import { accountsInScope, computePlan, planHasWork } from "../../src/core/plan.js";
import type { Plan } from "../../src/core/plan-types.js";
import {
  ACCOUNT_A,
  ACCOUNT_B,
  absent,
  desired,
  id,
  inputOf,
  live,
  liveOf,
  owned,
  planOf,
  policy,
  type Scenario,
} from "./fixtures.js";
import { applyChangesToLive } from "./simulator.js";

function kinds(plan: Plan): string[] {
  return plan.changes.map((c) => `${c.kind} ${c.client_name}${c.kind === "delete" ? ` ${c.reason}` : ""}`);
}

function codes(items: { code: string; client_name: string }[]): string[] {
  return items.map((i) => `${i.code} ${i.client_name}`);
}

describe("idempotency: desired equal to live gives an empty plan", () => {
  const app = desired("app");
  const refresh = desired("refresh", { grant_types: ["authorization_code", "refresh_token"] });
  const oidc = desired("oidc", {
    grant_types: ["refresh_token", "authorization_code"],
    response_types: ["id_token", "code"],
    scopes: ["openid", "offline_access", "account-settings.read"],
  });
  const reordered = desired("reordered", {
    redirect_uris: ["https://b/cb", "https://a/cb"],
    allowed_cors_origins: ["https://b", "https://a", "https://b"],
  });
  const optional = desired("optional");
  const publicApp = desired(
    "public-app",
    { logo_uri: "https://app.example.com/logo.png", client_uri: "https://app.example.com" },
    { visibility: "public" },
  );
  const cases: [string, Scenario][] = [
    ["identical", { desired: [app], live: { [ACCOUNT_A]: [liveOf(app, id("a1"))] } }],
    [
      "scopes written without protocol scopes (live has offline_access)",
      { desired: [refresh], live: { [ACCOUNT_A]: [liveOf(refresh, id("r1"))] } },
    ],
    [
      "scopes written with protocol scopes, in another order",
      {
        desired: [oidc],
        live: { [ACCOUNT_A]: [live(id("o1"), { ...oidc.fields, scopes: ["account-settings.read"] })] },
      },
    ],
    [
      "arrays reordered and duplicated",
      {
        desired: [reordered],
        live: {
          [ACCOUNT_A]: [
            live(id("x1"), {
              ...reordered.fields,
              redirect_uris: ["https://a/cb", "https://b/cb"],
              allowed_cors_origins: ["https://a", "https://b"],
            }),
          ],
        },
      },
    ],
    [
      "omitted optionals vs [] live",
      {
        desired: [optional],
        live: {
          [ACCOUNT_A]: [
            liveOf(optional, id("p1"), {
              optional_scopes: [],
              allowed_cors_origins: [],
              post_logout_redirect_uris: [],
            }),
          ],
        },
      },
    ],
    [
      "public and verified",
      {
        desired: [publicApp],
        live: {
          [ACCOUNT_A]: [
            liveOf(publicApp, id("pub1"), {
              visibility: "public",
              client_uri_verification: { status: "verified", text: "cloudflare_oauth_client_publisher=z" },
            }),
          ],
        },
      },
    ],
  ];

  it.each(cases)("%s", (_name, scenario) => {
    const ids = Object.values(scenario.live ?? {}).flatMap((clients) => clients.map((c) => c));
    const inv = { [ACCOUNT_A]: ids.map((c) => owned(c.client_id, c.client_name ?? "")) };
    const plan = planOf({ ...scenario, inventory: inv });
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toEqual([]);
    expect(plan.pending).toEqual([]);
    expect(plan.adoptions).toEqual([]);
    expect(planHasWork(plan)).toBe(false);
    expect(plan.summary).toMatchObject({ create: 0, update: 0, delete: 0 });
  });
});

/** Plans, applies with the simulator, plans again. */
function secondRound(s: Scenario, options: Parameters<typeof applyChangesToLive>[2] = {}) {
  const input = inputOf(s);
  const first = computePlan(input);
  const world = applyChangesToLive(first, { live: input.live, inventory: input.inventory }, options);
  const second = computePlan({ ...input, live: world.live, inventory: world.inventory });
  return { first, second, world };
}

describe("second round: apply the plan, plan again, nothing left", () => {
  const changed = desired("changed", {
    redirect_uris: ["https://new/cb", "https://old/cb"],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code", "id_token"],
    scopes: ["account-settings.read", "user-details.read"],
    optional_scopes: ["user-details.read"],
    logo_uri: "https://changed.dev/logo.png",
    token_endpoint_auth_method: "client_secret_post",
  });
  const cleared = desired("cleared");
  const created = desired("created", {
    client_uri: "https://created.dev",
    tos_uri: "https://created.dev/tos",
  });
  const createdPublic = desired(
    "created-public",
    { client_uri: "https://pub.dev", logo_uri: "https://pub.dev/l.png" },
    { visibility: "public" },
  );
  const promote = desired(
    "promote",
    { client_uri: "https://promote.dev/home", logo_uri: "https://promote.dev/l.png" },
    { visibility: "public" },
  );
  const cases: [string, Scenario][] = [
    ["creates", { desired: [created, createdPublic] }],
    [
      "updates of every kind of field",
      {
        desired: [changed],
        live: {
          [ACCOUNT_A]: [
            live(id("ch"), {
              client_name: "changed",
              redirect_uris: ["https://old/cb"],
              policy_uri: "https://changed.dev/p",
              allowed_cors_origins: ["https://x"],
            }),
          ],
        },
      },
    ],
    [
      "clears of every optional field",
      {
        desired: [cleared],
        live: {
          [ACCOUNT_A]: [
            live(id("cl"), {
              client_name: "cleared",
              optional_scopes: ["account-settings.read"],
              client_uri: "https://cleared.dev",
              logo_uri: "https://cleared.dev/l",
              policy_uri: "https://cleared.dev/p",
              tos_uri: "https://cleared.dev/t",
              allowed_cors_origins: ["https://a"],
              post_logout_redirect_uris: ["https://a/bye"],
            }),
          ],
        },
      },
    ],
    [
      "promotion with a verified host and a path change",
      {
        desired: [promote],
        live: {
          [ACCOUNT_A]: [
            live(
              id("pr"),
              { client_name: "promote", client_uri: "https://promote.dev" },
              { client_uri_verification: { status: "verified", text: "t" } },
            ),
          ],
        },
      },
    ],
    [
      "deletes under prune: all and ensure: absent",
      {
        desired: [desired("keep"), absent("gone")],
        live: {
          [ACCOUNT_A]: [
            live(id("k"), { client_name: "keep" }),
            live(id("g"), { client_name: "gone" }),
            live(id("f"), { client_name: "foreign" }),
          ],
        },
        policy: policy({ prune: "all" }),
      },
    ],
    [
      "prune: owned across a removed account document",
      {
        desired: [desired("a")],
        live: { [ACCOUNT_A]: [], [ACCOUNT_B]: [live(id("ob"), { client_name: "old-b" })] },
        inventory: { [ACCOUNT_B]: [owned(id("ob"), "old-b"), owned(id("vanished"), "vanished")] },
        policy: policy({ prune: "owned", safety: { allow_empty: true } }),
      },
    ],
  ];

  it.each(cases)("%s", (_name, scenario) => {
    const { first, second } = secondRound(scenario);
    expect(planHasWork(first)).toBe(true);
    expect(second.changes).toEqual([]);
    expect(second.adoptions).toEqual([]);
    expect(second.stale_inventory).toEqual([]);
    expect(second.conflicts).toEqual([]);
  });

  it("a public create stays pending on DNS after apply, with the record the API returned", () => {
    const { first, second, world } = secondRound({ desired: [createdPublic] });
    expect(first.pending[0]?.reason).toContain("create the client, then publish the DNS TXT record");
    const client = world.live.get(ACCOUNT_A)![0]!;
    expect(second.pending).toEqual([
      expect.objectContaining({
        code: "visibility-pending",
        client_id: client.client_id,
        reason: `visibility: public is pending: publish DNS TXT record \`${client.client_uri_verification!.text!}\` at pub.dev (verification pending)`,
      }),
    ]);
  });

  it("the promotion is one PATCH with visibility and the changed fields", () => {
    const { first } = secondRound(cases[3]![1]);
    expect(first.changes).toEqual([
      expect.objectContaining({
        kind: "update",
        body: {
          client_uri: "https://promote.dev/home",
          logo_uri: "https://promote.dev/l.png",
          visibility: "public",
        },
      }),
    ]);
  });
});

describe("matching", () => {
  it("a pinned client_id wins over names and allows a rename", () => {
    const entry = desired("renamed", {}, { client_id: id("pin") });
    const plan = planOf({
      desired: [entry],
      live: {
        [ACCOUNT_A]: [
          live(id("pin"), { client_name: "before" }),
          live(id("other"), { client_name: "renamed" }),
        ],
      },
    });
    expect(plan.changes).toEqual([
      expect.objectContaining({ kind: "update", client_id: id("pin"), body: { client_name: "renamed" } }),
    ]);
    expect(plan.conflicts).toEqual([]);
  });

  it("a pinned client missing live is a conflict, never a create", () => {
    const plan = planOf({ desired: [desired("app", {}, { client_id: id("missing") })] });
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toHaveLength(1);
    expect(plan.conflicts[0]).toMatchObject({ code: "pinned-not-found", client_name: "app" });
    expect(plan.conflicts[0]!.reason).toMatch(/^pinned client not found/);
  });

  it("the inventory wins over a live name", () => {
    const plan = planOf({
      desired: [desired("app")],
      live: {
        [ACCOUNT_A]: [
          live(id("mine"), { client_name: "app-renamed-outside" }),
          live(id("theirs"), { client_name: "app" }),
        ],
      },
      inventory: { [ACCOUNT_A]: [owned(id("mine"), "app")] },
    });
    expect(plan.changes).toEqual([
      expect.objectContaining({ kind: "update", client_id: id("mine"), body: { client_name: "app" } }),
    ]);
    expect(codes(plan.unmanaged)).toEqual(["unmanaged app"]);
    expect(plan.adoptions).toEqual([]);
  });

  it("a unique live name is matched and adopted", () => {
    const entry = desired("app");
    const plan = planOf({ desired: [entry], live: { [ACCOUNT_A]: [liveOf(entry, id("x"))] } });
    expect(plan.changes).toEqual([]);
    expect(plan.adoptions).toEqual([{ account_id: ACCOUNT_A, client_id: id("x"), client_name: "app" }]);
    expect(planHasWork(plan)).toBe(true);
  });

  it("two live clients with the same name are a conflict: no create, no update, no prune", () => {
    const plan = planOf({
      desired: [desired("dup")],
      live: { [ACCOUNT_A]: [live(id("d1"), { client_name: "dup" }), live(id("d2"), { client_name: "dup" })] },
      policy: policy({ prune: "all" }),
    });
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toEqual([
      expect.objectContaining({
        code: "duplicate-live-name",
        reason: `2 live clients are named "dup" (${id("d1")}, ${id("d2")}); pin one with client_id`,
      }),
    ]);
    expect(plan.unmanaged).toEqual([]);
  });

  it("the same name declared twice is a conflict for the second entry", () => {
    const first = desired("twice");
    const second = desired("twice");
    const plan = planOf({ desired: [first, second] });
    expect(kinds(plan)).toEqual(["create twice"]);
    expect(plan.conflicts).toEqual([
      expect.objectContaining({ code: "duplicate-desired", source: second.source }),
    ]);
  });

  it("a live client claimed by a pin cannot also be matched by name", () => {
    const plan = planOf({
      desired: [desired("b", {}, { client_id: id("one") }), desired("a")],
      live: { [ACCOUNT_A]: [live(id("one"), { client_name: "a" })] },
    });
    expect(codes(plan.conflicts)).toEqual(["already-claimed a"]);
  });

  it("a present entry missing required fields is a conflict, and its client is not pruned", () => {
    const entry = desired("broken");
    delete (entry.fields as Record<string, unknown>).redirect_uris;
    const plan = planOf({
      desired: [entry],
      live: { [ACCOUNT_A]: [live(id("b"), { client_name: "broken" })] },
      inventory: { [ACCOUNT_A]: [owned(id("b"), "broken")] },
      policy: policy({ prune: "owned" }),
    });
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toEqual([
      expect.objectContaining({ code: "missing-required", reason: "required fields missing: redirect_uris" }),
    ]);
  });

  it("a verified host change blocks the whole update and protects the client", () => {
    const entry = desired("site", { client_uri: "https://new.dev", logo_uri: "https://new.dev/l" });
    const plan = planOf({
      desired: [entry],
      live: {
        [ACCOUNT_A]: [
          live(
            id("s"),
            { client_name: "site", client_uri: "https://old.dev" },
            {
              client_uri_verification: { status: "verified", text: "t" },
            },
          ),
        ],
      },
      inventory: { [ACCOUNT_A]: [owned(id("s"), "site")] },
      policy: policy({ prune: "all" }),
    });
    expect(plan.changes).toEqual([]);
    expect(codes(plan.conflicts)).toEqual(["needs-replacement site"]);
    expect(plan.conflicts[0]!.reason).toContain("replacement needed");
  });

  it("an unchanged client_uri is never re-sent, even when other fields change", () => {
    const entry = desired("u", { client_uri: "https://u.dev", tos_uri: "https://u.dev/tos" });
    const plan = planOf({
      desired: [entry],
      live: {
        [ACCOUNT_A]: [
          live(
            id("u"),
            { client_name: "u", client_uri: "https://u.dev" },
            {
              client_uri_verification: { status: "failed", text: "t" },
            },
          ),
        ],
      },
    });
    expect(plan.changes).toEqual([expect.objectContaining({ body: { tos_uri: "https://u.dev/tos" } })]);
  });

  it("an auth method change from public to confidential is a conflict, not a patch", () => {
    const entry = desired("conf", { token_endpoint_auth_method: "client_secret_post" });
    const plan = planOf({
      desired: [entry],
      live: { [ACCOUNT_A]: [live(id("c"), { client_name: "conf", token_endpoint_auth_method: "none" })] },
    });
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toEqual([
      expect.objectContaining({ code: "needs-replacement", client_id: id("c") }),
    ]);
  });
});

describe("prune modes", () => {
  const scenario = (prune: "none" | "owned" | "all", ignore: string[] = []): Scenario => ({
    desired: [desired("kept")],
    live: {
      [ACCOUNT_A]: [
        liveOf(desired("kept"), id("kept")),
        live(id("orphan"), { client_name: "orphan" }),
        live(id("foreign"), { client_name: "foreign" }),
      ],
    },
    inventory: { [ACCOUNT_A]: [owned(id("kept"), "kept"), owned(id("orphan"), "orphan")] },
    policy: policy({ prune, ignore }),
  });

  it.each([
    ["none", [], [], ["orphaned orphan"], ["unmanaged foreign"], []],
    ["owned", [], ["delete orphan prune-owned"], [], ["unmanaged foreign"], []],
    ["all", [], ["delete foreign prune-all", "delete orphan prune-owned"], [], [], []],
    ["all", ["foreign"], ["delete orphan prune-owned"], [], [], ["ignored foreign"]],
    ["all", [id("orphan")], ["delete foreign prune-all"], [], [], ["ignored orphan"]],
  ] as const)("prune %s, ignore %j", (prune, ignore, changes, orphaned, unmanaged, skipped) => {
    const plan = planOf(scenario(prune, [...ignore]));
    expect(kinds(plan)).toEqual(changes);
    expect(codes(plan.orphaned)).toEqual(orphaned);
    expect(codes(plan.unmanaged)).toEqual(unmanaged);
    expect(codes(plan.skipped)).toEqual(skipped);
  });

  it("an account without a desired document is planned for its owned clients only", () => {
    const plan = planOf({
      desired: [desired("a")],
      live: {
        [ACCOUNT_B]: [live(id("ob"), { client_name: "old-b" }), live(id("fb"), { client_name: "foreign-b" })],
      },
      inventory: { [ACCOUNT_B]: [owned(id("ob"), "old-b")] },
      policy: policy({ prune: "all", safety: { allow_empty: true } }),
    });
    expect(kinds(plan)).toEqual(["create a", "delete old-b prune-owned"]);
    expect(codes(plan.unmanaged)).toEqual(["unmanaged foreign-b"]);
    expect(
      accountsInScope(inputOf({ desired: [desired("a")] }).desired.accounts, {
        accounts: { [ACCOUNT_B]: [] },
      }),
    ).toEqual([ACCOUNT_A]);
  });

  it("an account in scope whose live clients were not read is skipped", () => {
    const input = inputOf({ desired: [desired("a")] });
    input.live.delete(ACCOUNT_A);
    const plan = computePlan(input);
    expect(plan.changes).toEqual([]);
    expect(codes(plan.skipped)).toEqual(["live-not-read a"]);
  });

  it("an owned id missing live is a stale inventory entry", () => {
    const plan = planOf({
      desired: [],
      emptyAccounts: [ACCOUNT_A],
      inventory: { [ACCOUNT_A]: [owned(id("gone"), "gone")] },
    });
    expect(plan.stale_inventory).toEqual([
      { account_id: ACCOUNT_A, client_id: id("gone"), client_name: "gone" },
    ]);
  });
});

describe("ensure: absent", () => {
  const foreign = live(id("f"), { client_name: "target" });
  it.each([
    [
      "owned, prune none",
      absent("target"),
      "none",
      [owned(id("f"), "target")],
      ["delete target ensure-absent"],
      [],
    ],
    [
      "pinned foreign, prune none",
      absent("whatever", id("f")),
      "none",
      [],
      ["delete target ensure-absent"],
      [],
    ],
    ["name-only foreign, prune none", absent("target"), "none", [], [], ["not-owned target"]],
    ["name-only foreign, prune owned", absent("target"), "owned", [], [], ["not-owned target"]],
    ["name-only foreign, prune all", absent("target"), "all", [], ["delete target ensure-absent"], []],
  ] as const)("%s", (_name, entry, prune, inv, changes, skipped) => {
    const plan = planOf({
      desired: [desired("other"), entry],
      live: { [ACCOUNT_A]: [foreign, liveOf(desired("other"), id("o"))] },
      inventory: { [ACCOUNT_A]: [...inv, owned(id("o"), "other")] },
      policy: policy({ prune }),
    });
    expect(kinds(plan)).toEqual(changes);
    expect(codes(plan.skipped)).toEqual(skipped);
    expect(plan.unmanaged).toEqual([]);
  });

  it("name-only foreign listed in ignore under prune all is skipped", () => {
    const plan = planOf({
      desired: [absent("target")],
      live: { [ACCOUNT_A]: [foreign] },
      policy: policy({ prune: "all", ignore: ["target"] }),
    });
    expect(plan.changes).toEqual([]);
    expect(codes(plan.skipped)).toEqual(["not-owned target"]);
  });

  it("an absent client that is already gone plans nothing, pinned or not", () => {
    const plan = planOf({ desired: [absent("gone"), absent("gone-pinned", id("nope"))] });
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toEqual([]);
  });

  it("an absent entry matching duplicate names is a conflict", () => {
    const plan = planOf({
      desired: [absent("dup")],
      live: { [ACCOUNT_A]: [live(id("d1"), { client_name: "dup" }), live(id("d2"), { client_name: "dup" })] },
      policy: policy({ prune: "all" }),
    });
    expect(plan.changes).toEqual([]);
    expect(codes(plan.conflicts)).toEqual(["duplicate-live-name dup"]);
  });
});

describe("plan shape", () => {
  it("sorts changes by kind, then account, then name", () => {
    const plan = planOf({
      desired: [
        desired("zeta", {}, { account_id: ACCOUNT_B }),
        desired("beta"),
        desired("alpha", {}, { account_id: ACCOUNT_B }),
        desired("upd"),
        desired("alpha"),
      ],
      live: {
        [ACCOUNT_A]: [
          live(id("u"), { client_name: "upd", tos_uri: "https://x" }),
          live(id("z"), { client_name: "zz" }),
        ],
        [ACCOUNT_B]: [live(id("y"), { client_name: "yy" }), live(id("b"), { client_name: "bb" })],
      },
      inventory: {
        [ACCOUNT_A]: [owned(id("z"), "zz")],
        [ACCOUNT_B]: [owned(id("y"), "yy"), owned(id("b"), "bb")],
      },
      policy: policy({ prune: "owned" }),
    });
    expect(plan.changes.map((c) => `${c.kind} ${c.account_id.slice(0, 1)} ${c.client_name}`)).toEqual([
      "create a alpha",
      "create a beta",
      "create b alpha",
      "create b zeta",
      "update a upd",
      "delete a zz",
      "delete b bb",
      "delete b yy",
    ]);
    expect(plan.summary).toMatchObject({ create: 4, update: 1, delete: 3, adoptions: 1 });
  });

  it("is deterministic and JSON-able, with an empty rotations list", () => {
    const s: Scenario = {
      desired: [desired("a"), desired("b")],
      live: { [ACCOUNT_A]: [live(id("b"), { client_name: "b" })] },
    };
    const one = planOf(s);
    const two = planOf(s);
    expect(JSON.parse(JSON.stringify(one))).toEqual(one);
    expect(one.checksum).toBe(two.checksum);
    expect(one.rotations).toEqual([]);
    expect(one.version).toBe(2);
  });

  it("never carries a live secret", () => {
    const leaked = {
      ...live(id("s"), { client_name: "s", logo_uri: "https://l" }),
      client_secret: "canary-secret-1",
    };
    const plan = planOf({
      desired: [desired("s")],
      live: { [ACCOUNT_A]: [leaked as LiveClient] },
      policy: policy({ prune: "all" }),
    });
    expect(JSON.stringify(plan)).not.toContain("canary-secret-1");
  });
});

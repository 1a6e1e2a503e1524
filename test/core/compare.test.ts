import { describe, expect, it } from "vitest";
import type { CreateClientBody, LiveClient } from "../../src/api/oauth-clients.js";
import { WRITABLE_FIELDS } from "../../src/api/oauth-clients.js";
import {
  FIELD_RULES,
  compareClient,
  createBody,
  effectiveScopes,
  hostOf,
  normaliseFields,
  prepareDesired,
  promotionGaps,
} from "../../src/core/compare.js";
import { desired, id, live } from "./fixtures.js";

/** Compares a desired entry built from `want` with a live client built from `have` (+ extra live fields). */
function compare(
  want: Partial<CreateClientBody>,
  have: Partial<CreateClientBody>,
  extra: Partial<LiveClient> = {},
  visibility: "public" | "private" = "private",
) {
  const entry = desired("app", want, { visibility });
  for (const [k, v] of Object.entries(want))
    if (v === undefined) delete (entry.fields as Record<string, unknown>)[k];
  const client = live(id("c1"), have, extra);
  for (const [k, v] of Object.entries(have))
    if (v === undefined) delete (client as Record<string, unknown>)[k];
  return compareClient(prepareDesired(entry), client);
}

describe("FIELD_RULES", () => {
  it("has a rule for every writable field and nothing else", () => {
    expect(Object.keys(FIELD_RULES).sort()).toEqual([...WRITABLE_FIELDS].sort());
  });
});

interface FieldCase {
  name: string;
  want: Partial<CreateClientBody>;
  have: Partial<CreateClientBody>;
  extra?: Partial<LiveClient>;
  /** Expected PATCH body; `{}` means no change. */
  body: Record<string, unknown>;
}

const U = undefined;

const FIELD_CASES: FieldCase[] = [
  // client_name
  { name: "client_name equal", want: {}, have: { client_name: "app" }, body: {} },
  { name: "client_name differs", want: {}, have: { client_name: "old" }, body: { client_name: "app" } },
  // redirect_uris (set)
  {
    name: "redirect_uris reordered with duplicates",
    want: { redirect_uris: ["https://b/cb", "https://a/cb", "https://b/cb"] },
    have: { redirect_uris: ["https://a/cb", "https://b/cb"] },
    body: {},
  },
  {
    name: "redirect_uris added",
    want: { redirect_uris: ["https://a/cb", "https://b/cb", "https://a/cb"] },
    have: { redirect_uris: ["https://a/cb"] },
    body: { redirect_uris: ["https://a/cb", "https://b/cb"] },
  },
  // grant_types, response_types (sets)
  {
    name: "grant_types reordered",
    want: { grant_types: ["refresh_token", "authorization_code"] },
    have: { grant_types: ["authorization_code", "refresh_token"] },
    body: {},
  },
  {
    name: "grant_types differ",
    want: { grant_types: ["authorization_code", "refresh_token"] },
    have: { grant_types: ["authorization_code"] },
    body: { grant_types: ["authorization_code", "refresh_token"] },
  },
  {
    name: "response_types reordered",
    want: { response_types: ["id_token", "code"] },
    have: { response_types: ["code", "id_token"] },
    body: {},
  },
  {
    name: "response_types differ",
    want: { response_types: ["code"] },
    have: { response_types: ["code", "token"] },
    body: { response_types: ["code"] },
  },
  // scopes (protocol-aware set)
  {
    name: "scopes without offline_access, live has it from refresh_token",
    want: { grant_types: ["authorization_code", "refresh_token"], scopes: ["account-settings.read"] },
    have: { grant_types: ["authorization_code", "refresh_token"], scopes: ["account-settings.read"] },
    body: {},
  },
  {
    name: "scopes written with offline_access and openid, consistent",
    want: {
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code", "id_token"],
      scopes: ["openid", "account-settings.read", "offline_access"],
    },
    have: {
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code", "id_token"],
      scopes: ["account-settings.read"],
    },
    body: {},
  },
  {
    name: "scopes written without openid while id_token is a response type",
    want: { response_types: ["code", "id_token"], scopes: ["profile", "account-settings.read"] },
    have: { response_types: ["code", "id_token"], scopes: ["account-settings.read", "profile"] },
    body: {},
  },
  {
    name: "scopes differ: body carries the protocol scopes the server will hold",
    want: {
      grant_types: ["authorization_code", "refresh_token"],
      scopes: ["openid", "account-settings.read", "user-details.read"],
    },
    have: { grant_types: ["authorization_code", "refresh_token"], scopes: ["account-settings.read"] },
    body: { scopes: ["account-settings.read", "user-details.read", "offline_access"] },
  },
  // optional_scopes (optional set)
  { name: "optional_scopes omitted, live absent", want: { optional_scopes: U }, have: {}, body: {} },
  {
    name: "optional_scopes omitted, live []",
    want: { optional_scopes: U },
    have: { optional_scopes: [] },
    body: {},
  },
  { name: "optional_scopes [] , live absent", want: { optional_scopes: [] }, have: {}, body: {} },
  {
    name: "optional_scopes omitted, live set: cleared",
    want: { optional_scopes: U },
    have: { optional_scopes: ["account-settings.read"] },
    body: { optional_scopes: null },
  },
  {
    name: "optional_scopes [] , live set: cleared",
    want: { optional_scopes: [] },
    have: { optional_scopes: ["account-settings.read"] },
    body: { optional_scopes: null },
  },
  // token_endpoint_auth_method
  { name: "auth method equal", want: {}, have: {}, body: {} },
  {
    name: "auth method basic -> post",
    want: { token_endpoint_auth_method: "client_secret_post" },
    have: {},
    body: { token_endpoint_auth_method: "client_secret_post" },
  },
  // client_uri
  {
    name: "client_uri unchanged (pending verification) is not re-sent",
    want: { client_uri: "https://app.example.com" },
    have: { client_uri: "https://app.example.com" },
    extra: { client_uri_verification: { status: "failed", text: "cloudflare_oauth_client_publisher=x" } },
    body: {},
  },
  {
    name: "client_uri host change while unverified",
    want: { client_uri: "https://new.example.com" },
    have: { client_uri: "https://old.example.com" },
    extra: { client_uri_verification: { status: "pending", text: "t" } },
    body: { client_uri: "https://new.example.com" },
  },
  {
    name: "client_uri path change while verified",
    want: { client_uri: "https://app.example.com/about" },
    have: { client_uri: "https://app.example.com" },
    extra: { client_uri_verification: { status: "verified", text: "t" } },
    body: { client_uri: "https://app.example.com/about" },
  },
  {
    name: "client_uri omitted, live unverified: cleared",
    want: { client_uri: U },
    have: { client_uri: "https://app.example.com" },
    extra: { client_uri_verification: { status: "pending", text: "t" } },
    body: { client_uri: null },
  },
  {
    name: "client_uri set on a client without one",
    want: { client_uri: "https://x.dev" },
    have: {},
    body: { client_uri: "https://x.dev" },
  },
  // optional scalars
  ...(["logo_uri", "policy_uri", "tos_uri"] as const).flatMap((f): FieldCase[] => [
    { name: `${f} omitted, live absent`, want: { [f]: U }, have: {}, body: {} },
    { name: `${f} "" , live absent`, want: { [f]: "" }, have: {}, body: {} },
    { name: `${f} equal`, want: { [f]: "https://x.dev/a" }, have: { [f]: "https://x.dev/a" }, body: {} },
    {
      name: `${f} omitted, live set: cleared`,
      want: { [f]: U },
      have: { [f]: "https://x.dev/a" },
      body: { [f]: null },
    },
    {
      name: `${f} changed`,
      want: { [f]: "https://x.dev/b" },
      have: { [f]: "https://x.dev/a" },
      body: { [f]: "https://x.dev/b" },
    },
  ]),
  // optional sets
  ...(["allowed_cors_origins", "post_logout_redirect_uris"] as const).flatMap((f): FieldCase[] => [
    { name: `${f} omitted, live absent`, want: { [f]: U }, have: {}, body: {} },
    { name: `${f} omitted, live []`, want: { [f]: U }, have: { [f]: [] }, body: {} },
    {
      name: `${f} reordered`,
      want: { [f]: ["https://b", "https://a"] },
      have: { [f]: ["https://a", "https://b"] },
      body: {},
    },
    {
      name: `${f} omitted, live set: cleared`,
      want: { [f]: U },
      have: { [f]: ["https://a"] },
      body: { [f]: null },
    },
    {
      name: `${f} changed`,
      want: { [f]: ["https://a", "https://c"] },
      have: { [f]: ["https://a"] },
      body: { [f]: ["https://a", "https://c"] },
    },
  ]),
];

describe("compareClient field by field", () => {
  it.each(FIELD_CASES)("$name", ({ want, have, extra, body }) => {
    const result = compare(want, have, extra);
    expect(result.body).toEqual(body);
    expect(result.fields.map((f) => f.field)).toEqual(Object.keys(body));
    expect(result.conflicts).toEqual([]);
    for (const f of result.fields) expect(f.new).toEqual(body[f.field]);
  });

  it("records the live value as old and null for an unset live field", () => {
    const result = compare({ logo_uri: "https://x.dev/l.png" }, { client_name: "old" });
    expect(result.fields).toEqual([
      { field: "client_name", old: "old", new: "app" },
      { field: "logo_uri", old: null, new: "https://x.dev/l.png" },
    ]);
  });

  it("never reads unknown live fields (a create response's secret)", () => {
    const client = { ...live(id("c1"), {}), client_secret: "canary-secret" } as LiveClient;
    const result = compareClient(prepareDesired(desired("app")), client);
    expect(JSON.stringify(result)).not.toContain("canary-secret");
  });
});

describe("token_endpoint_auth_method transitions", () => {
  it("between confidential methods is a plain patch", () => {
    const result = compare(
      { token_endpoint_auth_method: "client_secret_post" },
      { token_endpoint_auth_method: "client_secret_basic" },
    );
    expect(result.body).toEqual({ token_endpoint_auth_method: "client_secret_post" });
    expect(result.conflicts).toEqual([]);
  });

  it.each([
    ["none", "client_secret_basic"],
    ["client_secret_post", "none"],
  ] as const)("%s -> %s needs replacement and is never patched", (from, to) => {
    const result = compare({ token_endpoint_auth_method: to }, { token_endpoint_auth_method: from });
    expect(result.body).toEqual({});
    expect(result.conflicts).toEqual([
      expect.objectContaining({
        code: "needs-replacement",
        blocking: true,
        reason: expect.stringContaining(`from ${from} to ${to}`),
      }),
    ]);
  });
});

describe("verified client_uri host", () => {
  const verified = { client_uri_verification: { status: "verified" as const, text: "t" } };

  it("a host change is a blocking needs-replacement conflict, not a patch", () => {
    const result = compare(
      { client_uri: "https://new.example.com", logo_uri: "https://l" },
      { client_uri: "https://app.example.com" },
      verified,
    );
    expect(result.conflicts).toEqual([
      {
        code: "needs-replacement",
        blocking: true,
        reason:
          "client_uri host app.example.com is verified and cannot change to new.example.com; " +
          "replacement needed: create a new client (new name) and delete this one",
      },
    ]);
    expect(result.body).not.toHaveProperty("client_uri");
  });

  it("clearing a verified client_uri also needs replacement", () => {
    const result = compare({ client_uri: U }, { client_uri: "https://app.example.com" }, verified);
    expect(result.conflicts[0]?.code).toBe("needs-replacement");
    expect(result.conflicts[0]?.reason).toContain("cannot be removed");
  });

  it("host comparison ignores case", () => {
    const result = compare(
      { client_uri: "https://APP.example.com/x" },
      { client_uri: "https://app.example.com" },
      verified,
    );
    expect(result.conflicts).toEqual([]);
    expect(result.body).toEqual({ client_uri: "https://APP.example.com/x" });
  });
});

describe("visibility ratchet", () => {
  const ready: Partial<CreateClientBody> = {
    logo_uri: "https://app.example.com/logo.png",
    client_uri: "https://app.example.com",
  };
  const verified = {
    client_uri_verification: { status: "verified" as const, text: "cloudflare_oauth_client_publisher=abc" },
  };

  it("promotes when every precondition holds", () => {
    const result = compare(ready, ready, verified, "public");
    expect(result.body).toEqual({ visibility: "public" });
    expect(result.fields).toEqual([{ field: "visibility", old: "private", new: "public" }]);
    expect(result.pending).toEqual([]);
  });

  it("judges name, logo and scopes on the post-patch values", () => {
    const result = compare(ready, { client_uri: ready.client_uri }, verified, "public");
    expect(result.body).toEqual({ logo_uri: ready.logo_uri, visibility: "public" });
  });

  it("is pending with the exact DNS TXT record while verification is pending", () => {
    const pending = {
      client_uri_verification: {
        status: "pending" as const,
        text: "cloudflare_oauth_client_publisher=abc123",
      },
    };
    const result = compare(ready, ready, pending, "public");
    expect(result.body).toEqual({});
    expect(result.pending).toEqual([
      {
        code: "visibility-pending",
        blocking: false,
        reason:
          "visibility: public is pending: publish DNS TXT record `cloudflare_oauth_client_publisher=abc123` at app.example.com (verification pending)",
      },
    ]);
  });

  it("lists every missing precondition", () => {
    const result = compare(
      { logo_uri: U, client_uri: U, scopes: ["profile", "email"] },
      { scopes: ["profile", "email"] },
      {},
      "public",
    );
    expect(result.pending[0]?.reason).toBe(
      "visibility: public is pending: set logo_uri; " +
        "add at least one non-identity scope (a dot-delimited API scope such as account-settings.read); " +
        "set client_uri (its host must be verified)",
    );
  });

  it("is pending when client_uri moves in this very plan", () => {
    const result = compare(
      { ...ready, client_uri: "https://other.example.com" },
      ready,
      { client_uri_verification: { status: "failed", text: "t" } },
      "public",
    );
    expect(result.body).toEqual({ client_uri: "https://other.example.com" });
    expect(result.pending[0]?.reason).toContain("client_uri moves to other.example.com in this plan");
  });

  it("reports a failed verification with its record", () => {
    const result = compare(
      ready,
      ready,
      { client_uri_verification: { status: "failed", text: "rec=1" } },
      "public",
    );
    expect(result.pending[0]?.reason).toContain(
      "publish DNS TXT record `rec=1` at app.example.com (verification failed",
    );
  });

  it("a verification without a status (optional in the OpenAPI document) is not taken as verified", () => {
    const result = compare(ready, ready, { client_uri_verification: { text: "rec=2" } }, "public");
    expect(result.body).toEqual({});
    expect(result.pending[0]?.reason).toBe(
      "visibility: public is pending: publish DNS TXT record `rec=2` at app.example.com " +
        "(verification status not reported)",
    );
  });

  it("public -> private is a non-blocking conflict, never a change", () => {
    const result = compare({}, { client_name: "old" }, { visibility: "public" }, "private");
    expect(result.body).toEqual({ client_name: "app" });
    expect(result.conflicts).toEqual([
      expect.objectContaining({ code: "visibility-downgrade", blocking: false }),
    ]);
    expect(result.conflicts[0]?.reason).toContain("cannot be made private again");
  });

  it("public stays public with no item", () => {
    const result = compare(ready, ready, { ...verified, visibility: "public" }, "public");
    expect(result).toEqual({ fields: [], body: {}, conflicts: [], pending: [] });
  });

  it("promotionGaps for a create asks to create first", () => {
    const gaps = promotionGaps(prepareDesired(desired("new", ready, { visibility: "public" })), undefined);
    expect(gaps).toEqual([
      "create the client, then publish the DNS TXT record the API returns for app.example.com (the next plan shows it)",
    ]);
  });
});

describe("helpers", () => {
  it("effectiveScopes keeps user order, drops inconsistent protocol scopes, appends implied ones", () => {
    expect(
      effectiveScopes(
        ["offline_access", "b.read", "a.read", "b.read"],
        ["authorization_code"],
        ["code", "id_token"],
      ),
    ).toEqual(["b.read", "a.read", "openid"]);
    expect(effectiveScopes(["a.read"], ["authorization_code", "refresh_token"], ["code"])).toEqual([
      "a.read",
      "offline_access",
    ]);
  });

  it("normaliseFields treats absent, empty string and empty array alike", () => {
    const a = normaliseFields({ logo_uri: "", allowed_cors_origins: [] });
    const b = normaliseFields({});
    expect(a).toEqual(b);
  });

  it("hostOf falls back to the raw text for a non-URL", () => {
    expect(hostOf("https://Example.COM:8443/x")).toBe("example.com");
    expect(hostOf("not a url")).toBe("not a url");
  });

  it("createBody sends required fields and only the optional fields that are set", () => {
    const body = createBody(
      prepareDesired(
        desired("x", { optional_scopes: [], logo_uri: "", allowed_cors_origins: ["https://a", "https://a"] }),
      ),
    );
    expect(body).toEqual({
      client_name: "x",
      redirect_uris: ["https://app.example.com/callback"],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      scopes: ["account-settings.read"],
      token_endpoint_auth_method: "client_secret_basic",
      allowed_cors_origins: ["https://a"],
    });
  });

  it("prepareDesired lists missing required fields", () => {
    const entry = desired("x");
    delete (entry.fields as Record<string, unknown>).redirect_uris;
    delete (entry.fields as Record<string, unknown>).scopes;
    expect(prepareDesired(entry).missing).toEqual(["redirect_uris", "scopes"]);
  });
});

import { describe, expect, it } from "vitest";
import { FAILURES } from "../../src/emulator/behaviour.js";
import { ACCOUNT_A, ACCOUNT_B, control, useEmulator, verifyClientUri } from "../helpers/emulator.js";
import { call, clientBody, createClient, errorCode, type Client } from "./support.js";

/** Every API rule of docs/API-BEHAVIOUR.md, over real HTTP. The clock ticks one second per reading. */
let tick = Date.parse("2026-01-01T00:00:00.000Z");
const emu = useEmulator({ now: () => new Date((tick += 1000)) });
const CLIENTS = `/accounts/${ACCOUNT_A}/oauth_clients`;

async function patch(id: string, body: unknown) {
  return call<Client>(emu(), "PATCH", `${CLIENTS}/${id}`, { body });
}

async function getClient(id: string, account = ACCOUNT_A) {
  return call<Client>(emu(), "GET", `/accounts/${account}/oauth_clients/${id}`);
}

describe("create", () => {
  it("returns 200, the envelope, a 32-hex id, private visibility, timestamps and the secret once", async () => {
    const reply = await call<Client>(emu(), "POST", CLIENTS, { body: clientBody() });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ success: true, errors: [], messages: [] });
    const c = reply.body.result;
    expect(c.client_id).toMatch(/^[0-9a-f]{32}$/);
    expect(c.visibility).toBe("private");
    expect(c.has_rotated_secret).toBe(false);
    expect(c.client_secret).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(c.created_at).toISOString()).toBe(c.created_at);
    expect(c.updated_at).toBe(c.created_at);
    for (const unset of [
      "logo_uri",
      "client_uri",
      "client_uri_verification",
      "optional_scopes",
      "promoted_at",
    ]) {
      expect(c).not.toHaveProperty(unset);
    }
    const read = await getClient(c.client_id);
    expect(read.body.result).not.toHaveProperty("client_secret");
    const listed = await call<Client[]>(emu(), "GET", CLIENTS);
    expect(listed.body.result.find((x) => x.client_id === c.client_id)).not.toHaveProperty("client_secret");
  });

  it("returns no secret for a `none` client", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { token_endpoint_auth_method: "none" });
    expect(c).not.toHaveProperty("client_secret");
  });

  it.each([
    "client_name",
    "grant_types",
    "redirect_uris",
    "response_types",
    "scopes",
    "token_endpoint_auth_method",
  ])("refuses a create without required field %s", async (field) => {
    const body = clientBody();
    delete body[field];
    const reply = await call(emu(), "POST", CLIENTS, { body });
    expect(reply.status).toBe(400);
    expect(reply.body.success).toBe(false);
    expect(reply.body.result).toBeNull();
    expect(errorCode(reply)).toBe(FAILURES.invalidField.code);
    expect(reply.body.errors[0]?.message).toContain(field);
  });

  it.each([
    ["an unknown grant type", { grant_types: ["authorization_code", "client_credentials"] }],
    ["grant_types without authorization_code", { grant_types: ["refresh_token"] }],
    ["an unknown response type", { response_types: ["code", "device"] }],
    ["an unknown auth method", { token_endpoint_auth_method: "private_key_jwt" }],
    ["a non-array scopes", { scopes: "email" }],
    ["a non-string client_name", { client_name: 7 }],
    ["empty redirect_uris", { redirect_uris: [] }],
    ["duplicate redirect_uris", { redirect_uris: ["https://a.example/cb", "https://a.example/cb"] }],
    ["a relative logo_uri", { logo_uri: "/logo.png" }],
    ["a CORS origin with a path", { allowed_cors_origins: ["https://a.example/path"] }],
  ])("refuses %s with 400", async (_name, override) => {
    const reply = await call(emu(), "POST", CLIENTS, { body: clientBody(override) });
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(FAILURES.invalidField.code);
  });

  it.each(["visibility", "client_id"])("refuses %s in a create body (cannot be sent)", async (field) => {
    const reply = await call(emu(), "POST", CLIENTS, { body: clientBody({ [field]: "private" }) });
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(FAILURES.fieldNotAllowed.code);
  });

  it("ignores unknown fields", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { colour: "blue" });
    expect(c).not.toHaveProperty("colour");
  });

  it.each([
    ["not JSON", "{nope"],
    ["a JSON array", "[]"],
  ])("refuses a body that is %s", async (_name, raw) => {
    const reply = await call(emu(), "POST", CLIENTS, { body: raw });
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(FAILURES.invalidJson.code);
  });
});

describe("scopes", () => {
  it.each([
    ["a colon scope", ["account:read"], FAILURES.invalidScope.code],
    ["a dot scope not in the catalogue", ["account.read"], FAILURES.invalidScope.code],
    ["a scope with spaces", ["email profile"], FAILURES.invalidScope.code],
  ])("refuses %s", async (_name, scopes, code) => {
    const reply = await call(emu(), "POST", CLIENTS, { body: clientBody({ scopes }) });
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(code);
  });

  it("accepts catalogue scopes and simple identity scopes", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { scopes: ["workers-scripts.write", "email", "profile"] });
    expect(c.scopes).toEqual(["workers-scripts.write", "email", "profile"]);
  });

  it.each([
    [["authorization_code"], ["code"], ["email"], ["email"]],
    [["authorization_code", "refresh_token"], ["code"], ["email"], ["email", "offline_access"]],
    [["authorization_code"], ["code", "id_token"], ["email"], ["email", "openid"]],
    [
      ["authorization_code", "refresh_token"],
      ["code", "id_token"],
      ["openid", "email"],
      ["email", "openid", "offline_access"],
    ],
    [["authorization_code"], ["code"], ["email", "openid", "offline_access"], ["email"]],
  ])(
    "grant_types %j + response_types %j + scopes %j store scopes %j",
    async (grant_types, response_types, scopes, stored) => {
      const c = await createClient(emu(), ACCOUNT_A, { grant_types, response_types, scopes });
      expect(c.scopes).toEqual(stored);
      expect((await getClient(c.client_id)).body.result.scopes).toEqual(stored);
    },
  );

  it("re-derives protocol scopes on PATCH", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { grant_types: ["authorization_code", "refresh_token"] });
    expect(c.scopes).toContain("offline_access");
    const dropped = await patch(c.client_id, { grant_types: ["authorization_code"] });
    expect(dropped.body.result.scopes).not.toContain("offline_access");
    const added = await patch(c.client_id, { response_types: ["code", "id_token"] });
    expect(added.body.result.scopes).toEqual(["account-settings.read", "email", "openid"]);
  });

  it("accepts optional scopes that are in scopes", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { optional_scopes: ["email"] });
    expect(c.optional_scopes).toEqual(["email"]);
  });

  it.each([
    ["a scope missing from scopes", { optional_scopes: ["profile"] }],
    ["openid", { response_types: ["code", "id_token"], optional_scopes: ["openid"] }],
    ["offline", { scopes: ["email", "offline"], optional_scopes: ["offline"] }],
    [
      "offline_access",
      { grant_types: ["authorization_code", "refresh_token"], optional_scopes: ["offline_access"] },
    ],
  ])("refuses %s as an optional scope", async (_name, override) => {
    const reply = await call(emu(), "POST", CLIENTS, { body: clientBody(override) });
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(FAILURES.invalidOptionalScope.code);
  });

  it("serves the catalogue at GET /oauth/scopes", async () => {
    const reply = await call<Array<{ id: string; name: string }>>(emu(), "GET", "/oauth/scopes");
    expect(reply.status).toBe(200);
    expect(reply.body.result.length).toBeGreaterThanOrEqual(30);
    expect(reply.body.result.map((s) => s.id)).toEqual(
      expect.arrayContaining(["account-settings.read", "user-details.read"]),
    );
  });
});

describe("PATCH", () => {
  it("changes only the sent fields and bumps updated_at", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { logo_uri: "https://app.example.com/logo.png" });
    const reply = await patch(c.client_id, { client_name: "Renamed" });
    expect(reply.status).toBe(200);
    const { updated_at, client_name, ...rest } = reply.body.result;
    const { updated_at: before, client_name: _n, client_secret: _s, ...restBefore } = c;
    expect(client_name).toBe("Renamed");
    expect(rest).toEqual(restBefore);
    expect(updated_at > before).toBe(true);
  });

  it("replaces arrays whole", async () => {
    const c = await createClient(emu(), ACCOUNT_A, {
      redirect_uris: ["https://a.example/1", "https://a.example/2"],
    });
    const reply = await patch(c.client_id, { redirect_uris: ["https://a.example/3"] });
    expect(reply.body.result["redirect_uris"]).toEqual(["https://a.example/3"]);
  });

  it("clears an optional field with null and refuses null for a required one", async () => {
    const c = await createClient(emu(), ACCOUNT_A, {
      logo_uri: "https://app.example.com/logo.png",
      optional_scopes: ["email"],
    });
    const cleared = await patch(c.client_id, { logo_uri: null, optional_scopes: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.result).not.toHaveProperty("logo_uri");
    expect(cleared.body.result).not.toHaveProperty("optional_scopes");
    const refused = await patch(c.client_id, { client_name: null });
    expect(refused.status).toBe(400);
    expect(errorCode(refused)).toBe(FAILURES.invalidField.code);
  });

  it("re-validates the merged result and changes nothing when it fails", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { optional_scopes: ["email"] });
    const refused = await patch(c.client_id, { scopes: ["account-settings.read"], client_name: "Never" });
    expect(refused.status).toBe(400);
    expect(errorCode(refused)).toBe(FAILURES.invalidOptionalScope.code);
    const after = await getClient(c.client_id);
    expect(after.body.result["client_name"]).toBe("Demo app");
    expect(after.body.result.updated_at).toBe(c.updated_at);
  });

  it("accepts {} and a PATCH with no body", async () => {
    const c = await createClient(emu(), ACCOUNT_A);
    const empty = await patch(c.client_id, {});
    expect(empty.status).toBe(200);
    expect(empty.body.result.updated_at > c.updated_at).toBe(true);
    const none = await call(emu(), "PATCH", `${CLIENTS}/${c.client_id}`);
    expect(none.status).toBe(200);
  });

  it("allows basic <-> post but refuses moving between none and a confidential method", async () => {
    const c = await createClient(emu(), ACCOUNT_A);
    expect((await patch(c.client_id, { token_endpoint_auth_method: "client_secret_basic" })).status).toBe(
      200,
    );
    const refused = await patch(c.client_id, { token_endpoint_auth_method: "none" });
    expect(refused.status).toBe(400);
    expect(errorCode(refused)).toBe(FAILURES.authMethodChangeRefused.code);
  });
});

describe("client_uri verification", () => {
  it("starts pending with the publisher TXT value on create", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { client_uri: "https://app.example.com/" });
    expect(c.client_uri_verification).toEqual({
      status: "pending",
      text: expect.stringMatching(/^cloudflare_oauth_client_publisher=[0-9a-f]{32}$/),
    });
  });

  it("restarts at pending when the same client_uri is sent again (failed verification)", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { client_uri: "https://app.example.com/" });
    await control(emu(), "POST", "verification", {
      account_id: ACCOUNT_A,
      client_id: c.client_id,
      status: "failed",
    });
    const reply = await patch(c.client_id, { client_uri: "https://app.example.com/" });
    expect(reply.body.result.client_uri_verification).toEqual(c.client_uri_verification);
  });

  it("locks a verified host: a different host or null is 400, a new path keeps it verified", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { client_uri: "https://app.example.com/" });
    await verifyClientUri(emu(), ACCOUNT_A, c.client_id);
    const otherHost = await patch(c.client_id, { client_uri: "https://other.example.com/" });
    expect(otherHost.status).toBe(400);
    expect(errorCode(otherHost)).toBe(FAILURES.clientUriHostLocked.code);
    const removed = await patch(c.client_id, { client_uri: null });
    expect(errorCode(removed)).toBe(FAILURES.clientUriHostLocked.code);
    const newPath = await patch(c.client_id, { client_uri: "https://app.example.com/about" });
    expect(newPath.status).toBe(200);
    expect(newPath.body.result.client_uri_verification?.status).toBe("verified");
  });

  it("gives an unverified host change a new token", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { client_uri: "https://app.example.com/" });
    const reply = await patch(c.client_id, { client_uri: "https://new.example.com/" });
    expect(reply.body.result.client_uri_verification?.status).toBe("pending");
    expect(reply.body.result.client_uri_verification?.text).not.toBe(c.client_uri_verification?.text);
  });
});

describe("visibility", () => {
  const promotable = {
    client_uri: "https://app.example.com/",
    logo_uri: "https://app.example.com/logo.png",
  };

  it("refuses promotion and names every gap", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { client_name: " ", scopes: ["email"] });
    const reply = await patch(c.client_id, { visibility: "public" });
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(FAILURES.promotionRefused.code);
    for (const gap of ["client_name", "logo_uri", "client_uri", "non-identity scope"]) {
      expect(reply.body.errors[0]?.message).toContain(gap);
    }
  });

  it("refuses promotion while the host is only pending", async () => {
    const c = await createClient(emu(), ACCOUNT_A, promotable);
    const reply = await patch(c.client_id, { visibility: "public" });
    expect(reply.body.errors[0]?.message).toContain("not verified");
  });

  it("promotes after verification, sets promoted_at, and refuses demotion", async () => {
    const c = await createClient(emu(), ACCOUNT_A, promotable);
    await verifyClientUri(emu(), ACCOUNT_A, c.client_id);
    const promoted = await patch(c.client_id, { visibility: "public" });
    expect(promoted.status).toBe(200);
    expect(promoted.body.result.visibility).toBe("public");
    expect(promoted.body.result["promoted_at"]).toBe(promoted.body.result.updated_at);
    const again = await patch(c.client_id, { visibility: "public" });
    expect(again.body.result["promoted_at"]).toBe(promoted.body.result["promoted_at"]);
    const demoted = await patch(c.client_id, { visibility: "private" });
    expect(demoted.status).toBe(400);
    expect(errorCode(demoted)).toBe(FAILURES.demotionRefused.code);
    expect((await getClient(c.client_id)).body.result.visibility).toBe("public");
  });

  it.each(["private", "internal", null])("refuses visibility %j on a private client", async (value) => {
    const c = await createClient(emu(), ACCOUNT_A);
    const reply = await patch(c.client_id, { visibility: value });
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(FAILURES.fieldNotAllowed.code);
  });
});

describe("secrets", () => {
  const check = (id: string, secret: string | undefined) =>
    control<{ valid: boolean; slot: string | null }>(emu(), "POST", "check-secret", {
      account_id: ACCOUNT_A,
      client_id: id,
      client_secret: secret,
    });

  it("rotates once, keeps the old secret valid until deleted, then keeps only the newest", async () => {
    const c = await createClient(emu(), ACCOUNT_A);
    const rotated = await call<{ client_secret: string }>(
      emu(),
      "POST",
      `${CLIENTS}/${c.client_id}/rotate_secret`,
    );
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.result.client_secret;
    expect(fresh).toMatch(/^[0-9a-f]{64}$/);
    expect(fresh).not.toBe(c.client_secret);
    const afterRotate = (await getClient(c.client_id)).body.result;
    expect(afterRotate["has_rotated_secret"]).toBe(true);
    expect(afterRotate.updated_at > c.updated_at).toBe(true);
    expect(await check(c.client_id, c.client_secret)).toEqual({ valid: true, slot: "rotated" });
    expect(await check(c.client_id, fresh)).toEqual({ valid: true, slot: "current" });

    const second = await call(emu(), "POST", `${CLIENTS}/${c.client_id}/rotate_secret`);
    expect(second.status).toBe(400);
    expect(errorCode(second)).toBe(FAILURES.rotateRefused.code);

    const deleted = await call(emu(), "DELETE", `${CLIENTS}/${c.client_id}/rotate_secret`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.result).toEqual({ id: c.client_id });
    const afterDelete = (await getClient(c.client_id)).body.result;
    expect(afterDelete["has_rotated_secret"]).toBe(false);
    expect(afterDelete.updated_at > afterRotate.updated_at).toBe(true);
    expect(await check(c.client_id, c.client_secret)).toEqual({ valid: false, slot: null });
    expect(await check(c.client_id, fresh)).toEqual({ valid: true, slot: "current" });

    const again = await call(emu(), "DELETE", `${CLIENTS}/${c.client_id}/rotate_secret`);
    expect(again.status).toBe(400);
    expect(errorCode(again)).toBe(FAILURES.noRotatedSecret.code);
  });

  it("refuses rotation for a `none` client", async () => {
    const c = await createClient(emu(), ACCOUNT_A, { token_endpoint_auth_method: "none" });
    const reply = await call(emu(), "POST", `${CLIENTS}/${c.client_id}/rotate_secret`);
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe(FAILURES.rotateRefused.code);
  });
});

describe("delete, 404 and accounts", () => {
  it("deletes with {id} and then answers 404", async () => {
    const c = await createClient(emu(), ACCOUNT_A);
    const reply = await call(emu(), "DELETE", `${CLIENTS}/${c.client_id}`);
    expect(reply.status).toBe(200);
    expect(reply.body.result).toEqual({ id: c.client_id });
    const gone = await getClient(c.client_id);
    expect(gone.status).toBe(404);
    expect(errorCode(gone)).toBe(FAILURES.notFound.code);
  });

  it("isolates accounts: a client of A is 404 under B", async () => {
    const c = await createClient(emu(), ACCOUNT_A);
    expect((await getClient(c.client_id, ACCOUNT_B)).status).toBe(404);
    const b = `/accounts/${ACCOUNT_B}/oauth_clients/${c.client_id}`;
    expect((await call(emu(), "PATCH", b, { body: {} })).status).toBe(404);
    expect((await call(emu(), "DELETE", b)).status).toBe(404);
    expect((await call(emu(), "POST", `${b}/rotate_secret`)).status).toBe(404);
    const listB = await call<Client[]>(emu(), "GET", `/accounts/${ACCOUNT_B}/oauth_clients`);
    expect(listB.body.result.some((x) => x.client_id === c.client_id)).toBe(false);
    expect((await getClient(c.client_id)).status).toBe(200);
  });

  it.each(["short", "0123456789abcdef0123456789abcdef0"])(
    "answers 404 for account id %j",
    async (account) => {
      const reply = await call(emu(), "GET", `/accounts/${account}/oauth_clients`);
      expect(reply.status).toBe(404);
      expect(errorCode(reply)).toBe(FAILURES.notFound.code);
    },
  );

  it.each([
    ["GET", "/accounts/x/things"],
    ["PUT", CLIENTS],
    ["GET", "/nothing"],
  ])("answers 404 code 7000 for %s %s", async (method, path) => {
    const reply = await call(emu(), method, path);
    expect(reply.status).toBe(404);
    expect(errorCode(reply)).toBe(FAILURES.noRoute.code);
  });
});

/**
 * The Vault fake enforces the KV v2 rules the sink relies on; these tests pin them with raw HTTP so
 * that a lenient fake cannot make a wrong sink pass.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CAS_MISMATCH, ROOT_POLICY, VaultFake, capabilitiesFor } from "../helpers/vault-fake.js";

let fake: VaultFake;
let clock = 1_000_000;

beforeAll(async () => {
  fake = await VaultFake.start({
    tokens: { root: ROOT_POLICY, limited: { "secret/data/app/*": ["read"] } },
    kubernetes: { roles: { sink: { jwts: ["sa-jwt"], policy: ROOT_POLICY, ttl_seconds: 60 } } },
    now: () => clock,
  });
});

afterAll(async () => {
  await fake.close();
});

async function call(method: string, path: string, body?: unknown, token: string | null = "root") {
  const response = await fetch(`${fake.address}/v1/${path}`, {
    method,
    headers: { ...(token ? { "x-vault-token": token } : {}), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw protocol checks
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

describe("vault fake", () => {
  it("requires a known token: 403 permission denied", async () => {
    expect(await call("GET", "secret/data/app/x", undefined, null)).toEqual({
      status: 403,
      body: { errors: ["permission denied"] },
    });
    expect((await call("GET", "secret/data/app/x", undefined, "bogus")).status).toBe(403);
    expect((await call("POST", "secret/data/app/x", { data: { a: "1" } }, "limited")).status).toBe(403);
  });

  it("applies cas as Vault does: 0 only while no version exists, N only when N is current", async () => {
    expect(
      (await call("POST", "secret/data/app/cas", { options: { cas: 1 }, data: { a: "1" } })).body,
    ).toEqual({
      errors: [CAS_MISMATCH],
    });
    const first = await call("POST", "secret/data/app/cas", { options: { cas: 0 }, data: { a: "1" } });
    expect(first.status).toBe(200);
    expect(first.body?.data).toMatchObject({ version: 1, destroyed: false, deletion_time: "" });
    const again = await call("POST", "secret/data/app/cas", { options: { cas: 0 }, data: { a: "2" } });
    expect(again).toEqual({ status: 400, body: { errors: [CAS_MISMATCH] } });
    expect(
      (await call("POST", "secret/data/app/cas", { options: { cas: "1" }, data: { a: "2" } })).body?.data
        .version,
    ).toBe(2);
    expect((await call("POST", "secret/data/app/cas", { data: { a: "3" } })).body?.data.version).toBe(3);
    expect((await call("POST", "secret/data/app/cas", { options: { cas: "x" }, data: {} })).body).toEqual({
      errors: ["error parsing check-and-set parameter"],
    });
    const read = await call("GET", "secret/data/app/cas");
    expect(read.body?.data).toMatchObject({ data: { a: "3" }, metadata: { version: 3 } });
    expect((await call("GET", "secret/data/app/cas?version=1")).body?.data.data).toEqual({ a: "1" });
  });

  it("makes cas mandatory under cas_required, and refuses a write without data", async () => {
    fake.setCasRequired("secret", true);
    try {
      expect((await call("POST", "secret/data/app/req", { data: { a: "1" } })).body).toEqual({
        errors: ["check-and-set parameter required for this call"],
      });
      expect(
        (await call("POST", "secret/data/app/req", { options: { cas: 0 }, data: { a: "1" } })).status,
      ).toBe(200);
    } finally {
      fake.setCasRequired("secret", false);
    }
    expect((await call("POST", "secret/data/app/req", { options: { cas: 1 } })).body).toEqual({
      errors: ["no data provided"],
    });
  });

  it("answers 404 with {errors: []} for a missing key, and with metadata for a deleted version", async () => {
    expect(await call("GET", "secret/data/app/missing")).toEqual({ status: 404, body: { errors: [] } });
    await call("POST", "secret/data/app/del", { data: { a: "1" } });
    fake.deleteLatest("secret", "app/del");
    const deleted = await call("GET", "secret/data/app/del");
    expect(deleted.status).toBe(404);
    expect(deleted.body?.data.metadata.version).toBe(1);
  });

  it("stores and validates custom_metadata", async () => {
    expect((await call("POST", "secret/metadata/app/m", { custom_metadata: { owner: "me" } })).status).toBe(
      204,
    );
    expect((await call("GET", "secret/metadata/app/m")).body?.data).toMatchObject({
      custom_metadata: { owner: "me" },
      current_version: 0,
    });
    const bad = await call("POST", "secret/metadata/app/m", { custom_metadata: { owner: "" } });
    expect(bad.status).toBe(400);
    expect(bad.body?.errors[0]).toContain("custom_metadata validation failed");
  });

  it("reports capabilities per path, and deny where nothing matches", async () => {
    const answer = await call(
      "POST",
      "sys/capabilities-self",
      { paths: ["secret/data/app/x", "secret/data/other"] },
      "limited",
    );
    expect(answer.body).toMatchObject({ "secret/data/app/x": ["read"], "secret/data/other": ["deny"] });
    expect(capabilitiesFor({ "secret/data/+/x": ["read"] }, "secret/data/a/x")).toEqual(["read"]);
    expect(capabilitiesFor({ "secret/data/+/x": ["read"] }, "secret/data/a/b/x")).toEqual(["deny"]);
  });

  it("logs in with Kubernetes auth and expires the token after its TTL", async () => {
    expect((await call("POST", "auth/kubernetes/login", { role: "sink", jwt: "wrong" }, null)).status).toBe(
      403,
    );
    expect((await call("POST", "auth/kubernetes/login", { role: "nope", jwt: "sa-jwt" }, null)).body).toEqual(
      {
        errors: ['invalid role name "nope"'],
      },
    );
    const login = await call("POST", "auth/kubernetes/login", { role: "sink", jwt: "sa-jwt" }, null);
    expect(login.body?.auth).toMatchObject({ lease_duration: 60, renewable: true });
    const token = login.body?.auth.client_token as string;
    expect((await call("GET", "auth/token/lookup-self", undefined, token)).status).toBe(200);
    clock += 61_000;
    expect((await call("GET", "auth/token/lookup-self", undefined, token)).status).toBe(403);
  });
});

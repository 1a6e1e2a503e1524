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
    mounts: ["secret", { path: "old", version: 1 }, { path: "secret", namespace: "team-a" }],
    tokens: { root: ROOT_POLICY, limited: { "secret/data/app/*": ["read"] } },
    kubernetes: { roles: { sink: { jwts: ["sa-jwt"], policy: ROOT_POLICY, ttl_seconds: 60 } } },
    now: () => clock,
  });
});

afterAll(async () => {
  await fake.close();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  token: string | null = "root",
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${fake.address}/v1/${path}`, {
    method,
    headers: {
      ...(token ? { "x-vault-token": token } : {}),
      "content-type": "application/json",
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw protocol checks
    body: text ? (JSON.parse(text) as Record<string, any>) : undefined,
    index: response.headers.get("x-vault-index"),
  };
}

/** `call` without the index header, for exact comparisons. */
async function plain(...args: Parameters<typeof call>) {
  const { status, body } = await call(...args);
  return { status, body };
}

describe("vault fake", () => {
  it("requires a known token: 403 permission denied", async () => {
    expect(await plain("GET", "secret/data/app/x", undefined, null)).toEqual({
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
    const again = await plain("POST", "secret/data/app/cas", { options: { cas: 0 }, data: { a: "2" } });
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
    expect(await plain("GET", "secret/data/app/missing")).toEqual({ status: 404, body: { errors: [] } });
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

  it("keeps namespaces apart, and a token works only in its own namespace and below", async () => {
    fake.addToken("team-a-token", { "secret/*": ["create", "read", "update"] }, 0, { namespace: "team-a" });
    const teamA = { "x-vault-namespace": "team-a" };
    expect(
      (await call("POST", "secret/data/app/ns", { data: { where: "team-a" } }, "team-a-token", teamA)).status,
    ).toBe(200);
    expect(
      (await call("GET", "secret/data/app/ns", undefined, "team-a-token", teamA)).body?.data.data,
    ).toEqual({
      where: "team-a",
    });
    // The root namespace's `secret` is another tree, and the team's token is not valid there.
    expect((await call("GET", "secret/data/app/ns")).status).toBe(404);
    expect(await plain("GET", "secret/data/app/ns", undefined, "team-a-token")).toEqual({
      status: 403,
      body: { errors: ["permission denied"] },
    });
    // A root-namespace token reaches the child namespace; its policy paths carry the namespace.
    expect((await call("GET", "secret/data/app/ns", undefined, "root", teamA)).status).toBe(200);
    expect(fake.inspect("team-a/secret", "app/ns")?.data).toEqual({ where: "team-a" });
    expect(fake.inspect("secret", "app/ns")).toBeNull();
    // Nothing is mounted at `old` in team-a.
    expect((await call("GET", "old/x", undefined, "root", teamA)).body?.errors[0]).toContain(
      "no handler for route",
    );
  });

  it("serves a KV version 1 mount as Vault does: no /data/, no versions, no cas, 204 on write", async () => {
    const write = await call("POST", "old/data/app/x", { options: { cas: 0 }, data: { a: "1" } });
    expect(write).toMatchObject({ status: 204, body: undefined });
    // The v2-shaped body is stored as it is, under a key that happens to start with data/.
    expect(fake.keys("old")).toEqual(["data/app/x"]);
    expect((await call("GET", "old/data/app/x")).body?.data).toEqual({
      options: { cas: 0 },
      data: { a: "1" },
    });
    expect((await call("POST", "old/data/app/x", { options: { cas: 0 }, data: { a: "2" } })).status).toBe(
      204,
    );
    expect(await plain("GET", "old/missing")).toEqual({ status: 404, body: { errors: [] } });
  });

  it("answers sys/internal/ui/mounts with the mount's type and KV version, 403 without a mount or access", async () => {
    const v2 = await call("GET", "sys/internal/ui/mounts/secret");
    expect(v2.status).toBe(200);
    expect(v2.body?.data).toMatchObject({ type: "kv", path: "secret/", options: { version: "2" } });
    expect((await call("GET", "sys/internal/ui/mounts/secret/app/deep/path")).body?.data.path).toBe(
      "secret/",
    );
    expect((await call("GET", "sys/internal/ui/mounts/old")).body?.data).toMatchObject({
      type: "kv",
      path: "old/",
      options: { version: "1" },
    });
    // A policy under the mount is enough; none, or no mount at all, look alike.
    expect((await call("GET", "sys/internal/ui/mounts/secret", undefined, "limited")).status).toBe(200);
    const refused = await plain("GET", "sys/internal/ui/mounts/old", undefined, "limited");
    const missing = await plain("GET", "sys/internal/ui/mounts/nowhere");
    expect(refused.status).toBe(403);
    expect(missing).toEqual({
      status: 403,
      body: {
        errors: [
          'preflight capability check returned 403, please ensure client\'s policies grant access to path "nowhere/"',
        ],
      },
    });
  });

  it("acts as a performance standby: stale reads unless X-Vault-Index is sent, forwarded with forward-active-node", async () => {
    fake.performanceStandby = true;
    try {
      const write = await call("POST", "secret/data/app/standby", { data: { a: "fresh" } });
      expect(write.status).toBe(200);
      const index = write.index as string;
      expect(index).toMatch(/^[A-Za-z0-9+/=]+$/);
      // Not yet received by the standby.
      expect((await call("GET", "secret/data/app/standby")).status).toBe(404);
      expect(
        await plain("GET", "secret/data/app/standby", undefined, "root", { "x-vault-index": index }),
      ).toEqual({
        status: 412,
        body: { errors: ["required index state not present"] },
      });
      const forwarded = await call("GET", "secret/data/app/standby", undefined, "root", {
        "x-vault-index": index,
        "x-vault-inconsistent": "forward-active-node",
      });
      expect(forwarded.body?.data.data).toEqual({ a: "fresh" });
      fake.replicate();
      expect((await call("GET", "secret/data/app/standby")).body?.data.data).toEqual({ a: "fresh" });
    } finally {
      fake.performanceStandby = false;
    }
    // Without a standby there is no index header (as on Vault Community Edition).
    expect((await call("POST", "secret/data/app/standby", { data: { a: "2" } })).index).toBeNull();
  });

  it("renews a renewable token up to its max TTL, and refuses to renew one that is not", async () => {
    fake.addToken("renewable", ROOT_POLICY, 60, { maxTtlSeconds: 100 });
    fake.addToken("fixed", ROOT_POLICY, 60, { renewable: false });
    const looked = (await call("GET", "auth/token/lookup-self", undefined, "renewable")).body?.data;
    expect(looked).toMatchObject({ renewable: true, ttl: 60, creation_ttl: 60 });
    expect(await plain("POST", "auth/token/renew-self", {}, "fixed")).toEqual({
      status: 400,
      body: { errors: ["lease is not renewable"] },
    });
    clock += 50_000;
    const renewed = await call("POST", "auth/token/renew-self", {}, "renewable");
    expect(renewed.body?.auth).toMatchObject({
      client_token: "renewable",
      lease_duration: 50,
      renewable: true,
    });
    expect(renewed.body?.warnings?.[0]).toContain("max_ttl");
    clock += 40_000; // 90 s: past the first TTL, within the renewed one
    expect((await call("GET", "auth/token/lookup-self", undefined, "renewable")).status).toBe(200);
    clock += 20_000;
    expect((await call("GET", "auth/token/lookup-self", undefined, "renewable")).status).toBe(403);
  });

  it("answers 503 while sealed and 429 under a rate limit quota", async () => {
    fake.sealed = true;
    try {
      expect(await plain("GET", "auth/token/lookup-self")).toEqual({
        status: 503,
        body: { errors: ["Vault is sealed"] },
      });
    } finally {
      fake.sealed = false;
    }
    fake.rateLimitNext(1);
    expect(await plain("POST", "auth/kubernetes/login", { role: "sink", jwt: "sa-jwt" }, null)).toEqual({
      status: 429,
      body: { errors: ['request path "auth/kubernetes/login": rate limit quota exceeded'] },
    });
    expect((await call("POST", "auth/kubernetes/login", { role: "sink", jwt: "sa-jwt" }, null)).status).toBe(
      200,
    );
  });
});

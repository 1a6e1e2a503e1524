import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultSink, type VaultSinkOptions } from "../../src/sinks/vault-sink.js";
import { ConnectProxy } from "../helpers/connect-proxy.js";
import { makeCertificates, type TestCertificates } from "../helpers/tls.js";
import { ROOT_POLICY, VaultFake, type VaultPolicy } from "../helpers/vault-fake.js";
import { ACCOUNT, captureLogger, leaksIn, record } from "./helpers.js";

const CANARY = "canary-vault-8e3a51c0";
const JWT = "eyJhbGciOiJSUzI1NiJ9.service-account-jwt.sig";
const address = (key: string) => ({ account_id: ACCOUNT, key });
const WRITER: VaultPolicy = {
  "kv/data/cf/*": ["create", "read", "update"],
  "kv/metadata/cf/*": ["create", "read", "update"],
};

let fake: VaultFake;
let dir: string;
let clock = 5_000_000;

beforeAll(async () => {
  fake = await VaultFake.start({
    mounts: ["kv", { path: "kv1", version: 1 }, { path: "kv", namespace: "team-a" }],
    tokens: {
      root: ROOT_POLICY,
      writer: WRITER,
      "data-only": { "kv/data/cf/*": ["create", "read", "update"] },
    },
    kubernetes: { mount: "k8s", roles: { reconciler: { jwts: [JWT], policy: WRITER, ttl_seconds: 100 } } },
    now: () => clock,
  });
  dir = await mkdtemp(join(tmpdir(), "cfog-vault-"));
  await writeFile(join(dir, "sa-token"), `${JWT}\n`);
  await writeFile(join(dir, "vault-token"), "writer\n");
});

afterAll(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

function sink(options: Partial<VaultSinkOptions> = {}): VaultSink {
  return new VaultSink({
    address: fake.address,
    mount: "kv",
    path_prefix: "/cf/",
    env: { VAULT_TOKEN: "writer" },
    ...options,
  });
}

describe("vault sink", () => {
  it("stores the record under <mount>/data/<prefix>/<account>/<key> and tags its custom metadata", async () => {
    const s = sink();
    expect(s.describe(address("web"))).toBe(`vault:${fake.address}/v1/kv/data/cf/${ACCOUNT}/web`);
    fake.setCustomMetadata("kv", `cf/${ACCOUNT}/web`, { team: "payments" });
    const { version } = await s.write(address("web"), record(CANARY));
    expect(version).toBe("1");
    expect(fake.inspect("kv", `cf/${ACCOUNT}/web`)).toEqual({
      version: 1,
      data: {
        client_id: "c".repeat(32),
        client_secret: CANARY,
        account_id: ACCOUNT,
        client_name: "billing-web",
        issued_at: "2026-11-26T10:00:00.000Z",
      },
      // Someone's own key is kept.
      custom_metadata: {
        team: "payments",
        "managed-by": "cf-oauth-gitops",
        client_id: "c".repeat(32),
        account_id: ACCOUNT,
      },
    });
  });

  it("writes with cas on a cas_required mount, and treats a deleted latest version as absent", async () => {
    fake.setCasRequired("kv", true);
    try {
      const s = sink();
      await s.write(address("req"), record("one-secret"));
      await s.write(address("req"), record("two-secret"));
      fake.deleteLatest("kv", `cf/${ACCOUNT}/req`);
      expect(await s.read(address("req"))).toBeNull();
      // The caller saw nothing; Vault's current version is still 2, and the write must say so.
      expect(await s.write(address("req"), record("three-secret"), null)).toEqual({ version: "3" });
    } finally {
      fake.setCasRequired("kv", false);
    }
  });

  it("without an expected version, writes over the current version (read just before)", async () => {
    const s = sink();
    await s.write(address("lww"), record("one-secret"));
    fake.writeDirect("kv", `cf/${ACCOUNT}/lww`, { client_secret: "someone-else" });
    expect(await s.write(address("lww"), record("two-secret"))).toEqual({ version: "3" });
  });

  it("reads the token from token_file, and fails clearly without any token", async () => {
    await sink({ token_file: join(dir, "vault-token"), env: {} }).write(
      address("tf"),
      record("s-token-file"),
    );
    const error = await sink({ env: {}, token_env: "MY_VAULT_TOKEN" })
      .write(address("none"), record(CANARY))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_AUTH" });
    expect((error as Error).message).toContain("MY_VAULT_TOKEN is not set");
  });

  it("logs in with Kubernetes auth once, reuses the token, and logs in again when it ages or is revoked", async () => {
    const s = sink({
      env: {},
      kubernetes_role: "reconciler",
      kubernetes_token_file: join(dir, "sa-token"),
      auth_mount: "k8s",
      now: () => clock,
    });
    const before = fake.logins;
    await s.checkWritable(address("k8s"));
    await s.write(address("k8s"), record("k8s-one"));
    expect((await s.read(address("k8s")))?.client_secret.reveal()).toBe("k8s-one");
    expect(fake.logins - before).toBe(1);

    clock += 90_000; // past 80% of the 100 s lease: renew before Vault expires it
    await s.read(address("k8s"));
    expect(fake.logins - before).toBe(2);

    fake.revokeLoginTokens();
    expect((await s.read(address("k8s")))?.client_secret.reveal()).toBe("k8s-one");
    expect(fake.logins - before).toBe(3);
  });

  it("reports a refused Kubernetes login without the service-account token", async () => {
    await writeFile(join(dir, "wrong-sa"), "wrong-jwt-value-1234");
    const error = await sink({
      env: {},
      kubernetes_role: "reconciler",
      kubernetes_token_file: join(dir, "wrong-sa"),
      auth_mount: "k8s",
    })
      .write(address("k8s-wrong"), record(CANARY))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_AUTH" });
    expect((error as Error).message).toContain("permission denied");
    expect(leaksIn(inspect(error, { depth: 10 }), ["wrong-jwt-value-1234", CANARY])).toEqual([]);
  });

  it("fails the preflight when the token may not write the custom metadata, naming what is missing", async () => {
    const error = await sink({ env: { VAULT_TOKEN: "data-only" } })
      .checkWritable(address("meta"))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    expect((error as Error).message).toContain(`update on kv/metadata/cf/${ACCOUNT}/meta`);
    const invalid = await sink({ env: { VAULT_TOKEN: "expired-or-bogus" } })
      .checkWritable(address("meta"))
      .catch((e: unknown) => e);
    expect(invalid).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
  });

  it("the preflight reads the exact key: a mount no KV engine serves is refused even for a root token", async () => {
    const root = sink({ env: { VAULT_TOKEN: "root" } });
    await root.checkWritable(address("root-ok"));
    const wrongMount = sink({ env: { VAULT_TOKEN: "root" }, mount: "kv2" });
    const error = await wrongMount.checkWritable(address("root-ok")).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    expect((error as Error).message).toContain("no KV version 2 engine serves kv2/data/cf/");
    // The preflight wrote nothing.
    expect(fake.inspect("kv", `cf/${ACCOUNT}/root-ok`)).toBeNull();
  });

  it("gives keys outside the safe set their own path: `billing web` and `billing_web` never share one", async () => {
    const s = sink();
    for (const key of ["billing web", "billing_web", "請求", "管理"]) {
      await s.checkWritable(address(key));
      await s.write(address(key), record(`${CANARY}-${key}`));
    }
    for (const key of ["billing web", "billing_web", "請求", "管理"]) {
      expect((await s.read(address(key)))?.client_secret.reveal()).toBe(`${CANARY}-${key}`);
    }
    expect(s.secretPath(address("billing_web"))).toBe(`cf/${ACCOUNT}/billing_web`);
    expect(s.secretPath(address("billing web"))).toMatch(
      new RegExp(`^cf/${ACCOUNT}/billing_web~[0-9a-f]{10}$`),
    );
  });

  it("still succeeds, and warns, when only the metadata write is refused", async () => {
    const { logger, lines } = captureLogger();
    const { version } = await sink({ env: { VAULT_TOKEN: "data-only" }, logger }).write(
      address("meta2"),
      record(CANARY),
    );
    expect(version).toBe("1");
    expect(lines.join("\n")).toContain("custom metadata not written");
    expect(leaksIn(lines.join("\n"), [CANARY, "data-only"])).toEqual([]);
  });

  it("works inside its Vault namespace: its own tree, with a token of that namespace", async () => {
    fake.addToken("team-a-writer", WRITER, 0, { namespace: "team-a" });
    const inTeamA = sink({ namespace: "team-a", env: { VAULT_TOKEN: "team-a-writer" } });
    await inTeamA.checkWritable(address("ns"));
    await inTeamA.write(address("ns"), record("secret-in-team-a"));
    expect(fake.requests.at(-1)).toMatchObject({ namespace: "team-a" });
    expect(fake.inspect("team-a/kv", `cf/${ACCOUNT}/ns`)?.data["client_secret"]).toBe("secret-in-team-a");
    expect(fake.inspect("kv", `cf/${ACCOUNT}/ns`)).toBeNull();
    expect((await inTeamA.read(address("ns")))?.client_secret.reveal()).toBe("secret-in-team-a");
    // The root namespace's kv is another tree; the team's token is no good there.
    expect(await sink().read(address("ns"))).toBeNull();
    await expect(sink({ env: { VAULT_TOKEN: "team-a-writer" } }).read(address("ns"))).rejects.toMatchObject({
      code: "E_SINK_AUTH",
    });
  });

  it("refuses a KV version 1 mount in the preflight and before any write, storing nothing", async () => {
    const v1 = sink({ mount: "kv1", env: { VAULT_TOKEN: "root" } });
    for (const attempt of [
      () => v1.checkWritable(address("v1")),
      () => v1.write(address("v1"), record(CANARY)),
      () => v1.read(address("v1")),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "E_SINK_KV_VERSION", disposition: "terminal" });
      expect((error as Error).message).toContain("KV engine at 'kv1' is version 1");
    }
    expect(fake.keys("kv1")).toEqual([]);
    // A path inside a mount is not a mount either.
    const inside = await sink({ mount: "kv/cf", env: { VAULT_TOKEN: "root" } })
      .checkWritable(address("v1"))
      .catch((e: unknown) => e);
    expect(inside).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    expect((inside as Error).message).toContain("'kv/cf' is not a mount");
  });

  it("refuses to overwrite a secret this tool did not write, until it is handed over", async () => {
    const path = `cf/${ACCOUNT}/theirs`;
    fake.writeDirect("kv", path, { password: "hunter2" });
    const s = sink();
    for (const attempt of [
      () => s.checkWritable(address("theirs")),
      () => s.write(address("theirs"), record(CANARY)),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "E_SINK_UNMANAGED", disposition: "terminal" });
      expect((error as Error).message).toContain(`kv/data/${path} exists (version 1)`);
      expect(leaksIn(inspect(error, { depth: 10 }), [CANARY, "hunter2"])).toEqual([]);
    }
    expect(fake.inspect("kv", path)).toMatchObject({ version: 1, data: { password: "hunter2" } });
    // Someone else's custom metadata is no claim; managed-by is.
    fake.setCustomMetadata("kv", path, { team: "payments" });
    await expect(s.write(address("theirs"), record(CANARY))).rejects.toMatchObject({
      code: "E_SINK_UNMANAGED",
    });
    fake.setCustomMetadata("kv", path, { team: "payments", "managed-by": "cf-oauth-gitops" });
    expect(await s.write(address("theirs"), record(CANARY))).toEqual({ version: "2" });
  });

  it("reads its own writes on a performance standby: X-Vault-Index with forward-active-node", async () => {
    fake.performanceStandby = true;
    try {
      const s = sink();
      expect(await s.write(address("standby"), record("standby-one"))).toEqual({ version: "1" });
      // The standby has not received the write; forwarded reads see it all the same.
      expect((await s.read(address("standby")))?.client_secret.reveal()).toBe("standby-one");
      expect(fake.requests.at(-1)).toMatchObject({
        index: true,
        inconsistent: "forward-active-node",
        status: 200,
      });
      // A second write reads the current version for its check-and-set: stale, it would conflict.
      expect(await s.write(address("standby"), record("standby-two"))).toEqual({ version: "2" });
      const stored = await s.read(address("standby"));
      expect(stored?.client_secret.reveal()).toBe("standby-two");
      expect(stored?.version).toBe("2");
    } finally {
      fake.performanceStandby = false;
    }
  });

  it("treats a Kubernetes login answered 503 (sealed) or 429 (rate limited) as transient", async () => {
    const s = sink({
      env: {},
      kubernetes_role: "reconciler",
      kubernetes_token_file: join(dir, "sa-token"),
      auth_mount: "k8s",
      now: () => clock,
    });
    fake.sealed = true;
    let sealed: unknown;
    try {
      sealed = await s.write(address("login-503"), record(CANARY)).catch((e: unknown) => e);
      expect(sealed).toMatchObject({ code: "E_SINK_UNAVAILABLE", disposition: "transient" });
      expect((sealed as Error).message).toContain("HTTP 503: Vault is sealed");
    } finally {
      fake.sealed = false;
    }
    fake.rateLimitNext(1);
    const limited = await s.write(address("login-429"), record(CANARY)).catch((e: unknown) => e);
    expect(limited).toMatchObject({ code: "E_SINK_UNAVAILABLE", disposition: "transient" });
    expect((limited as Error).message).toContain("rate limit quota exceeded");
    expect(leaksIn(inspect([sealed, limited], { depth: 10 }), [JWT, CANARY])).toEqual([]);
    // Once Vault answers, the login and the write go through.
    expect(await s.write(address("login-429"), record(CANARY))).toEqual({ version: "1" });
  });

  it("renews a renewable static token before its TTL runs out, and keeps working past the first expiry", async () => {
    fake.addToken("renewable-writer", WRITER, 60, { maxTtlSeconds: 3600 });
    const { logger, lines } = captureLogger();
    const s = sink({ env: { VAULT_TOKEN: "renewable-writer" }, now: () => clock, logger });
    await s.checkWritable(address("renew"));
    const before = fake.renewals;
    clock += 30_000; // half the TTL: nothing to do yet
    await s.write(address("renew"), record("renew-one"));
    expect(fake.renewals).toBe(before);
    clock += 20_000; // 50 s of 60: past 80%, so renewed before the next request
    await s.read(address("renew"));
    expect(fake.renewals).toBe(before + 1);
    clock += 40_000; // 90 s after issue: the first TTL is long gone
    expect((await s.read(address("renew")))?.client_secret.reveal()).toBe("renew-one");
    expect(fake.renewals).toBe(before + 1);
    // A token with a TTL that cannot be renewed is worth a warning, once it is looked up.
    fake.addToken("short-lived", WRITER, 60, { renewable: false });
    await sink({ env: { VAULT_TOKEN: "short-lived" }, now: () => clock, logger }).checkWritable(
      address("renew"),
    );
    expect(lines.join("\n")).toContain("cannot be renewed");
    expect(leaksIn(lines.join("\n"), ["renewable-writer", "short-lived"])).toEqual([]);
  });

  it("refuses a malformed address at construction and an unreachable server with a transient error", async () => {
    expect(() => sink({ address: "not a url" })).toThrow(expect.objectContaining({ code: "E_SINK_CONFIG" }));
    const error = await sink({ address: "http://127.0.0.1:1" })
      .read(address("x"))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_UNREACHABLE", disposition: "transient" });
  });
});

describe("vault sink over https and through a proxy", () => {
  let certs: TestCertificates;
  let tlsFake: VaultFake;
  let proxy: ConnectProxy;
  const opened: VaultSink[] = [];

  beforeAll(async () => {
    // The certificate names only vault.internal, so reaching 127.0.0.1 needs tls_server_name.
    certs = await makeCertificates(dir, ["DNS:vault.internal"]);
    tlsFake = await VaultFake.start({
      mounts: ["kv"],
      tokens: { writer: WRITER },
      tls: { key: certs.key, cert: certs.cert },
    });
    proxy = await ConnectProxy.start({ "vault.internal": "127.0.0.1" });
  });

  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await tlsFake.close();
    await proxy.close();
  });

  function tlsSink(options: Partial<VaultSinkOptions>): VaultSink {
    const made = sink({ address: tlsFake.address, ...options });
    opened.push(made);
    return made;
  }

  it("trusts Vault through ca_file and checks its name against tls_server_name (or VAULT_CACERT, VAULT_TLS_SERVER_NAME)", async () => {
    const unknownCa = await tlsSink({})
      .read(address("tls"))
      .catch((e: unknown) => e);
    expect(unknownCa).toMatchObject({ code: "E_SINK_UNREACHABLE" });
    const wrongName = await tlsSink({ ca_file: certs.caFile })
      .read(address("tls"))
      .catch((e: unknown) => e);
    expect(wrongName).toMatchObject({ code: "E_SINK_UNREACHABLE" });
    const good = tlsSink({ ca_file: certs.caFile, tls_server_name: "vault.internal" });
    await good.checkWritable(address("tls"));
    await good.write(address("tls"), record(CANARY));
    const fromEnv = tlsSink({
      env: { VAULT_TOKEN: "writer", VAULT_CACERT: certs.caFile, VAULT_TLS_SERVER_NAME: "vault.internal" },
    });
    expect((await fromEnv.read(address("tls")))?.client_secret.reveal()).toBe(CANARY);
    const missing = await tlsSink({ ca_file: join(dir, "no-such-ca.pem") })
      .read(address("tls"))
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: "E_SINK_CONFIG" });
    expect((missing as Error).message).toContain("cannot read ca_file");
  });

  it("goes through HTTPS_PROXY to a name only the proxy resolves, and straight to a host NO_PROXY lists", async () => {
    const port = new URL(tlsFake.address).port;
    const viaName = `https://vault.internal:${port}`;
    const before = proxy.tunnels.length;
    const proxied = tlsSink({
      address: viaName,
      ca_file: certs.caFile,
      env: { VAULT_TOKEN: "writer", HTTPS_PROXY: proxy.url },
    });
    await proxied.write(address("proxied"), record(CANARY));
    expect((await proxied.read(address("proxied")))?.client_secret.reveal()).toBe(CANARY);
    expect(new Set(proxy.tunnels.slice(before))).toEqual(new Set([`vault.internal:${port}`]));
    // Without the proxy that name does not resolve: the requests above went through it.
    const direct = await tlsSink({ address: viaName, ca_file: certs.caFile })
      .read(address("proxied"))
      .catch((e: unknown) => e);
    expect(direct).toMatchObject({ code: "E_SINK_UNREACHABLE" });
    const tunnels = proxy.tunnels.length;
    const bypass = tlsSink({
      ca_file: certs.caFile,
      tls_server_name: "vault.internal",
      env: { VAULT_TOKEN: "writer", https_proxy: proxy.url, no_proxy: "127.0.0.1" },
    });
    expect((await bypass.read(address("proxied")))?.client_secret.reveal()).toBe(CANARY);
    expect(proxy.tunnels.length).toBe(tunnels);
  });
});

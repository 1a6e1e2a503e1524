import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultSink, type VaultSinkOptions } from "../../src/sinks/vault.js";
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
    mounts: ["kv"],
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

  it("sends the Vault namespace header when configured", async () => {
    await sink({ namespace: "team-a" }).read(address("ns"));
    expect(fake.requests.at(-1)).toMatchObject({ namespace: "team-a", path: `/v1/kv/data/cf/${ACCOUNT}/ns` });
  });

  it("refuses a malformed address at construction and an unreachable server with a transient error", async () => {
    expect(() => sink({ address: "not a url" })).toThrow(expect.objectContaining({ code: "E_SINK_CONFIG" }));
    const error = await sink({ address: "http://127.0.0.1:1" })
      .read(address("x"))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_UNREACHABLE", disposition: "transient" });
  });
});

import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesSink, type KubernetesSinkOptions } from "../../src/sinks/kubernetes-sink.js";
import { kubernetesName } from "../../src/sinks/naming.js";
import { KubernetesFake } from "../helpers/kubernetes-fake.js";
import { ACCOUNT, leaksIn, record, run } from "./helpers.js";

const CANARY = "canary-k8s-0c7e19ab";
const OTHER_ACCOUNT = "fedcba9876543210fedcba9876543210";
const address = (key: string) => ({ account_id: ACCOUNT, key });
const b64 = (s: string) => Buffer.from(s).toString("base64");
/** The documented hash suffix, computed here on its own: 10 hex digits of SHA-256. */
const sha10 = (key: string) => createHash("sha256").update(key, "utf8").digest("hex").slice(0, 10);

let fake: KubernetesFake;
let dir: string;
const sinks: KubernetesSink[] = [];

beforeAll(async () => {
  fake = await KubernetesFake.start({
    tokens: { "sa-token": "all", denied: [{ verbs: ["get"], resources: ["secrets"] }] },
    namespaces: ["apps"],
  });
  dir = await mkdtemp(join(tmpdir(), "cfog-k8s-"));
  await writeFile(join(dir, "token"), "sa-token\n");
  await writeFile(join(dir, "denied"), "denied\n");
});

afterAll(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

function sink(options: Partial<KubernetesSinkOptions> = {}): KubernetesSink {
  const made = new KubernetesSink({
    namespace: "apps",
    name_prefix: "oauth-",
    api_server: fake.url,
    token_file: join(dir, "token"),
    ...options,
  });
  sinks.push(made);
  return made;
}

describe("kubernetes sink", () => {
  it("creates an Opaque Secret with the label, annotations and base64 data", async () => {
    const { version } = await sink().write(address("Billing_Web"), record(CANARY));
    const stored = fake.getSecret("apps", "oauth-billing-web");
    expect(stored?.metadata.resourceVersion).toBe(version);
    expect(stored).toMatchObject({
      type: "Opaque",
      metadata: {
        labels: { "app.kubernetes.io/managed-by": "cf-oauth-gitops" },
        annotations: {
          "cf-oauth-gitops/client-id": "c".repeat(32),
          "cf-oauth-gitops/account-id": ACCOUNT,
          "cf-oauth-gitops/issued-at": "2026-11-26T10:00:00.000Z",
          "cf-oauth-gitops/key": "Billing_Web",
        },
      },
      data: {
        client_id: b64("c".repeat(32)),
        client_secret: b64(CANARY),
        account_id: b64(ACCOUNT),
        client_name: b64("billing-web"),
        issued_at: b64("2026-11-26T10:00:00.000Z"),
      },
    });
  });

  it("keeps labels, annotations and data keys that others added when it replaces the Secret", async () => {
    const s = sink();
    await s.write(address("keep"), record("first-secret"));
    fake.writeDirect("apps", "oauth-keep", {
      labels: { team: "payments" },
      annotations: { "reloader.stakater.com/match": "true" },
      data: { "extra.txt": "kept" },
    });
    await s.write(address("keep"), record("second-secret"));
    const stored = fake.getSecret("apps", "oauth-keep");
    expect(stored?.metadata.labels).toEqual({
      "app.kubernetes.io/managed-by": "cf-oauth-gitops",
      team: "payments",
    });
    expect(stored?.metadata.annotations?.["reloader.stakater.com/match"]).toBe("true");
    expect(stored?.data?.["extra.txt"]).toBe(b64("kept"));
    expect(stored?.data?.["client_secret"]).toBe(b64("second-secret"));
  });

  it("never touches a Secret of the same name it does not manage", async () => {
    fake.writeDirect("apps", "oauth-theirs", { data: { password: "hunter2" } });
    const before = fake.getSecret("apps", "oauth-theirs");
    const s = sink();
    const attempts = [
      () => s.write(address("theirs"), record(CANARY)),
      () => s.checkWritable(address("theirs")),
      () => s.read(address("theirs")),
    ];
    for (const attempt of attempts) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "E_SINK_UNMANAGED" });
      expect((error as Error).message).toContain("apps/oauth-theirs");
    }
    expect(fake.getSecret("apps", "oauth-theirs")).toEqual(before);
  });

  it("refuses a managed Secret made for another account or key", async () => {
    await sink().write(address("shared"), record("account-one"));
    const error = await sink()
      .write(
        { account_id: OTHER_ACCOUNT, key: "shared" },
        record("account-two", { account_id: OTHER_ACCOUNT }),
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_COLLISION" });
    expect(fake.getSecret("apps", "oauth-shared")?.data?.["client_secret"]).toBe(b64("account-one"));
  });

  it("retries once after a 409 caused by a concurrent writer, re-reading first", async () => {
    const s = sink();
    await s.write(address("race"), record("first-secret"));
    let interfered = false;
    fake.onRequest = ({ method }) => {
      if (method === "PUT" && !interfered) {
        interfered = true;
        fake.writeDirect("apps", "oauth-race", { labels: { touched: "yes" } });
      }
    };
    try {
      const puts = fake.requests.length;
      await s.write(address("race"), record("second-secret"));
      const statuses = fake.requests.slice(puts).map((r) => `${r.method} ${r.status}`);
      expect(statuses).toEqual(["GET 200", "PUT 409", "GET 200", "PUT 200"]);
    } finally {
      fake.onRequest = null;
    }
    const stored = fake.getSecret("apps", "oauth-race");
    expect(stored?.data?.["client_secret"]).toBe(b64("second-secret"));
    expect(stored?.metadata.labels?.["touched"]).toBe("yes");
  });

  it("gives up with E_SINK_CONFLICT after a second 409", async () => {
    const s = sink();
    await s.write(address("busy"), record("first-secret"));
    fake.onRequest = ({ method }) => {
      if (method === "PUT") fake.writeDirect("apps", "oauth-busy", { labels: { n: String(Math.random()) } });
    };
    try {
      const start = fake.requests.length;
      const error = await s.write(address("busy"), record(CANARY)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "E_SINK_CONFLICT" });
      expect(leaksIn(inspect(error, { depth: 10 }), [CANARY])).toEqual([]);
      expect(fake.requests.slice(start).filter((r) => r.method === "PUT")).toHaveLength(2);
    } finally {
      fake.onRequest = null;
    }
    expect(fake.getSecret("apps", "oauth-busy")?.data?.["client_secret"]).toBe(b64("first-secret"));
  });

  it("fails the preflight when access reviews deny create or update, and writes fail with E_SINK_AUTH", async () => {
    const denied = sink({ token_file: join(dir, "denied") });
    const error = await denied.checkWritable(address("nope")).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    expect((error as Error).message).toContain("may not create, update secrets in namespace apps");
    await expect(denied.write(address("nope"), record(CANARY))).rejects.toMatchObject({
      code: "E_SINK_AUTH",
    });
    await sink().checkWritable(address("nope"));
  });

  it("gives non-Latin keys distinct Secret names, each holding its own record", async () => {
    const s = sink();
    expect(s.nameOf(address("請求"))).toBe(`oauth-${sha10("請求")}`);
    expect(s.nameOf(address("管理"))).toBe(`oauth-${sha10("管理")}`);
    expect(s.nameOf(address("billing web"))).toBe(`oauth-billing-web-${sha10("billing web")}`);
    for (const key of ["請求", "管理", "billing web"]) {
      await s.checkWritable(address(key));
      await s.write(address(key), record(`${CANARY}-${key}`));
    }
    for (const key of ["請求", "管理", "billing web"]) {
      expect((await s.read(address(key)))?.client_secret.reveal()).toBe(`${CANARY}-${key}`);
    }
  });

  it("the preflight sends the write as a server-side dry run: a refused write is found, nothing is stored", async () => {
    const s = sink();
    const start = fake.requests.length;
    await s.checkWritable(address("dry"));
    expect(fake.getSecret("apps", "oauth-dry")).toBeUndefined();
    expect(fake.requests.slice(start).filter((r) => r.dry_run)).toEqual([
      { method: "POST", path: "/api/v1/namespaces/apps/secrets", status: 201, dry_run: true },
    ]);
    // An existing Secret: the dry run is a PUT carrying its resourceVersion, and changes nothing.
    await s.write(address("dry"), record(CANARY));
    const stored = fake.getSecret("apps", "oauth-dry");
    const next = fake.requests.length;
    await s.checkWritable(address("dry"));
    expect(fake.requests.slice(next).filter((r) => r.dry_run)).toEqual([
      { method: "PUT", path: "/api/v1/namespaces/apps/secrets/oauth-dry", status: 200, dry_run: true },
    ]);
    expect(fake.getSecret("apps", "oauth-dry")).toEqual(stored);
    // Admission (a policy, a quota) refuses writes: RBAC allows them, yet the preflight fails.
    fake.refuseWrites = "secrets need a team label";
    try {
      const error = await s.checkWritable(address("dry-refused")).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
      expect((error as Error).message).toContain("secrets need a team label");
    } finally {
      fake.refuseWrites = null;
    }
  });

  it("refuses an immutable Secret in the preflight and the write, and changes nothing", async () => {
    const s = sink();
    await s.write(address("frozen"), record("first-secret"));
    fake.writeDirect("apps", "oauth-frozen", { immutable: true });
    const before = fake.getSecret("apps", "oauth-frozen");
    for (const attempt of [
      () => s.checkWritable(address("frozen")),
      () => s.write(address("frozen"), record(CANARY)),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "E_SINK_IMMUTABLE", disposition: "terminal" });
      expect((error as Error).message).toContain("apps/oauth-frozen is immutable");
      expect(leaksIn(inspect(error, { depth: 10 }), [CANARY])).toEqual([]);
    }
    expect(fake.getSecret("apps", "oauth-frozen")).toEqual(before);
    expect((await s.read(address("frozen")))?.client_secret.reveal()).toBe("first-secret");
  });

  it("keeps the path of an api_server behind a proxy (Rancher's /k8s/clusters/<id>) in every request", async () => {
    const proxied = await KubernetesFake.start({
      tokens: { "sa-token": "all" },
      namespaces: ["apps"],
      pathPrefix: "/k8s/clusters/c-m-4x7k2",
    });
    try {
      for (const api_server of [
        `${proxied.url}/k8s/clusters/c-m-4x7k2`,
        `${proxied.url}/k8s/clusters/c-m-4x7k2/`,
      ]) {
        const s = sink({ api_server });
        await s.checkWritable(address("proxied"));
        await s.write(address("proxied"), record(`${CANARY}-${api_server.length}`));
        expect((await s.read(address("proxied")))?.client_secret.reveal()).toBe(
          `${CANARY}-${api_server.length}`,
        );
      }
      expect(proxied.requests.length).toBeGreaterThan(0);
      expect(proxied.requests.filter((r) => !r.path.startsWith("/k8s/clusters/c-m-4x7k2/"))).toEqual([]);
    } finally {
      await proxied.close();
    }
  });

  it("reports a rejected token as E_SINK_AUTH and a missing token file clearly", async () => {
    await writeFile(join(dir, "bogus"), "bogus");
    await expect(sink({ token_file: join(dir, "bogus") }).read(address("x"))).rejects.toMatchObject({
      code: "E_SINK_AUTH",
    });
    const missing = await sink({ token_file: join(dir, "absent") })
      .read(address("x"))
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: "E_SINK_AUTH" });
    expect((missing as Error).message).toContain("absent");
  });

  it("derives DNS-1123 names, and needs an API server when not in a pod", () => {
    expect(kubernetesName("cf-", "Billing Web/v2.1_x")).toBe(
      `cf-billing-web-v2-1-x-${sha10("Billing Web/v2.1_x")}`,
    );
    expect(kubernetesName("cf-", "Billing_Web.v2")).toBe("cf-billing-web-v2");
    expect(kubernetesName("", "--x--")).toBe("x");
    expect(kubernetesName("", "k".repeat(300))).toHaveLength(253);
    const long = kubernetesName("", `${"k".repeat(300)} x`);
    expect(long).toHaveLength(253);
    expect(long.endsWith(`-${sha10(`${"k".repeat(300)} x`)}`)).toBe(true);
    expect(() => kubernetesName("", "__")).toThrow(expect.objectContaining({ code: "E_SINK_KEY" }));
    expect(() => new KubernetesSink({ namespace: "apps", env: {} })).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG" }),
    );
    expect(() => new KubernetesSink({ namespace: "Not A Namespace", api_server: fake.url })).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG" }),
    );
    const inCluster = new KubernetesSink({
      namespace: "apps",
      env: { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" },
    });
    expect(inCluster.describe(address("k"))).toBe("kubernetes:apps/secrets/k");
  });
});

describe("kubernetes sink over https", () => {
  let tlsFake: KubernetesFake;
  let ca: string;

  beforeAll(async () => {
    const tls = await mkdtemp(join(dir, "tls-"));
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(tls, "key.pem"),
      "-out",
      join(tls, "cert.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=kubernetes",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ]);
    ca = join(tls, "cert.pem");
    tlsFake = await KubernetesFake.start({
      tokens: { "sa-token": "all" },
      namespaces: ["apps"],
      tls: { key: await readFile(join(tls, "key.pem"), "utf8"), cert: await readFile(ca, "utf8") },
    });
  });

  afterAll(async () => {
    await tlsFake.close();
  });

  it("trusts the API server through ca_file", async () => {
    const s = sink({ api_server: tlsFake.url, ca_file: ca });
    await s.write(address("tls"), record(CANARY));
    expect((await s.read(address("tls")))?.client_secret.reveal()).toBe(CANARY);
  });

  it("refuses https without a readable CA, and does not trust an unknown certificate", async () => {
    const noCa = await sink({ api_server: tlsFake.url, ca_file: join(dir, "no-ca.crt") })
      .read(address("tls"))
      .catch((e: unknown) => e);
    expect(noCa).toMatchObject({ code: "E_SINK_CONFIG" });
    const otherCa = join(dir, "other-ca.pem");
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(dir, "other-key.pem"),
      "-out",
      otherCa,
      "-days",
      "1",
      "-subj",
      "/CN=other",
    ]);
    const untrusted = await sink({ api_server: tlsFake.url, ca_file: otherCa })
      .read(address("tls"))
      .catch((e: unknown) => e);
    expect(untrusted).toMatchObject({ code: "E_SINK_UNREACHABLE" });
  });
});

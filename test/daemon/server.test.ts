import { createHmac } from "node:crypto";
import { request } from "node:http";
import { symlink, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { displayGitUrl, GitSource } from "../../src/engine/git-source.js";
import { silentLogger } from "../../src/log.js";
import { Secret } from "../../src/secret.js";
import { startServer } from "../../src/server/http.js";
import { DaemonMetrics } from "../../src/server/metrics.js";
import {
  createWebhookHandler,
  loadWebhookSecret,
  MAX_WEBHOOK_BODY_BYTES,
  RecentIds,
  verifyBearer,
  verifyGitHubSignature,
} from "../../src/server/webhook.js";
import { GitRepo, parsePrometheusText, tempDir } from "./support.js";

const SECRET = new Secret("a-webhook-secret-of-some-length");

describe("webhook verification", () => {
  const body = Buffer.from('{"ref":"refs/heads/main"}');
  const sign = (key: string, b: Buffer) => `sha256=${createHmac("sha256", key).update(b).digest("hex")}`;

  it("accepts GitHub's X-Hub-Signature-256 only for the exact body and secret", () => {
    expect(verifyGitHubSignature(SECRET, body, sign(SECRET.reveal(), body))).toBe(true);
    expect(
      verifyGitHubSignature(SECRET, Buffer.from(`${body.toString()} `), sign(SECRET.reveal(), body)),
    ).toBe(false);
    expect(verifyGitHubSignature(SECRET, body, sign("another-secret", body))).toBe(false);
    expect(verifyGitHubSignature(SECRET, body, sign(SECRET.reveal(), body).replace("sha256=", "sha1="))).toBe(
      false,
    );
    expect(verifyGitHubSignature(SECRET, body, "sha256=abc")).toBe(false);
    expect(verifyGitHubSignature(SECRET, body, undefined)).toBe(false);
  });

  it("accepts a bearer token equal to the secret", () => {
    expect(verifyBearer(SECRET, `Bearer ${SECRET.reveal()}`)).toBe(true);
    expect(verifyBearer(SECRET, `bearer ${SECRET.reveal()}`)).toBe(true);
    expect(verifyBearer(SECRET, `Bearer ${SECRET.reveal()}x`)).toBe(false);
    expect(verifyBearer(SECRET, SECRET.reveal())).toBe(false);
    expect(verifyBearer(SECRET, undefined)).toBe(false);
  });

  it("remembers a bounded number of replay keys", () => {
    const ids = new RecentIds(2);
    expect([ids.add("a"), ids.add("a"), ids.add("b"), ids.add("c"), ids.add("a"), ids.add("c")]).toEqual([
      true,
      false,
      true,
      true,
      true,
      false,
    ]);
  });

  it("reads the secret from the environment or a file, and refuses a missing or short one", async () => {
    const dir = await tempDir("webhook-secret");
    await writeFile(join(dir, "secret"), `${SECRET.reveal()}\n`);
    expect((await loadWebhookSecret({ secret_file: join(dir, "secret") }, {})).reveal()).toBe(
      SECRET.reveal(),
    );
    expect((await loadWebhookSecret({ secret_env: "HOOK" }, { HOOK: SECRET.reveal() })).reveal()).toBe(
      SECRET.reveal(),
    );
    await expect(loadWebhookSecret({ secret_env: "HOOK" }, {})).rejects.toMatchObject({
      code: "E_WEBHOOK_SECRET",
    });
    await expect(loadWebhookSecret({ secret_env: "HOOK" }, { HOOK: "short" })).rejects.toMatchObject({
      code: "E_WEBHOOK_SECRET",
    });
  });
});

describe("the HTTP server", () => {
  async function serve() {
    let accepted = 0;
    const metrics = new DaemonMetrics({ version: "test", mode: "apply" });
    const server = await startServer("127.0.0.1:0", {
      readiness: () => ({ ready: false, reason: "no run has finished yet" }),
      status: () => ({ mode: "apply" }),
      metrics: () => metrics.render(),
      webhook: createWebhookHandler({
        secret: SECRET,
        branch: "main",
        onAccepted: () => accepted++,
        count: (r) => metrics.webhook(r),
        logger: silentLogger,
      }),
      logger: silentLogger,
    });
    onTestFinished(() => server.close());
    return { server, accepted: () => accepted };
  }

  it("answers health, readiness, status, metrics, and the wrong method or path", async () => {
    const { server } = await serve();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, reason: "no run has finished yet" });
    expect(await (await fetch(`${server.url}/status`)).json()).toEqual({ mode: "apply" });
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parsePrometheusText(await metrics.text()).has("cf_oauth_gitops_runs_total")).toBe(true);
    expect((await fetch(`${server.url}/hooks/git`)).status).toBe(405);
    expect((await fetch(`${server.url}/status`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  it("refuses bodies over 1 MiB with 413, announced or streamed, and starts nothing", async () => {
    const { server, accepted } = await serve();
    const big = Buffer.alloc(MAX_WEBHOOK_BODY_BYTES + 1, 0x61);
    const announced = await fetch(`${server.url}/hooks/git`, {
      method: "POST",
      headers: { authorization: `Bearer ${SECRET.reveal()}` },
      body: big,
    });
    expect(announced.status).toBe(413);
    const streamed = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${server.url}/hooks/git`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${SECRET.reveal()}`, "transfer-encoding": "chunked" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.write(big.subarray(0, 600_000));
      req.end(big.subarray(600_000));
    });
    expect(streamed).toBe(413);
    const ok = await fetch(`${server.url}/hooks/git`, {
      method: "POST",
      headers: { authorization: `Bearer ${SECRET.reveal()}` },
      body: "{}",
    });
    expect(ok.status).toBe(202);
    await new Promise((r) => setImmediate(r));
    expect(accepted()).toBe(1);
  });

  it("answers a GitHub ping without starting a run", async () => {
    const { server, accepted } = await serve();
    const body = "{}";
    const res = await fetch(`${server.url}/hooks/git`, {
      method: "POST",
      headers: {
        "x-github-event": "ping",
        "x-hub-signature-256": `sha256=${createHmac("sha256", SECRET.reveal()).update(body).digest("hex")}`,
      },
      body,
    });
    expect(res.status).toBe(200);
    expect(accepted()).toBe(0);
  });
});

describe("GitSource", () => {
  it("checks out the fetched commit, follows the branch, and never follows a symlink out of the checkout", async () => {
    const dir = await tempDir("git-source");
    const repo = await GitRepo.create(dir);
    const first = await repo.commit({ "desired/a.yaml": "clients: []\n" });
    const source = new GitSource({
      url: repo.url,
      branch: "main",
      path: "desired",
      checkoutDir: join(dir, "state", "checkout"),
      logger: silentLogger,
    });
    expect(await source.remoteRevision()).toBe(first);
    const one = await source.sync();
    expect(one).toEqual({
      revision: first,
      root: join(dir, "state", "checkout"),
      desiredPath: join(dir, "state", "checkout", "desired"),
    });
    expect(await readFile(join(one.desiredPath, "a.yaml"), "utf8")).toBe("clients: []\n");

    await symlink("/etc/hostname", join(repo.work, "desired", "link.yaml"));
    await writeFile(join(one.desiredPath, "stray.yaml"), "left behind\n");
    const second = await repo.commit({ "desired/a.yaml": "clients: [] # 2\n" });
    expect(await source.remoteRevision()).toBe(second);
    const two = await source.sync();
    expect(two.revision).toBe(second);
    expect(await readFile(join(two.desiredPath, "a.yaml"), "utf8")).toBe("clients: [] # 2\n");
    expect(await readFile(join(two.desiredPath, "link.yaml"), "utf8")).toBe("/etc/hostname");
    await expect(readFile(join(two.desiredPath, "stray.yaml"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses paths that leave the repository and branch names that could be options, and hides URL credentials", async () => {
    const base = {
      url: "file:///nowhere",
      checkoutDir: join(tmpdir(), "never-created"),
      logger: silentLogger,
    };
    expect(() => new GitSource({ ...base, branch: "main", path: "../outside" })).toThrow(
      /stay inside the repository/,
    );
    expect(() => new GitSource({ ...base, branch: "--upload-pack=evil", path: "." })).toThrow(
      /not a branch name/,
    );
    expect(() => new GitSource({ ...base, url: "--upload-pack=evil", branch: "main", path: "." })).toThrow(
      /must not start with/,
    );
    expect(displayGitUrl("https://user:token123@git.example/repo.git")).toBe("https://git.example/repo.git");
    const failing = new GitSource({
      ...base,
      url: "https://user:token123@127.0.0.1:1/repo.git",
      branch: "main",
      path: ".",
    });
    const error = await failing.remoteRevision().catch((e: Error) => e);
    expect(error).toMatchObject({ code: "E_GIT" });
    expect(String((error as Error).message)).not.toContain("token123");
  });
});

describe("parsePrometheusText (the test's strict parser)", () => {
  it("fails on malformed exposition", () => {
    expect(() => parsePrometheusText("# TYPE a counter\na 1\n")).not.toThrow();
    expect(() => parsePrometheusText("# TYPE a counter\na 1")).toThrow(/newline/);
    expect(() => parsePrometheusText("# TYPE a counter\na{x=1} 1\n")).toThrow(/labels/);
    expect(() => parsePrometheusText("# TYPE a counter\nb 1\n")).toThrow(/outside its family/);
    expect(() => parsePrometheusText("# TYPE a counter\na one\n")).toThrow(/bad value/);
    expect(() => parsePrometheusText("# TYPE a wat\na 1\n")).toThrow(/bad type/);
  });
});

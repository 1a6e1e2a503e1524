import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it, onTestFinished } from "vitest";
import { sinkResolver } from "../../src/cli/common.js";
import { createClient } from "../../src/cloudflare/index.js";
import { loadConfig, policyFromConfig } from "../../src/config/index.js";
import { Daemon, type DaemonObserver, gitDesiredSource, type RunRecord } from "../../src/engine/daemon.js";
import { GitSource } from "../../src/engine/git-source.js";
import type { TriggerReason } from "../../src/engine/triggers/types.js";
import { createLogger } from "../../src/log.js";
import { Secret } from "../../src/secret.js";
import { FileInventoryStore } from "../../src/state/inventory.js";
import { FileJournalStore } from "../../src/state/journal.js";
import { ManualScheduler } from "../helpers/clock.js";
import { ACCOUNT_A, startTestEmulator, WRITE_TOKEN } from "../helpers/emulator.js";
import {
  clientYaml,
  desiredYaml,
  eventually,
  GitRepo,
  liveByName,
  type LogLine,
  parsePrometheusText,
  postWebhook,
  startDaemon,
  tempDir,
  WEBHOOK_SECRET,
  gitSourceYaml,
  writeConfig,
  writeCount,
} from "./support.js";

const finishedAt = (revision: string) => (l: LogLine) =>
  l.component === "daemon" &&
  typeof l.msg === "string" &&
  l.msg.startsWith("run finished") &&
  l["revision"] === revision;

const sumOf = (
  families: ReturnType<typeof parsePrometheusText>,
  name: string,
  labels: Record<string, string> = {},
) =>
  (families.get(name)?.samples ?? [])
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);

describe("run with a git source and a webhook (real process)", () => {
  it("applies commits on a signed webhook or the poll, refuses bad webhooks, keeps the last good state and stays ready on an invalid commit", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-git");
    const repo = await GitRepo.create(dir);
    const shaA = await repo.commit({ "clients/apps.yaml": desiredYaml([clientYaml("alpha")]) });
    await writeConfig(
      dir,
      ["interval: 1h", ...gitSourceYaml(repo.url, { poll: "2s", webhook: true })].join("\n"),
    );
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    await daemon.waitForLine(finishedAt(shaA));
    expect((await liveByName(emu)).has("alpha")).toBe(true);
    expect((await daemon.get("/readyz")).status).toBe(200);
    const metrics = async () => parsePrometheusText((await daemon.get<string>("/metrics")).text);
    const runsBefore = sumOf(await metrics(), "cf_oauth_gitops_runs_total");

    // Refused webhooks: 401, and nothing is requested or run.
    expect((await postWebhook(daemon.url, { signature: null })).status).toBe(401);
    expect((await postWebhook(daemon.url, { secret: "not-the-secret-at-all" })).status).toBe(401);
    expect((await postWebhook(daemon.url, { signature: `sha256=${"0".repeat(64)}` })).status).toBe(401);
    expect((await postWebhook(daemon.url, { bearer: "wrong-token" })).status).toBe(401);
    // No sleep needed: a refused delivery is answered after its request would have been counted, so
    // the counters below already show anything it could have started.
    let m = await metrics();
    expect(sumOf(m, "cf_oauth_gitops_triggers_total", { reason: "webhook" })).toBe(0);
    expect(sumOf(m, "cf_oauth_gitops_webhook_requests_total", { result: "unauthorized" })).toBe(4);
    expect(sumOf(m, "cf_oauth_gitops_runs_total")).toBe(runsBefore);

    // A commit plus a signed webhook reaches the emulator; the same signed body again is refused, also
    // under a fresh delivery id (the id is not signed, so it is not the replay key).
    const shaB = await repo.commit({
      "clients/apps.yaml": desiredYaml([clientYaml("alpha"), clientYaml("beta")]),
    });
    const after = shaB;
    expect((await postWebhook(daemon.url, { delivery: "delivery-1", after })).status).toBe(202);
    await daemon.waitForLine(finishedAt(shaB));
    expect((await liveByName(emu)).has("beta")).toBe(true);
    expect((await postWebhook(daemon.url, { delivery: "delivery-2", after })).status).toBe(409);
    expect((await postWebhook(daemon.url, { bearer: WEBHOOK_SECRET })).status).toBe(202);
    expect((await postWebhook(daemon.url, { ref: "refs/heads/other" })).status).toBe(202);
    m = await metrics();
    expect(sumOf(m, "cf_oauth_gitops_triggers_total", { reason: "webhook" })).toBe(2);
    expect(sumOf(m, "cf_oauth_gitops_webhook_requests_total", { result: "replayed" })).toBe(1);
    expect(sumOf(m, "cf_oauth_gitops_webhook_requests_total", { result: "ignored" })).toBe(1);

    // Without a webhook, the poll picks the commit up.
    const shaC = await repo.commit({
      "clients/apps.yaml": desiredYaml([clientYaml("alpha"), clientYaml("beta"), clientYaml("gamma")]),
    });
    const pollRun = await daemon.waitForLine(finishedAt(shaC));
    expect(pollRun["reasons"]).toContain("git-poll");
    expect((await liveByName(emu)).has("gamma")).toBe(true);

    // An invalid commit (also changing alpha) applies nothing: 503 with file:line:col, live untouched.
    const writesBefore = await writeCount(emu);
    const invalid = desiredYaml([
      clientYaml("alpha", "https://alpha.example/changed"),
      clientYaml("beta"),
      clientYaml("gamma"),
      "    redirect_uri: https://typo.example/cb",
    ]);
    const shaD = await repo.commit({ "clients/apps.yaml": invalid }, "invalid");
    expect((await postWebhook(daemon.url)).status).toBe(202);
    const invalidRun = await daemon.waitForLine(finishedAt(shaD));
    expect(invalidRun["result"]).toBe("invalid");
    expect(await writeCount(emu)).toBe(writesBefore);
    expect((await liveByName(emu)).get("alpha")?.["redirect_uris"]).toEqual([
      "https://alpha.example/callback",
    ]);
    // The pod stays in its Service (readiness is not run health), so the fixing commit's webhook is
    // received; /status and the metrics say the last run failed, with file:line:col.
    const ready = await daemon.get<{ ready: boolean; reason: string | null }>("/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, reason: null });
    const status = await daemon.get<{
      ready: { ready: boolean };
      run_health: { healthy: boolean; reason: string };
      last_run: {
        result: string;
        revision: string;
        error: { issues: { file: string; line: number; col: number; code: string }[] };
      };
      applied_revision: string;
    }>("/status");
    expect(status.body.ready.ready).toBe(true);
    expect(status.body.run_health.healthy).toBe(false);
    expect(status.body.run_health.reason).toMatch(
      /clients\/apps\.yaml:21:5: clients\[2\]\.redirect_uri: unknown key/,
    );
    expect(status.body.last_run).toMatchObject({ result: "invalid", revision: shaD });
    expect(status.body.last_run.error.issues[0]).toMatchObject({
      file: "clients/apps.yaml",
      line: 21,
      col: 5,
      code: "E_UNKNOWN_KEY",
    });
    expect(status.body.applied_revision).toBe(shaC);
    m = await metrics();
    expect(sumOf(m, "cf_oauth_gitops_runs_total", { result: "invalid" })).toBe(1);
    expect(sumOf(m, "cf_oauth_gitops_last_run_success")).toBe(0);
    expect(sumOf(m, "cf_oauth_gitops_ready")).toBe(1);

    // The next good commit applies.
    const shaE = await repo.commit(
      {
        "clients/apps.yaml": desiredYaml([
          clientYaml("alpha", "https://alpha.example/changed"),
          clientYaml("beta"),
          clientYaml("gamma"),
        ]),
      },
      "fixed",
    );
    expect((await postWebhook(daemon.url)).status).toBe(202);
    expect((await daemon.waitForLine(finishedAt(shaE)))["result"]).toBe("ok");
    expect((await liveByName(emu)).get("alpha")?.["redirect_uris"]).toEqual([
      "https://alpha.example/changed",
    ]);
    expect((await daemon.get("/readyz")).status).toBe(200);
    expect((await daemon.get<{ run_health: { healthy: boolean } }>("/status")).body.run_health.healthy).toBe(
      true,
    );
    expect(sumOf(await metrics(), "cf_oauth_gitops_last_run_success")).toBe(1);

    // /metrics parses strictly and carries what the issue asks for.
    m = await metrics();
    for (const name of [
      "cf_oauth_gitops_runs_total",
      "cf_oauth_gitops_run_duration_seconds",
      "cf_oauth_gitops_changes_applied_total",
      "cf_oauth_gitops_clients_drifted",
      "cf_oauth_gitops_secret_age_seconds",
      "cf_oauth_gitops_rotations_total",
      "cf_oauth_gitops_api_requests_total",
      "cf_oauth_gitops_rate_budget_remaining",
      "cf_oauth_gitops_last_success_timestamp_seconds",
      "cf_oauth_gitops_info",
    ]) {
      expect(m.has(name), name).toBe(true);
    }
    expect(m.get("cf_oauth_gitops_info")?.samples).toEqual([
      expect.objectContaining({ labels: expect.objectContaining({ revision: shaE }), value: 1 }),
    ]);
    expect(sumOf(m, "cf_oauth_gitops_changes_applied_total", { kind: "create", result: "applied" })).toBe(3);
    expect(sumOf(m, "cf_oauth_gitops_changes_applied_total", { kind: "update", result: "applied" })).toBe(1);
    expect(
      sumOf(m, "cf_oauth_gitops_api_requests_total", {
        route: "/accounts/:account_id/oauth_clients",
        status: "200",
      }),
    ).toBeGreaterThan(0);
    expect(sumOf(m, "cf_oauth_gitops_rate_budget_remaining")).toBeGreaterThan(0);
    const ages = m.get("cf_oauth_gitops_secret_age_seconds")?.samples ?? [];
    expect(ages.map((s) => s.labels["client_name"]).sort()).toEqual(["alpha", "beta", "gamma"]);
    expect(ages.every((s) => s.labels["account"] === ACCOUNT_A)).toBe(true);

    // Never a secret in logs, status or metrics.
    expect(daemon.output()).not.toContain(WEBHOOK_SECRET);
    expect(m.size).toBeGreaterThan(0);
    expect(await daemon.stop()).toBe(0);
  });
});

describe("the git poll (in process, manual clock)", () => {
  it("a poll that finds no new commit requests no run; the poll after a commit requests exactly one", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-git-poll");
    const repo = await GitRepo.create(dir);
    const shaA = await repo.commit({ "clients/apps.yaml": desiredYaml([clientYaml("alpha")]) });
    await writeConfig(dir, ["interval: 1h", ...gitSourceYaml(repo.url, { poll: "1m" })].join("\n"));
    const config = await loadConfig("cf-oauth-gitops.yaml", { cwd: dir });
    const gitConfig = config.source?.git;
    if (!gitConfig) throw new Error("the config has no git source");

    const lines: LogLine[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const text of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(text));
        callback();
      },
    });
    const logger = createLogger({ level: "debug", destination: destination as never });
    const clock = new ManualScheduler();
    const now = () => new Date(clock.now());
    const api = createClient({
      baseUrl: emu.url,
      credentials: { kind: "token", token: new Secret(WRITE_TOKEN) },
      logger,
    });
    onTestFinished(() => api.close());
    const git = new GitSource({
      ...gitConfig,
      checkoutDir: join(config.state_dir, "git", "checkout"),
      logger,
      env: { PATH: process.env["PATH"] ?? "", HOME: dir },
    });
    const requested: TriggerReason[] = [];
    const runs: RunRecord[] = [];
    const observer: DaemonObserver = {
      triggered: (reason) => void requested.push(reason),
      runFinished: (record) => void runs.push(record),
      rotationStatuses: () => undefined,
      rotationFinished: () => undefined,
    };
    const inventoryStore = new FileInventoryStore(config.state_dir);
    const journal = new FileJournalStore(config.state_dir);
    const daemon = new Daemon({
      config,
      policy: policyFromConfig(config),
      source: gitDesiredSource(config, git, { now, scratchDir: join(config.state_dir, "git", "ownership") }),
      reconcile: {
        reader: api,
        writer: api,
        inventoryStore,
        journal,
        sinks: sinkResolver(config, logger, {}),
        logger,
        now,
      },
      rotation: null,
      observer,
      logger,
      scheduler: clock,
    });
    onTestFinished(() => daemon.stop());
    const polls = () => lines.filter((l) => l.msg === "polled the git branch");
    /** Moves the clock past one poll interval (60 s, ±10 %) and waits for that poll's own log line. */
    const poll = async () => {
      const before = polls().length;
      await clock.advance(66_000);
      await eventually(async () => (polls().length > before ? true : undefined), 20_000, "a poll");
      expect(polls()).toHaveLength(before + 1);
      return polls().at(-1) as LogLine;
    };

    await daemon.start({ intervalSeconds: 3600, gitPoll: { git, seconds: 60 } });
    await eventually(async () => (runs.length > 0 ? true : undefined), 20_000, "the startup run");
    expect(runs.map((r) => [r.reasons, r.revision, r.result])).toEqual([[["startup"], shaA, "ok"]]);
    expect((await liveByName(emu)).has("alpha")).toBe(true);

    // Polls that find the branch where the last run left it: each ran git ls-remote (its line shows
    // the revision it read), and none requested a run.
    for (let i = 0; i < 3; i++) {
      expect(await poll()).toMatchObject({ revision: shaA, seen: shaA, moved: false });
      expect(requested).toEqual(["startup"]);
      expect(runs).toHaveLength(1);
    }

    // A commit: the next poll sees it and requests exactly one run, which applies it.
    const shaB = await repo.commit({
      "clients/apps.yaml": desiredYaml([clientYaml("alpha"), clientYaml("beta")]),
    });
    expect(await poll()).toMatchObject({ revision: shaB, seen: shaA, moved: true });
    await eventually(async () => (runs.length > 1 ? true : undefined), 20_000, "the run the poll asked for");
    expect(runs.map((r) => [r.reasons, r.revision, r.result])).toEqual([
      [["startup"], shaA, "ok"],
      [["git-poll"], shaB, "ok"],
    ]);
    expect((await liveByName(emu)).has("beta")).toBe(true);
    // And the poll after that finds nothing new again.
    expect(await poll()).toMatchObject({ revision: shaB, seen: shaB, moved: false });
    expect(requested).toEqual(["startup", "git-poll"]);
    expect(runs).toHaveLength(2);
    await daemon.stop();
    expect(clock.pending).toBe(0); // the poll timer is cancelled
  });
});

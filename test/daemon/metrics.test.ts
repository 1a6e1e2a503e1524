import { describe, expect, it } from "vitest";
import type { RateBudgetSnapshot } from "../../src/cloudflare/rate-budget.js";
import type { ClientRotationStatus } from "../../src/core/rotation.js";
import { newRunRecord } from "../../src/engine/daemon/run-record.js";
import { DaemonMetrics } from "../../src/server/metrics.js";
import { parsePrometheusText } from "./support.js";

/**
 * The metrics the alert rules (deploy/prometheus/cf-oauth-gitops.rules.yaml) need beyond the counters:
 * the last run's result itself, each secret's policy beside its age, and a rate budget that reads
 * full again once its window has reset. Rendered by prom-client and parsed as Prometheus would.
 */

async function scrape(metrics: DaemonMetrics) {
  return parsePrometheusText((await metrics.render()).body);
}

function sample(
  families: Awaited<ReturnType<typeof scrape>>,
  name: string,
  labels: Record<string, string> = {},
) {
  return families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

function status(name: string, scheduled: boolean): ClientRotationStatus {
  return {
    account_id: "acct",
    client_id: `id-${name}`,
    client_name: name,
    target: { sink: "default", key: name },
    phase: scheduled ? "idle" : "off",
    policy: { every: 7_776_000, grace: 86_400 },
    scheduled,
    issued_at: "2026-01-01T00:00:00.000Z",
    age_source: "sink",
    age_seconds: 0,
    next_due_at: null,
    ever_published: true,
  };
}

describe("daemon metrics for the alert rules", () => {
  it("last_run_result is 1 for the last run's result only, and all 0 before the first run", async () => {
    const metrics = new DaemonMetrics({ version: "t", mode: "apply" });
    const before = await scrape(metrics);
    expect(before.get("cf_oauth_gitops_last_run_result")?.samples.map((s) => s.value)).toEqual([
      0, 0, 0, 0, 0, 0,
    ]);

    const run = (result: "ok" | "invalid") => {
      const record = newRunRecord(1, new Set(["startup"] as const), "apply", new Date());
      record.result = result;
      record.duration_seconds = 0.1;
      metrics.runFinished(record);
    };
    run("invalid");
    let m = await scrape(metrics);
    expect(sample(m, "cf_oauth_gitops_last_run_result", { result: "invalid" })).toBe(1);
    expect(sample(m, "cf_oauth_gitops_last_run_result", { result: "ok" })).toBe(0);
    run("ok");
    m = await scrape(metrics);
    expect(sample(m, "cf_oauth_gitops_last_run_result", { result: "invalid" })).toBe(0);
    expect(sample(m, "cf_oauth_gitops_last_run_result", { result: "ok" })).toBe(1);
    expect(m.get("cf_oauth_gitops_last_run_result")?.samples.filter((s) => s.value === 1)).toHaveLength(1);
  });

  it("exports each scheduled client's policy (every, grace) beside its secret age, none for rotation: false", async () => {
    const metrics = new DaemonMetrics({ version: "t", mode: "apply" });
    metrics.rotationStatuses([status("web", true), status("legacy", false)]);
    const m = await scrape(metrics);
    const labels = { account: "acct", client_name: "web" };
    expect(sample(m, "cf_oauth_gitops_secret_rotation_every_seconds", labels)).toBe(7_776_000);
    expect(sample(m, "cf_oauth_gitops_secret_rotation_grace_seconds", labels)).toBe(86_400);
    expect(m.get("cf_oauth_gitops_secret_rotation_every_seconds")?.samples).toHaveLength(1);
    expect(m.get("cf_oauth_gitops_secret_rotation_grace_seconds")?.samples).toHaveLength(1);
    // The age is there for both: only the policy is withheld for `rotation: false`.
    expect(m.get("cf_oauth_gitops_secret_age_seconds")?.samples).toHaveLength(2);
  });

  it("rate budget: remaining and quota as the last response said, the full quota once the window reset", async () => {
    let now = 1_000_000;
    let snapshot: RateBudgetSnapshot = {
      remaining: null,
      resetAt: null,
      quota: null,
      window: null,
      inFlight: 0,
      blockedUntil: null,
    };
    const metrics = new DaemonMetrics({
      version: "t",
      mode: "apply",
      budget: { snapshot: () => snapshot },
      now: () => now,
    });
    let m = await scrape(metrics);
    expect(sample(m, "cf_oauth_gitops_rate_budget_remaining")).toBe(-1);
    expect(sample(m, "cf_oauth_gitops_rate_budget_quota")).toBe(-1);

    snapshot = { ...snapshot, remaining: 40, quota: 1200, window: 300, resetAt: now + 60_000 };
    m = await scrape(metrics);
    expect(sample(m, "cf_oauth_gitops_rate_budget_remaining")).toBe(40);
    expect(sample(m, "cf_oauth_gitops_rate_budget_quota")).toBe(1200);

    // An idle daemon makes no request after the reset, so the budget never rolls over by itself.
    now += 61_000;
    m = await scrape(metrics);
    expect(sample(m, "cf_oauth_gitops_rate_budget_remaining")).toBe(1200);
  });
});

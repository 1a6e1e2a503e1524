import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ApiResponseInfo } from "../cloudflare/options.js";
import type { RateBudgetSnapshot, RateBudgetView } from "../cloudflare/rate-budget.js";
import type { ClientRotationStatus } from "../core/rotation.js";
import type { DaemonObserver, RunRecord } from "../engine/daemon.js";
import type { RotateReport } from "../engine/rotate.js";
import type { LoopState } from "../engine/triggers/run-queue.js";
import { TRIGGER_REASONS, type TriggerReason } from "../engine/triggers/types.js";

/** Every metric name starts with this. */
export const METRIC_PREFIX = "cf_oauth_gitops_";

const RUN_RESULTS = ["ok", "partial", "invalid", "unsafe", "error", "aborted"] as const;
const CHANGE_KINDS = ["create", "update", "delete"] as const;
const LOOP_STATES = ["idle", "backoff", "waiting", "stalled"] as const;

export interface DaemonMetricsOptions {
  /** The API client's rate budget, read at scrape time. */
  budget?: RateBudgetView;
  version: string;
  mode: "apply" | "dry-run";
  /** Epoch ms; injectable for tests. */
  now?: () => number;
}

/**
 * The daemon's Prometheus metrics, in a registry of its own (no global state, so tests and a second
 * daemon in one process never share counters). Labels are low-cardinality: results, kinds, route
 * templates, and per-client secret ages labelled by account and client name, never by anything
 * secret. Values that move with the clock (secret age, rate budget) are computed at scrape time.
 */
export class DaemonMetrics implements DaemonObserver {
  readonly registry = new Registry();
  readonly #now: () => number;
  readonly #runs: Counter<"result">;
  readonly #duration: Histogram<"result">;
  readonly #changes: Counter<"kind" | "result">;
  readonly #drifted: Gauge;
  readonly #pending: Gauge<"kind">;
  readonly #rotations: Counter<"result">;
  readonly #rotationPhase: Gauge<"phase">;
  readonly #apiRequests: Counter<"method" | "route" | "status">;
  readonly #triggers: Counter<"reason">;
  readonly #webhooks: Counter<"result">;
  readonly #lastSuccess: Gauge;
  readonly #lastRunSuccess: Gauge;
  readonly #lastRunResult: Gauge<"result">;
  readonly #info: Gauge<"revision" | "version" | "mode">;
  readonly #up: Gauge;
  readonly #loop: Gauge<"state">;
  #issuedAt = new Map<string, { account: string; client_name: string; issuedMs: number }>();
  #policies = new Map<string, { account: string; client_name: string; every: number; grace: number }>();
  #infoLabels: { revision: string; version: string; mode: string };

  constructor(options: DaemonMetricsOptions) {
    this.#now = options.now ?? Date.now;
    const registers = [this.registry];
    const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`;
    this.#runs = new Counter({
      name: name("runs_total"),
      help: "Reconcile runs by result.",
      labelNames: ["result"],
      registers,
    });
    for (const result of RUN_RESULTS) this.#runs.inc({ result }, 0);
    this.#duration = new Histogram({
      name: name("run_duration_seconds"),
      help: "Duration of reconcile runs.",
      labelNames: ["result"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.#changes = new Counter({
      name: name("changes_applied_total"),
      help: "Changes sent to the API, by kind and result (applied or failed).",
      labelNames: ["kind", "result"],
      registers,
    });
    this.#drifted = new Gauge({
      name: name("clients_drifted"),
      help: "Clients whose live state differs from the desired state after the last run (dry-run: all planned changes).",
      registers,
    });
    this.#pending = new Gauge({
      name: name("changes_pending"),
      help: "Changes planned in the last run and not made, by kind.",
      labelNames: ["kind"],
      registers,
    });
    this.#rotations = new Counter({
      name: name("rotations_total"),
      help: "Secret operations by the rotation schedule, by result (ok, waiting, attention, failed).",
      labelNames: ["result"],
      registers,
    });
    this.#rotationPhase = new Gauge({
      name: name("rotation_clients"),
      help: "Rotatable clients by rotation phase (due, grace, delete-due, ...).",
      labelNames: ["phase"],
      registers,
    });
    const issuedAt = () => this.#issuedAt;
    const now = this.#now;
    new Gauge({
      name: name("secret_age_seconds"),
      help: "Age of each confidential client's current secret (never the secret itself).",
      labelNames: ["account", "client_name"],
      registers,
      collect() {
        this.reset();
        for (const c of issuedAt().values()) {
          this.set(
            { account: c.account, client_name: c.client_name },
            Math.max(0, (now() - c.issuedMs) / 1000),
          );
        }
      },
    });
    // The policy beside the age, so an alert can compare the two (age > every + grace: overdue).
    // Only clients whose rotation is scheduled: a `rotation: false` entry has no age limit.
    const policies = () => this.#policies;
    new Gauge({
      name: name("secret_rotation_every_seconds"),
      help: "The rotation policy's `every` for each client whose rotation is scheduled.",
      labelNames: ["account", "client_name"],
      registers,
      collect() {
        this.reset();
        for (const p of policies().values())
          this.set({ account: p.account, client_name: p.client_name }, p.every);
      },
    });
    new Gauge({
      name: name("secret_rotation_grace_seconds"),
      help: "The rotation policy's `grace` for each client whose rotation is scheduled.",
      labelNames: ["account", "client_name"],
      registers,
      collect() {
        this.reset();
        for (const p of policies().values())
          this.set({ account: p.account, client_name: p.client_name }, p.grace);
      },
    });
    this.#apiRequests = new Counter({
      name: name("api_requests_total"),
      help: "Cloudflare API attempts by method, route template and status (`error` when no response came).",
      labelNames: ["method", "route", "status"],
      registers,
    });
    const budget = options.budget;
    new Gauge({
      name: name("rate_budget_remaining"),
      help: "Requests left in the API rate-limit window, as the last response said (-1 before the first; the full quota once that window has reset).",
      registers,
      collect() {
        this.set(remainingNow(budget?.snapshot(), now()));
      },
    });
    new Gauge({
      name: name("rate_budget_quota"),
      help: "Requests the API allows per rate-limit window, from its `Ratelimit-Policy` header (-1 before the first).",
      registers,
      collect() {
        this.set(budget?.snapshot().quota ?? -1);
      },
    });
    this.#triggers = new Counter({
      name: name("triggers_total"),
      help: "Run requests by trigger (coalesced requests are each counted).",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of TRIGGER_REASONS) this.#triggers.inc({ reason }, 0);
    this.#webhooks = new Counter({
      name: name("webhook_requests_total"),
      help: "Webhook deliveries by outcome (accepted, unauthorized, replayed, too_large, ignored, ...).",
      labelNames: ["result"],
      registers,
    });
    this.#lastSuccess = new Gauge({
      name: name("last_success_timestamp_seconds"),
      help: "When the last run that applied (or, in dry-run, observed) cleanly finished; 0 before the first.",
      registers,
    });
    this.#lastSuccess.set(0);
    // Readiness no longer follows the runs (engine/daemon.ts `readiness`): this is the alertable one.
    this.#lastRunSuccess = new Gauge({
      name: name("last_run_success"),
      help: "1 when the last run finished cleanly (result ok), 0 after a failed, invalid, unsafe or partial run and before the first.",
      registers,
    });
    this.#lastRunSuccess.set(0);
    // The last result itself: `invalid` stalls the loop, so no later run moves runs_total to show it.
    this.#lastRunResult = new Gauge({
      name: name("last_run_result"),
      help: "1 for the result of the last finished run, 0 for the others (all 0 before the first).",
      labelNames: ["result"],
      registers,
    });
    for (const result of RUN_RESULTS) this.#lastRunResult.set({ result }, 0);
    this.#up = new Gauge({
      name: name("ready"),
      help: "1 when /readyz answers 200 (the daemon takes triggers; not the last run's health).",
      registers,
    });
    this.#up.set(0);
    this.#loop = new Gauge({
      name: name("loop_state"),
      help: "1 for what the loop does between runs: idle, backoff (transient failure), waiting (a known retry time), stalled (a terminal failure: no run until new input). /readyz stays 200 while stalled.",
      labelNames: ["state"],
      registers,
    });
    this.setLoopState("idle");
    this.#info = new Gauge({
      name: name("info"),
      help: "Build and source information; `revision` is the git commit last applied.",
      labelNames: ["revision", "version", "mode"],
      registers,
    });
    this.#infoLabels = { revision: "", version: options.version, mode: options.mode };
    this.#info.set(this.#infoLabels, 1);
  }

  /** The prom-client text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Hook for the API client (`ClientOptions.onResponse`). */
  readonly onApiResponse = (info: ApiResponseInfo): void => {
    this.#apiRequests.inc({
      method: info.method,
      route: info.route,
      status: info.status === null ? "error" : String(info.status),
    });
  };

  triggered(reason: TriggerReason): void {
    this.#triggers.inc({ reason });
  }

  webhook(result: string): void {
    this.#webhooks.inc({ result });
  }

  setReady(ready: boolean): void {
    this.#up.set(ready ? 1 : 0);
  }

  /** The run queue's state (engine/triggers/run-queue.ts `LoopState`), set at scrape time. */
  setLoopState(state: LoopState["state"]): void {
    for (const s of LOOP_STATES) this.#loop.set({ state: s }, s === state ? 1 : 0);
  }

  runFinished(record: RunRecord): void {
    const result = record.result ?? "error";
    this.#runs.inc({ result });
    this.#lastRunSuccess.set(result === "ok" ? 1 : 0);
    for (const r of RUN_RESULTS) this.#lastRunResult.set({ result: r }, r === result ? 1 : 0);
    this.#duration.observe({ result }, record.duration_seconds ?? 0);
    if (record.apply) {
      for (const kind of CHANGE_KINDS) {
        const counts = record.apply.by_kind[kind];
        if (counts.applied) this.#changes.inc({ kind, result: "applied" }, counts.applied);
        if (counts.failed) this.#changes.inc({ kind, result: "failed" }, counts.failed);
      }
    }
    if (record.plan) {
      this.#drifted.set(record.drifted);
      const pending = { create: 0, update: 0, delete: 0 };
      if (record.mode === "dry-run" || !record.plan.safety.ok) {
        pending.create = record.plan.summary.create;
        pending.update = record.plan.summary.update;
        pending.delete = record.plan.summary.delete;
      } else if (record.apply) {
        for (const kind of CHANGE_KINDS) pending[kind] = record.apply.by_kind[kind].failed;
      }
      for (const kind of CHANGE_KINDS) this.#pending.set({ kind }, pending[kind]);
    }
    if (result === "ok" || result === "partial") {
      this.#lastSuccess.set(Date.parse(record.finished ?? "") / 1000 || this.#now() / 1000);
      this.#setRevision(record.revision ?? "");
    }
  }

  rotationStatuses(statuses: readonly ClientRotationStatus[]): void {
    const issued = new Map<string, { account: string; client_name: string; issuedMs: number }>();
    const phases = new Map<string, number>();
    const policies = new Map<
      string,
      { account: string; client_name: string; every: number; grace: number }
    >();
    for (const s of statuses) {
      if (s.scheduled) {
        policies.set(`${s.account_id}/${s.client_id}`, {
          account: s.account_id,
          client_name: s.client_name,
          every: s.policy.every,
          grace: s.policy.grace,
        });
      }
      phases.set(s.phase, (phases.get(s.phase) ?? 0) + 1);
      const ms = s.issued_at ? Date.parse(s.issued_at) : Number.NaN;
      if (!Number.isNaN(ms)) {
        issued.set(`${s.account_id}/${s.client_id}`, {
          account: s.account_id,
          client_name: s.client_name,
          issuedMs: ms,
        });
      }
    }
    this.#issuedAt = issued;
    this.#policies = policies;
    this.#rotationPhase.reset();
    for (const [phase, n] of phases) this.#rotationPhase.set({ phase }, n);
  }

  rotationFinished(report: RotateReport): void {
    for (const r of report.results) this.#rotations.inc({ result: r.status });
  }

  #setRevision(revision: string): void {
    if (revision === this.#infoLabels.revision) return;
    this.#info.reset();
    this.#infoLabels = { ...this.#infoLabels, revision };
    this.#info.set(this.#infoLabels, 1);
  }
}

/**
 * The budget's remainder as of `now`: the full quota once the window the last response described has
 * reset (the budget itself rolls over only when a request asks, so an idle daemon's last reading
 * would otherwise keep saying "nearly spent" long after the window ended).
 */
function remainingNow(snapshot: RateBudgetSnapshot | undefined, now: number): number {
  if (!snapshot || snapshot.remaining === null) return -1;
  if (snapshot.quota !== null && snapshot.resetAt !== null && now >= snapshot.resetAt) return snapshot.quota;
  return snapshot.remaining;
}

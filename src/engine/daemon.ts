import { performance } from "node:perf_hooks";
import type { BackoffPolicy } from "../backoff.js";
import { loadDesiredState } from "../config/index.js";
import type { ReconcilerConfig } from "../config/types.js";
import { deferDeletes, deferredDeleteKey, type HeldDelete } from "../core/deferred-deletes.js";
import type { DeleteChange, Plan } from "../core/plan-types.js";
import type { Policy, DesiredState } from "../core/model.js";
import type { ClientRotationStatus } from "../core/rotation.js";
import { ConfigError, GitOpsError, UnsafePlanError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  classifyRun,
  runHealthOf,
  compactSummary,
  digestApply,
  digestChange,
  digestHeld,
  digestPlan,
  errorOf,
  errorsOf,
  historyEntry,
  isoOrNull,
  newRunRecord,
  outcomeOf,
  pushHistory,
  type RunError,
  type RunHealth,
  type RunHistoryEntry,
  type RunRecord,
  type RunResult,
  secretTrouble,
  unappliedChanges,
} from "./daemon/run-record.js";
import { DEFAULT_SNAPSHOT_ATTEMPTS, loadStableDesired } from "./desired-snapshot.js";
import type { GitSource } from "./git-source.js";
import { type ReconcileDeps, reconcileOnce } from "./reconcile.js";
import type { RotateReport } from "./rotate.js";
import type { RotationRunner } from "./daemon/rotation-runner.js";
import { realScheduler, type Cancel, type Scheduler } from "./scheduler.js";
import type { DesiredSource } from "./sources/types.js";
import { CronTrigger } from "./triggers/cron.js";
import { IntervalTrigger } from "./triggers/interval.js";
import {
  type HeldBy,
  type LoopState,
  type QueuedRun,
  RunQueue,
  type StepOutcome,
} from "./triggers/run-queue.js";
import type { PendingTrigger, Trigger, TriggerReason } from "./triggers/types.js";
import { WatchTrigger } from "./triggers/watch.js";

export * from "./daemon/run-record.js";
export type { DesiredSource, PreparedRun } from "./sources/types.js";
export { directorySource } from "./sources/directory.js";
export { gitDesiredSource } from "./sources/git.js";
export { engineRotationRunner, type RotationRunner } from "./daemon/rotation-runner.js";

/**
 * `run`: the long-running reconciler. Triggers (interval, file watch, git poll, webhook, rotation
 * schedule) request runs; the run queue runs one at a time; each run is the same straight line as
 * `apply` (engine/reconcile.ts), preceded by getting the desired state (a git commit or the watched
 * directory) and followed, when the schedule asked, by due rotations (engine/rotate.ts).
 *
 * What the daemon adds to `apply`:
 * - Invalid desired state is never applied: the run ends `invalid`, the live state stays as the last
 *   good run left it, and status/metrics/logs carry every located issue (readiness stays: the pod
 *   must keep receiving the webhook for the fix).
 * - Shutdown never abandons a write: the stop signal keeps new changes from starting, while a change
 *   already started runs to its end (the engine never hands the stop signal to a write, see
 *   `ApplyDeps.signal`), so a client created just before SIGTERM still gets its secret published.
 * - A record of every run (status, readiness, metrics), never holding a secret.
 * - A directory source is read as a stable snapshot (engine/desired-snapshot.ts: the files read the
 *   same across `daemon.quiet_period`), and the deletes planned from it are held until the client has
 *   been absent for `daemon.delete_delay` (core/deferred-deletes.ts): a half-written file that holds
 *   still for a moment must not delete clients. The first-seen-absent times live in memory only, so a
 *   restart starts every delay again (later, never sooner). A git source deletes at once: a commit is
 *   whole.
 * - With a git source, what a pull request's plan showed is what runs: `source.git.config` makes each
 *   run plan with the config file of the commit it applies (engine/repo-config.ts), and
 *   `ownership.git` publishes the ownership inventory to a ref of the repository after each run
 *   that changed it (engine/ownership-ref.ts), where `plan` in CI reads it.
 * - Failures drive the loop by their disposition (daemon/run-record.ts `outcomeOf`, applied by
 *   triggers/run-queue.ts): transient backs off, terminal stalls until new input, wait retries at
 *   the known time; a failed run's owed rotation is carried into its retry. The last runs are kept
 *   in `/status` `history`.
 *
 * Why this file is longer than the others: what is left is the `Daemon` class, one run's steps in
 * order (prepare, load, hold deletes, reconcile, rotate, refresh rotation status, publish
 * ownership) and the status view over the state those steps keep. The decisions live in pure
 * modules (daemon/run-record.ts, core/deferred-deletes.ts), the sources in sources/, the timers in
 * triggers/ behind scheduler.ts; splitting the steps further would spread one run's private state
 * over several files.
 */

/** Why `/readyz` says what it says. */
export interface Readiness {
  ready: boolean;
  reason: string | null;
}

/**
 * `/status` `queue`: what the daemon holds to do, as positive evidence. Idle means `running` false,
 * `next_run` null, `pending_triggers` empty and `runs_started` equal to `runs_finished`, all read in
 * one answer (the daemon computes it in one synchronous call, so no run can start or end between
 * its fields). Never a secret: reasons, times and counts only.
 */
export interface QueueStatus {
  /** A run is in flight. */
  running: boolean;
  /** The run requested but not started, or null when nothing is requested. */
  next_run: { reasons: TriggerReason[]; held_by: HeldBy; starts_at: string | null } | null;
  /** Requests triggers are about to make (a file-watch debounce settling, a git poll checking). */
  pending_triggers: {
    trigger: string;
    kind: PendingTrigger["kind"];
    paths: number;
    due_at: string | null;
  }[];
  /** Runs this process started and finished (`run --once` included); equal unless one is in flight. */
  runs_started: number;
  runs_finished: number;
}

/** Notified of everything metrics count. Implemented by src/server/metrics.ts. */
export interface DaemonObserver {
  triggered(reason: TriggerReason): void;
  runFinished(record: RunRecord): void;
  rotationStatuses(statuses: readonly ClientRotationStatus[], revision: string | null): void;
  rotationFinished(report: RotateReport): void;
}

/** The published ownership record, as `/status` shows it. */
export interface OwnershipPublication {
  ref: string;
  /** The commit the ref held after the last attempt (null when it has never been read). */
  commit: string | null;
  /** When this process last pushed a new record. */
  published_at: string | null;
  /** The last attempt's failure; null once one succeeds. */
  error: RunError | null;
}

export interface DaemonTriggerOptions {
  /** Seconds between backstop runs (config `interval`). */
  intervalSeconds: number;
  /** Watch these paths (directory source). */
  watch?: { paths: string[]; ignore: string[]; debounceMs?: number };
  /** Poll the git source's branch every this many seconds (config `source.git.interval`). */
  gitPoll?: { git: GitSource; seconds: number };
  /** The rotation schedule; left out when there is no rotation runner (or in dry-run). */
  rotation?: { schedule: string; timezone: string };
}

export interface DaemonOptions {
  config: ReconcilerConfig;
  policy: Policy;
  source: DesiredSource;
  /** As for `apply`; `writer: null` is dry-run (nothing can be written). */
  reconcile: ReconcileDeps;
  rotation: RotationRunner | null;
  concurrency?: number;
  observer?: DaemonObserver;
  backoff?: BackoffPolicy;
  logger: Logger;
  /** Rotation status (an extra list per account plus sink reads) is refreshed at most this often. */
  rotationStatusTtlMs?: number;
  /** Waits `ms` (the directory source's quiet period); rejects when `signal` aborts. The scheduler by default. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * The loop's clock and timers (run queue, triggers, held-delete wake-up, rotation-status age);
   * real ones by default. Tests pass a manual one (test/helpers/clock.ts) and advance it.
   */
  scheduler?: Scheduler;
}

const ROTATION_STATUS_TTL_MS = 5 * 60_000;

export class Daemon {
  readonly mode: "apply" | "dry-run";
  readonly #options: DaemonOptions;
  readonly #deps: ReconcileDeps;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #queue: RunQueue;
  readonly #clock: Scheduler;
  readonly #startedAt: Date;
  #triggers: Trigger[] = [];
  #interval: IntervalTrigger | null = null;
  #cron: CronTrigger | null = null;
  #nextId = 1;
  #runsFinished = 0;
  #current: RunRecord | null = null;
  #last: RunRecord | null = null;
  #history: RunHistoryEntry[] = [];
  #lastSuccess: { finished: string; revision: string | null } | null = null;
  #appliedRevision: string | null = null;
  #seenRevision: string | null = null;
  #rotation: { statuses: ClientRotationStatus[]; checkedAt: number; revision: string | null } | null = null;
  /** Directory source: when each planned delete was first seen (epoch ms, the reconcile clock). */
  #absentSince = new Map<string, number>();
  #held: HeldDelete[] = [];
  #heldTimer: Cancel | null = null;
  /** Triggers started (not `--once`): only then does a held delete schedule its own run. */
  #started = false;
  /** Digest of the last directory snapshot that held still (engine/desired-snapshot.ts). */
  #stableDigest: string | null = null;
  #ownership: OwnershipPublication | null = null;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.mode = options.reconcile.writer ? "apply" : "dry-run";
    this.#deps = options.reconcile;
    this.#log = options.logger.child({ component: "daemon" });
    this.#clock = options.scheduler ?? realScheduler;
    this.#startedAt = new Date(this.#clock.now());
    this.#queue = new RunQueue({
      step: (reasons) => this.#step(reasons),
      logger: this.#log,
      scheduler: this.#clock,
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
  }

  /** Asks for a run (coalesced with any already waiting). */
  request(reason: TriggerReason): void {
    if (this.#stop.signal.aborted) return;
    this.#options.observer?.triggered(reason);
    this.#queue.request(reason);
  }

  /** Starts the triggers and requests the first run. */
  async start(triggers: DaemonTriggerOptions): Promise<void> {
    this.#interval = new IntervalTrigger({
      name: "interval",
      seconds: triggers.intervalSeconds,
      onTick: () => this.request("interval"),
      logger: this.#log,
      scheduler: this.#clock,
    });
    this.#triggers.push(this.#interval);
    if (triggers.watch) {
      this.#triggers.push(
        new WatchTrigger({
          ...triggers.watch,
          onChange: () => this.request("watch"),
          logger: this.#options.logger.child({ component: "watch" }),
          scheduler: this.#clock,
        }),
      );
    }
    if (triggers.gitPoll)
      this.#triggers.push(this.#gitPoller(triggers.gitPoll.git, triggers.gitPoll.seconds));
    if (triggers.rotation) {
      this.#cron = new CronTrigger({
        ...triggers.rotation,
        onTick: () => this.request("rotation"),
        logger: this.#options.logger.child({ component: "rotation-schedule" }),
        scheduler: this.#clock,
      });
      this.#triggers.push(this.#cron);
    }
    for (const trigger of this.#triggers) await trigger.start();
    this.#started = true;
    this.request("startup");
  }

  /**
   * Shutdown: no new triggers, no new changes; the run in flight finishes the changes it started.
   * Resolves when that run has ended (the caller bounds the wait with its deadline).
   */
  async stop(): Promise<void> {
    this.#stop.abort(new GitOpsError("E_SHUTDOWN", "the daemon is shutting down"));
    this.#heldTimer?.();
    this.#heldTimer = null;
    await Promise.all(this.#triggers.map((t) => t.stop()));
    await this.#queue.close();
  }

  /**
   * One run outside the queue (`run --once`): the same step the triggers start. With `rotate`, due
   * rotations run after the reconcile, as when the schedule fires.
   */
  async runOnce(rotate: boolean): Promise<RunRecord> {
    const reasons = new Set<TriggerReason>(rotate ? ["startup", "rotation"] : ["startup"]);
    await this.#step(reasons);
    return this.#last as RunRecord;
  }

  /**
   * Ready: the process serves and takes triggers, i.e. from start (the config was loaded before the
   * server listens) until shutdown. A failed or invalid run does not make it unready: a Service that
   * dropped the pod would refuse the webhook for the very commit that fixes the run. How the last run
   * went is {@link runHealth}.
   */
  readiness(): Readiness {
    if (this.#stop.signal.aborted) return { ready: false, reason: "shutting down" };
    return { ready: true, reason: null };
  }

  /**
   * Healthy: the last run finished cleanly (and so the API answered it). A stall shows here (and in
   * the `stalled` metric) rather than in {@link readiness}: a stalled daemon still takes the webhook
   * that brings its fix.
   */
  runHealth(): RunHealth {
    return runHealthOf(this.#last, this.#queue.state);
  }

  /** Between runs: idle, backing off, waiting for a known time, or stalled until new input. */
  loopState(): LoopState {
    return this.#queue.state;
  }

  /** What the daemon holds to do (see {@link QueueStatus}). */
  queueStatus(): QueueStatus {
    return {
      running: this.#queue.running || this.#current !== null,
      next_run: nextRunStatus(this.#queue.queued),
      pending_triggers: this.#triggers.flatMap((t) => {
        const pending = t.pending?.() ?? null;
        return pending
          ? [
              {
                trigger: pending.trigger,
                kind: pending.kind,
                paths: pending.paths,
                due_at: isoOrNull(pending.dueAt),
              },
            ]
          : [];
      }),
      runs_started: this.#nextId - 1,
      runs_finished: this.#runsFinished,
    };
  }

  /** Everything `/status` shows. Never a secret: records hold names, ids, codes and messages. */
  status(): Record<string, unknown> {
    const statuses = this.#rotation?.statuses ?? [];
    const last = this.#last;
    return {
      mode: this.mode,
      started_at: this.#startedAt.toISOString(),
      source: this.#options.source.describe(),
      ready: this.readiness(),
      run_health: this.runHealth(),
      running: this.#current,
      last_run: last,
      last_success: this.#lastSuccess,
      applied_revision: this.#appliedRevision,
      seen_revision: this.#seenRevision,
      loop: loopStatus(this.#queue.state),
      queue: this.queueStatus(),
      consecutive_failures: this.#queue.consecutiveFailures,
      retry_at: isoOrNull(this.#queue.backoffUntil),
      next_interval_run_at: isoOrNull(this.#interval?.nextAt ?? null),
      delete_delay_seconds: this.#options.source.kind === "directory" ? this.#deleteDelayMs() / 1000 : 0,
      pending: {
        deletions: last?.pending_deletions ?? [],
        held_deletions: this.#held.map(digestHeld),
        rotations: statuses.filter((s) => s.phase !== "idle" && s.phase !== "off"),
      },
      rotation: {
        schedule: this.#cron ? this.#options.config.rotation.schedule : null,
        timezone: this.#options.config.rotation.timezone,
        next_run_at: this.#cron?.nextRun()?.toISOString() ?? null,
        checked_at: isoOrNull(this.#rotation?.checkedAt ?? null),
        clients: statuses,
      },
      ownership: this.#ownership,
      errors: errorsOf(last),
      history: this.#history,
    };
  }

  #gitPoller(git: GitSource, seconds: number): IntervalTrigger {
    return new IntervalTrigger({
      name: "git-poll",
      seconds,
      logger: this.#log,
      scheduler: this.#clock,
      onTick: async () => {
        const remote = await git.remoteRevision(this.#stop.signal);
        const seen = this.#seenRevision;
        const moved = remote !== seen;
        if (moved) {
          this.#log.info({ revision: remote, seen }, "branch moved");
          this.request("git-poll");
        }
        // Every poll says what it saw (at debug level), so "no new commit, no run" shows as polls.
        this.#log.debug({ revision: remote, seen, moved }, "polled the git branch");
      },
    });
  }

  async #step(reasons: ReadonlySet<TriggerReason>): Promise<StepOutcome> {
    const record = newRunRecord(this.#nextId++, reasons, this.mode, new Date(this.#clock.now()));
    this.#current = record;
    const t0 = performance.now();
    this.#log.info({ run: record.id, reasons: record.reasons }, "run started");
    try {
      await this.#execute(record, reasons);
    } catch (error) {
      this.#fail(record, this.#stop.signal.aborted ? "aborted" : "error", error);
    }
    record.finished = new Date(this.#clock.now()).toISOString();
    record.duration_seconds = (performance.now() - t0) / 1000;
    delete record.progress;
    this.#current = null;
    return this.#finish(record);
  }

  async #execute(record: RunRecord, reasons: ReadonlySet<TriggerReason>): Promise<void> {
    const signal = this.#stop.signal;
    const prepared = await this.#options.source.prepare(signal);
    record.revision = prepared.revision;
    this.#seenRevision = prepared.revision;
    if (prepared.configError) return this.#fail(record, "invalid", prepared.configError);
    try {
      let desired: DesiredState;
      try {
        desired = await this.#loadDesired(prepared.config, signal);
      } catch (error) {
        const result = signal.aborted ? "aborted" : error instanceof ConfigError ? "invalid" : "error";
        return this.#fail(record, result, error);
      }
      if (signal.aborted) return this.#fail(record, "aborted", signal.reason);
      await this.#reconcile(record, desired, prepared.policy ?? this.#options.policy, signal);
      if (reasons.has("rotation") && !signal.aborted) await this.#rotate(record, desired, signal);
      await this.#refreshRotationStatus(record, desired, signal);
    } finally {
      await this.#publishOwnership(record, prepared.config, signal);
    }
  }

  /**
   * Brings the published ownership record up to date (`ownership.git`), after every run, whatever
   * its result: a run that failed half-way may have created clients too, and a record that could not
   * be pushed last time is pushed now. Skipped in dry-run (nothing is written) and during shutdown
   * (the next start publishes). A failure makes an `ok` run `partial`: until it succeeds, `plan` in
   * CI reads the previous record and may not show deletes of clients created since.
   */
  async #publishOwnership(record: RunRecord, config: ReconcilerConfig, signal: AbortSignal): Promise<void> {
    const ref = config.ownership?.git.ref;
    const publish = this.#options.source.publishOwnership;
    if (ref === undefined || !publish || this.mode === "dry-run" || signal.aborted) return;
    const previous = this.#ownership?.ref === ref ? this.#ownership : null;
    try {
      const inventory = await this.#deps.inventoryStore.load();
      const result = await publish(inventory, ref, record.revision, signal);
      const published_at = result.changed ? this.#deps.now().toISOString() : (previous?.published_at ?? null);
      this.#ownership = { ref, commit: result.commit, published_at, error: null };
      if (result.changed)
        this.#log.info({ run: record.id, ref, commit: result.commit }, "ownership record published");
    } catch (error) {
      const failure = new GitOpsError(
        "E_OWNERSHIP_PUBLISH",
        `cannot publish the ownership record to ${ref}: ${(error as Error).message}; plans in CI read ` +
          "the previous record until a run publishes it",
        { disposition: "transient", cause: error },
      );
      this.#ownership = {
        ref,
        commit: previous?.commit ?? null,
        published_at: previous?.published_at ?? null,
        error: errorOf(failure),
      };
      this.#log.error({ run: record.id, error: errorOf(failure) }, "ownership record not published");
      if (record.result === "ok") {
        record.result = "partial";
        record.error = errorOf(failure);
      }
    }
  }

  /** A git checkout is whole; a directory is read as a stable snapshot (engine/desired-snapshot.ts). */
  async #loadDesired(config: ReconcilerConfig, signal: AbortSignal): Promise<DesiredState> {
    if (this.#options.source.kind !== "directory") return loadDesiredState(config);
    const snapshot = await loadStableDesired({
      config,
      quietMs: this.#options.config.daemon.quiet_period * 1000,
      maxAttempts: DEFAULT_SNAPSHOT_ATTEMPTS,
      sleep: this.#options.sleep ?? ((ms, s) => sleepOn(this.#clock, ms, s)),
      signal,
      knownStable: this.#stableDigest,
    });
    this.#stableDigest = snapshot.digest;
    if (snapshot.attempts > 1)
      this.#log.info({ attempts: snapshot.attempts }, "desired files settled after changing while read");
    return snapshot.desired;
  }

  #deleteDelayMs(): number {
    return this.#options.config.daemon.delete_delay * 1000;
  }

  /**
   * Directory source: keeps back the deletes whose client has not been absent for `delete_delay`
   * (core/deferred-deletes.ts), remembers when each was first seen, and asks for a run when the
   * first of them becomes eligible. The run that then deletes plans afresh (live list, desired
   * snapshot): a client back in the desired state by then is not in its plan and is not deleted.
   * The safety valves keep judging the whole plan, held deletes included.
   */
  #holdDeletes(plan: Plan, record: RunRecord): Plan {
    const deletes = plan.changes.filter((c): c is DeleteChange => c.kind === "delete");
    const decision = deferDeletes({
      deletes,
      absentSince: this.#absentSince,
      nowMs: this.#deps.now().getTime(),
      delayMs: this.#deleteDelayMs(),
    });
    this.#absentSince = decision.absentSince;
    this.#held = decision.held;
    record.held_deletions = decision.held.map(digestHeld);
    this.#wakeForHeld(decision.nextEligibleAtMs);
    if (decision.held.length === 0) return plan;
    this.#log.info(
      {
        run: record.id,
        held: record.held_deletions.map((h) => `${h.account_id}/${h.client_name}`),
        eligible_at: record.held_deletions[0]?.eligible_at,
        delete_delay_seconds: this.#deleteDelayMs() / 1000,
      },
      "deletes held until the clients have been absent from the desired directory for daemon.delete_delay",
    );
    const heldKeys = new Set(decision.held.map((h) => deferredDeleteKey(h.change)));
    const changes = plan.changes.filter((c) => c.kind !== "delete" || !heldKeys.has(deferredDeleteKey(c)));
    return { ...plan, changes, summary: { ...plan.summary, delete: plan.summary.delete - heldKeys.size } };
  }

  /** Requests a run once the first held delete may go ahead (at most one timer). */
  #wakeForHeld(atMs: number | null): void {
    this.#heldTimer?.();
    this.#heldTimer = null;
    if (atMs === null || this.#stop.signal.aborted || !this.#started) return;
    // A little past the instant, so the run's clock reads at or after it.
    const wait = Math.max(0, atMs - this.#deps.now().getTime()) + 50;
    this.#heldTimer = this.#clock.schedule(wait, () => {
      this.#heldTimer = null;
      this.request("held-delete");
    });
  }

  async #reconcile(
    record: RunRecord,
    desired: DesiredState,
    policy: Policy,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      const result = await reconcileOnce(this.#deps, {
        desired,
        policy,
        rotation: this.#options.config.rotation,
        signal,
        ...(this.#options.source.kind === "directory"
          ? { filterPlan: (plan: Plan) => this.#holdDeletes(plan, record) }
          : {}),
        ...(this.#options.concurrency ? { concurrency: this.#options.concurrency } : {}),
        onProgress: (done, total) => {
          record.progress = { done, total };
        },
      });
      record.plan = digestPlan(result.plan);
      record.apply = result.apply ? digestApply(result.apply) : null;
      const unapplied = unappliedChanges(result.plan, result.apply, this.mode === "dry-run");
      // A held delete is drift too: the client is live but no longer desired.
      record.drifted = new Set([
        ...unapplied.map((c) => `${c.account_id}/${c.client_name}`),
        ...record.held_deletions.map((h) => `${h.account_id}/${h.client_name}`),
      ]).size;
      record.pending_deletions = unapplied.filter((c) => c.kind === "delete").map(digestChange);
      record.result = classifyRun(result.plan, result.apply, signal.aborted, this.mode);
      const resumeTrouble = secretTrouble(result.resumed, "resumed secret operation");
      if (resumeTrouble && record.result === "ok") {
        record.result = "partial";
        record.error = resumeTrouble;
      }
      if (record.result === "unsafe") {
        const unsafe = new UnsafePlanError(result.plan.safety.violations.map((v) => v.message).join("; "));
        record.error = errorOf(unsafe);
      }
      if (record.result === "aborted") record.error = errorOf(signal.reason);
    } catch (error) {
      if (error instanceof UnsafePlanError) return this.#fail(record, "unsafe", error);
      this.#fail(record, signal.aborted ? "aborted" : "error", error);
    }
  }

  async #rotate(record: RunRecord, desired: DesiredState, signal: AbortSignal): Promise<void> {
    const runner = this.#options.rotation;
    if (!runner || this.mode === "dry-run") return;
    try {
      const report = await runner.runDue(desired, signal);
      record.rotation = {
        failed: report.failed,
        attention: report.attention,
        done: report.results.filter((r) => r.status === "ok" || r.status === "waiting").length,
      };
      this.#options.observer?.rotationFinished(report);
      // The report's statuses are those the rotation acted on; after any action, read them again.
      const statuses = report.results.length > 0 ? await runner.status(desired, signal) : report.statuses;
      this.#setRotationStatuses(statuses, record.revision);
      const trouble = secretTrouble(report.results, "rotation");
      if (trouble && record.result === "ok") {
        record.result = "partial";
        record.error = trouble;
      }
    } catch (error) {
      this.#log.error({ error: errorOf(error) }, "rotation failed");
      record.rotation = { failed: 1, attention: 0, done: 0 };
      if (record.result === "ok") {
        record.result = "error";
        record.error = errorOf(error);
      }
    }
  }

  /**
   * Secret ages and due rotations, for status and metrics. Reading them costs a list per account and a
   * read per sink record, so they are refreshed when something changed or when they are old.
   */
  async #refreshRotationStatus(record: RunRecord, desired: DesiredState, signal: AbortSignal): Promise<void> {
    const runner = this.#options.rotation;
    // After runDue the statuses are fresh already; after an API error they cannot be read.
    if (!runner || signal.aborted || record.result === "error" || record.rotation !== null) return;
    const ttl = this.#options.rotationStatusTtlMs ?? ROTATION_STATUS_TTL_MS;
    const known = this.#rotation;
    const changed = (record.apply?.applied ?? 0) > 0;
    if (known && !changed && known.revision === record.revision && this.#clock.now() - known.checkedAt < ttl)
      return;
    try {
      this.#setRotationStatuses(await runner.status(desired, signal), record.revision);
    } catch (error) {
      this.#log.warn({ error: errorOf(error) }, "rotation status could not be read");
    }
  }

  #setRotationStatuses(statuses: ClientRotationStatus[], revision: string | null): void {
    this.#rotation = { statuses, checkedAt: this.#clock.now(), revision };
    this.#options.observer?.rotationStatuses(statuses, revision);
    const due = statuses.filter(
      (s) => s.phase === "due" || s.phase === "no-secret" || s.phase === "delete-due",
    );
    if (due.length > 0) {
      this.#log.info(
        { due: due.map((s) => `${s.account_id}/${s.client_name}:${s.phase}`), mode: this.mode },
        "rotations due",
      );
    }
  }

  #fail(record: RunRecord, result: RunResult, error: unknown): void {
    record.result = result;
    record.error = errorOf(error);
  }

  /** Records the run, decides what the loop does next (daemon/run-record.ts `outcomeOf`), and logs it. */
  #finish(record: RunRecord): StepOutcome {
    const result = record.result ?? "error";
    record.result = result;
    const outcome = outcomeOf(record, this.#clock.now());
    this.#last = record;
    this.#runsFinished += 1;
    this.#history = pushHistory(this.#history, historyEntry(record, outcome));
    if (result === "ok" || result === "partial") {
      this.#lastSuccess = { finished: record.finished as string, revision: record.revision };
      this.#appliedRevision = record.revision;
    }
    // Metrics first: whoever reads the log line and then scrapes sees this run counted.
    this.#options.observer?.runFinished(record);
    const fields = {
      run: record.id,
      result,
      revision: record.revision,
      reasons: record.reasons,
      duration_ms: Math.round((record.duration_seconds ?? 0) * 1000),
      ...(record.plan ? { summary: compactSummary(record.plan.summary) } : {}),
      ...(record.apply ? { applied: record.apply.applied, failed: record.apply.failed } : {}),
      ...(record.drifted ? { drifted: record.drifted } : {}),
      next: outcome.kind,
    };
    if (result === "ok") this.#log.info(fields, "run finished");
    else if (result === "aborted")
      this.#log.warn({ ...fields, error: record.error }, "run stopped by shutdown");
    else {
      const level = result === "partial" ? "warn" : "error";
      this.#log[level]({ ...fields, error: record.error }, `run finished: ${result}`);
    }
    this.#interval?.reset();
    return outcome;
  }
}

/** `/status` `loop`: the queue's state with its times as ISO strings. */
function loopStatus(loop: LoopState): Record<string, string> {
  switch (loop.state) {
    case "idle":
      return { state: "idle" };
    case "backoff":
      return { state: "backoff", until: new Date(loop.until).toISOString() };
    case "waiting":
      return { state: "waiting", until: new Date(loop.until).toISOString(), reason: loop.reason };
    case "stalled":
      return { state: "stalled", since: new Date(loop.since).toISOString(), reason: loop.reason };
  }
}

/** `/status` `queue.next_run`: the held run with its start time as an ISO string. */
function nextRunStatus(queued: QueuedRun | null): QueueStatus["next_run"] {
  if (!queued) return null;
  return { reasons: queued.reasons, held_by: queued.heldBy, starts_at: isoOrNull(queued.startsAt) };
}

/** Waits `ms` on the loop's scheduler; rejects with the signal's reason when it aborts. */
function sleepOn(clock: Scheduler, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      cancel();
      reject(signal.reason as Error);
    };
    const cancel = clock.schedule(ms, () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

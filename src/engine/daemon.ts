import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleepTimer } from "node:timers/promises";
import type { OAuthClientsWriter } from "../cloudflare/client.js";
import { loadDesiredState, policyFromConfig } from "../config/index.js";
import type { ReconcilerConfig } from "../config/types.js";
import { deferDeletes, deferredDeleteKey, type HeldDelete } from "../core/deferred-deletes.js";
import type { Policy, DesiredState, Inventory } from "../core/model.js";
import type {
  Change,
  ChangeKind,
  DeleteChange,
  Plan,
  PlanSummary,
  SafetyViolation,
} from "../core/plan-types.js";
import type { ClientRotationStatus } from "../core/rotation.js";
import { ConfigError, type ConfigIssue, GitOpsError, UnsafePlanError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ApplyReport, ChangeResult } from "./apply.js";
import { DEFAULT_SNAPSHOT_ATTEMPTS, loadStableDesired } from "./desired-snapshot.js";
import type { GitSource } from "./git-source.js";
import { publishOwnership, type PublishResult } from "./ownership-ref.js";
import { checkRepositoryConfigPath, loadRepositoryConfig } from "./repo-config.js";
import { type ReconcileDeps, reconcileOnce } from "./reconcile.js";
import {
  readRotationStatus,
  type RotateDeps,
  type RotateReport,
  rotateOnce,
  type SecretOpResult,
} from "./rotate.js";
import { CronTrigger } from "./triggers/cron.js";
import { IntervalTrigger } from "./triggers/interval.js";
import { type BackoffOptions, RunQueue, type StepOutcome } from "./triggers/run-queue.js";
import type { Trigger, TriggerReason } from "./triggers/types.js";
import { WatchTrigger } from "./triggers/watch.js";

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
 */

/** How a run ended. */
export type RunResult = "ok" | "partial" | "invalid" | "unsafe" | "error" | "aborted";

/** An error as status and logs show it: never a secret, never a stack. */
export interface RunError {
  code: string;
  message: string;
  disposition: string;
  /** For `invalid`: every located problem (file:line:col). */
  issues?: ConfigIssue[];
}

/** One planned change, named (no bodies: status stays small and field values stay in git). */
export interface ChangeDigest {
  kind: ChangeKind;
  account_id: string;
  client_name: string;
  client_id?: string;
  fields?: string[];
}

export interface PlanDigest {
  checksum: string;
  summary: PlanSummary;
  safety: { ok: boolean; violations: Pick<SafetyViolation, "rule" | "message" | "overridden">[] };
  /** At most {@link MAX_LISTED} changes; `changes_truncated` says how many more. */
  changes: ChangeDigest[];
  changes_truncated: number;
}

export interface ApplyDigest {
  applied: number;
  failed: number;
  adopted: number;
  forgotten: number;
  by_kind: Record<ChangeKind, { applied: number; failed: number }>;
  failures: (ChangeDigest & { code: string; message: string })[];
}

/** One run, as status and metrics report it. */
export interface RunRecord {
  id: number;
  reasons: TriggerReason[];
  mode: "apply" | "dry-run";
  started: string;
  finished: string | null;
  duration_seconds: number | null;
  result: RunResult | null;
  /** The git commit the run read, null for a directory source. */
  revision: string | null;
  plan: PlanDigest | null;
  apply: ApplyDigest | null;
  /** Clients whose live state differs from the desired state after this run. */
  drifted: number;
  /** Changes planned but not made (dry-run, unsafe, failed): deletions are listed in status. */
  pending_deletions: ChangeDigest[];
  /** Deletes this run held back (directory source) until the client has been absent long enough. */
  held_deletions: HeldDeletionDigest[];
  rotation: { failed: number; attention: number; done: number } | null;
  error: RunError | null;
  /** Changes settled so far, while running. */
  progress?: { done: number; total: number };
}

/** A held delete, as status shows it. */
export interface HeldDeletionDigest extends ChangeDigest {
  /** When a run first planned the delete. */
  absent_since: string;
  /** From when a run may carry it out (a run is requested then). */
  eligible_at: string;
}

/** Why `/readyz` says what it says. */
export interface Readiness {
  ready: boolean;
  reason: string | null;
}

/** Whether the last run went cleanly: `/status` and the `last_run_success` metric carry it. */
export interface RunHealth {
  healthy: boolean;
  reason: string | null;
}

/**
 * The rotation engine as the daemon uses it: a seam so the daemon can run without one (tests, a
 * config that never rotates) and so the wiring decides whether writes are possible (dry-run).
 */
export interface RotationRunner {
  /** Rotates what is due and deletes old secrets whose grace has passed (engine/rotate.ts `auto`). */
  runDue(desired: DesiredState, signal: AbortSignal): Promise<RotateReport>;
  /** Per-client secret age, phase and next due time. Reads only. */
  status(desired: DesiredState, signal: AbortSignal): Promise<ClientRotationStatus[]>;
}

/**
 * The rotation runner over the secret engine (engine/rotate.ts): `auto` mode, the config's defaults and
 * `max_concurrent`. The engine never passes the stop signal into a rotation's calls, so shutdown never
 * cuts a rotation between its mint and its publish.
 */
export function engineRotationRunner(
  deps: Omit<RotateDeps, "signal" | "writer"> & { writer: OAuthClientsWriter | null },
  config: ReconcilerConfig,
): RotationRunner {
  const defaults = { every: config.rotation.every, grace: config.rotation.grace };
  const { writer, ...readDeps } = deps;
  return {
    runDue: async (desired, signal) => {
      if (!writer)
        throw new GitOpsError("E_DRY_RUN", "rotation needs the mutating client (not in --dry-run)");
      return rotateOnce(
        { ...readDeps, writer, signal },
        { desired, defaults, mode: "auto", concurrency: config.rotation.max_concurrent },
      );
    },
    status: (desired, signal) => readRotationStatus({ ...readDeps, signal }, { desired, defaults }),
  };
}

/** Notified of everything metrics count. Implemented by src/server/metrics.ts. */
export interface DaemonObserver {
  triggered(reason: TriggerReason): void;
  runFinished(record: RunRecord): void;
  rotationStatuses(statuses: readonly ClientRotationStatus[], revision: string | null): void;
  rotationFinished(report: RotateReport): void;
}

/** One run's input, as its source prepared it. */
export interface PreparedRun {
  /** The config to load this run's desired state with. */
  config: ReconcilerConfig;
  /** The commit it belongs to (git), null for a directory. */
  revision: string | null;
  /** The policy of this run when the source decides it (`source.git.config`); the daemon's otherwise. */
  policy?: Policy;
  /** The commit's own config file is missing or invalid: the run is `invalid`, nothing is planned. */
  configError?: ConfigError;
}

/** Where the desired state of one run comes from. */
export interface DesiredSource {
  readonly kind: "directory" | "git";
  prepare(signal: AbortSignal): Promise<PreparedRun>;
  /** For status: no credentials. */
  describe(): Record<string, string>;
  /**
   * Publishes the inventory to `ref` of the source repository (git only; engine/ownership-ref.ts).
   * Resolves with what the ref holds afterwards.
   */
  publishOwnership?(
    inventory: Inventory,
    ref: string,
    revision: string | null,
    signal: AbortSignal,
  ): Promise<PublishResult>;
}

/** The desired state is the config's `desired:` path, read as it is on disk at each run. */
export function directorySource(config: ReconcilerConfig): DesiredSource {
  return {
    kind: "directory",
    prepare: async () => ({ config, revision: null }),
    describe: () => ({ type: "directory", path: config.desired }),
  };
}

/**
 * The desired state is `source.git.path` in the fetched branch, or, with `source.git.config`, what
 * that file of the commit says (engine/repo-config.ts). File names in messages are relative to the
 * repository root (`clients/web.yaml:12:5`), which is what a reviewer sees in the commit.
 *
 * `now` dates the ownership commits; `scratchDir` holds the object files they are built from.
 */
export function gitDesiredSource(
  config: ReconcilerConfig,
  git: GitSource,
  publishing: { now: () => Date; scratchDir: string } = {
    now: () => new Date(),
    scratchDir: join(config.state_dir, "git", "ownership"),
  },
): DesiredSource {
  const configPath = config.source?.git.config;
  // Refused at start, not at the first run: any root gives the same answer for a relative path.
  if (configPath !== undefined) checkRepositoryConfigPath(config.state_dir, configPath);
  let known: { commit: string; body: string } | null = null;
  return {
    kind: "git",
    prepare: async (signal) => {
      const checkout = await git.sync(signal);
      const revision = checkout.revision;
      if (configPath === undefined) {
        return {
          revision,
          config: { ...config, desired: checkout.desiredPath, display_root: checkout.root },
        };
      }
      try {
        const effective = await loadRepositoryConfig(config, checkout.root, configPath);
        return { revision, config: effective, policy: policyFromConfig(effective) };
      } catch (error) {
        if (error instanceof ConfigError) return { revision, config, configError: error };
        throw error;
      }
    },
    describe: () => ({
      type: "git",
      url: git.displayUrl,
      branch: git.branch,
      ...(configPath !== undefined ? { config: configPath } : {}),
    }),
    publishOwnership: async (inventory, ref, revision, signal) => {
      const result = await publishOwnership((args, s) => git.runInCheckout(args, s), {
        ref,
        inventory,
        revision,
        now: publishing.now(),
        scratchDir: publishing.scratchDir,
        known,
        signal,
      });
      known = { commit: result.commit, body: result.body };
      return result;
    },
  };
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
  backoff?: BackoffOptions;
  logger: Logger;
  /** Rotation status (an extra list per account plus sink reads) is refreshed at most this often. */
  rotationStatusTtlMs?: number;
  /** Waits `ms` (the directory source's quiet period); rejects when `signal` aborts. Real timers by default. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Changes listed by name in a run record. */
export const MAX_LISTED = 100;

const ROTATION_STATUS_TTL_MS = 5 * 60_000;

export class Daemon {
  readonly mode: "apply" | "dry-run";
  readonly #options: DaemonOptions;
  readonly #deps: ReconcileDeps;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #queue: RunQueue;
  readonly #startedAt = new Date();
  #triggers: Trigger[] = [];
  #interval: IntervalTrigger | null = null;
  #cron: CronTrigger | null = null;
  #nextId = 1;
  #current: RunRecord | null = null;
  #last: RunRecord | null = null;
  #lastSuccess: { finished: string; revision: string | null } | null = null;
  #appliedRevision: string | null = null;
  #seenRevision: string | null = null;
  #rotation: { statuses: ClientRotationStatus[]; checkedAt: number; revision: string | null } | null = null;
  /** Directory source: when each planned delete was first seen (epoch ms, the reconcile clock). */
  #absentSince = new Map<string, number>();
  #held: HeldDelete[] = [];
  #heldTimer: NodeJS.Timeout | null = null;
  /** Digest of the last directory snapshot that held still (engine/desired-snapshot.ts). */
  #stableDigest: string | null = null;
  #ownership: OwnershipPublication | null = null;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.mode = options.reconcile.writer ? "apply" : "dry-run";
    this.#deps = options.reconcile;
    this.#log = options.logger.child({ component: "daemon" });
    this.#queue = new RunQueue({
      step: (reasons) => this.#step(reasons),
      logger: this.#log,
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
    });
    this.#triggers.push(this.#interval);
    if (triggers.watch) {
      this.#triggers.push(
        new WatchTrigger({
          ...triggers.watch,
          onChange: () => this.request("watch"),
          logger: this.#options.logger.child({ component: "watch" }),
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
      });
      this.#triggers.push(this.#cron);
    }
    for (const trigger of this.#triggers) await trigger.start();
    this.request("startup");
  }

  /**
   * Shutdown: no new triggers, no new changes; the run in flight finishes the changes it started.
   * Resolves when that run has ended (the caller bounds the wait with its deadline).
   */
  async stop(): Promise<void> {
    this.#stop.abort(new GitOpsError("E_SHUTDOWN", "the daemon is shutting down"));
    if (this.#heldTimer) clearTimeout(this.#heldTimer);
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

  /** Healthy: the last run finished cleanly (and so the API answered it). */
  runHealth(): RunHealth {
    const last = this.#last;
    if (!last) return { healthy: false, reason: "no run has finished yet" };
    if (last.result === "ok") return { healthy: true, reason: null };
    if (last.result === "partial" && last.apply?.failed) {
      return { healthy: false, reason: `${last.apply.failed} change(s) failed in the last run` };
    }
    return { healthy: false, reason: `last run ${last.result}: ${last.error?.message ?? "no detail"}` };
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
    };
  }

  #gitPoller(git: GitSource, seconds: number): IntervalTrigger {
    return new IntervalTrigger({
      name: "git-poll",
      seconds,
      logger: this.#log,
      onTick: async () => {
        const remote = await git.remoteRevision(this.#stop.signal);
        if (remote !== this.#seenRevision) {
          this.#log.info({ revision: remote, seen: this.#seenRevision }, "branch moved");
          this.request("git-poll");
        }
      },
    });
  }

  async #step(reasons: ReadonlySet<TriggerReason>): Promise<StepOutcome> {
    const record: RunRecord = {
      id: this.#nextId++,
      reasons: [...reasons],
      mode: this.mode,
      started: new Date().toISOString(),
      finished: null,
      duration_seconds: null,
      result: null,
      revision: null,
      plan: null,
      apply: null,
      drifted: 0,
      pending_deletions: [],
      held_deletions: [],
      rotation: null,
      error: null,
    };
    this.#current = record;
    const t0 = performance.now();
    this.#log.info({ run: record.id, reasons: record.reasons }, "run started");
    try {
      await this.#execute(record, reasons);
    } catch (error) {
      this.#fail(record, this.#stop.signal.aborted ? "aborted" : "error", error);
    }
    record.finished = new Date().toISOString();
    record.duration_seconds = (performance.now() - t0) / 1000;
    delete record.progress;
    this.#current = null;
    this.#finish(record);
    return record.result === "aborted"
      ? "aborted"
      : record.result === "ok" || record.result === "partial"
        ? "ok"
        : "failed";
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
      sleep: this.#options.sleep ?? sleepFor,
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
    if (this.#heldTimer) clearTimeout(this.#heldTimer);
    this.#heldTimer = null;
    if (atMs === null || this.#stop.signal.aborted) return;
    // A little past the instant, so the run's clock reads at or after it.
    const wait = Math.max(0, atMs - this.#deps.now().getTime()) + 50;
    this.#heldTimer = setTimeout(() => {
      this.#heldTimer = null;
      this.request("held-delete");
    }, wait);
    this.#heldTimer.unref();
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
      record.result = classify(result.plan, result.apply, signal, this.mode);
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
    if (known && !changed && known.revision === record.revision && Date.now() - known.checkedAt < ttl) return;
    try {
      this.#setRotationStatuses(await runner.status(desired, signal), record.revision);
    } catch (error) {
      this.#log.warn({ error: errorOf(error) }, "rotation status could not be read");
    }
  }

  #setRotationStatuses(statuses: ClientRotationStatus[], revision: string | null): void {
    this.#rotation = { statuses, checkedAt: Date.now(), revision };
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

  #finish(record: RunRecord): void {
    const result = record.result ?? "error";
    record.result = result;
    this.#last = record;
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
    };
    if (result === "ok") this.#log.info(fields, "run finished");
    else if (result === "aborted")
      this.#log.warn({ ...fields, error: record.error }, "run stopped by shutdown");
    else {
      const level = result === "partial" ? "warn" : "error";
      this.#log[level]({ ...fields, error: record.error }, `run finished: ${result}`);
    }
    this.#interval?.reset();
  }
}

function digestHeld(held: HeldDelete): HeldDeletionDigest {
  return {
    ...digestChange(held.change),
    absent_since: new Date(held.absentSinceMs).toISOString(),
    eligible_at: new Date(held.eligibleAtMs).toISOString(),
  };
}

/** Real timers: the quiet period of a directory source. */
function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return sleepTimer(ms, undefined, { signal });
}

function classify(
  plan: Plan,
  apply: ApplyReport | null,
  signal: AbortSignal,
  mode: "apply" | "dry-run",
): RunResult {
  if (mode === "dry-run") return plan.safety.ok ? "ok" : "unsafe";
  if (!apply || apply.failed === 0) return "ok";
  const aborted = apply.results.some((r) => r.status === "failed" && r.error?.code === "E_ABORTED");
  return aborted && signal.aborted ? "aborted" : "partial";
}

/** Planned changes that did not happen: all of them in dry-run, the failed ones otherwise. */
function unappliedChanges(plan: Plan, apply: ApplyReport | null, dryRun: boolean): Change[] {
  if (dryRun || !apply) return dryRun || !plan.safety.ok ? plan.changes : [];
  const failed = new Set(
    apply.results
      .filter((r) => r.status === "failed")
      .map((r) => changeKey(r.kind, r.account_id, r.client_name)),
  );
  return plan.changes.filter((c) => failed.has(changeKey(c.kind, c.account_id, c.client_name)));
}

function changeKey(kind: string, account: string, name: string): string {
  return `${kind}\u0000${account}\u0000${name}`;
}

function digestChange(change: Change): ChangeDigest {
  return {
    kind: change.kind,
    account_id: change.account_id,
    client_name: change.client_name,
    ...("client_id" in change ? { client_id: change.client_id } : {}),
    ...(change.kind === "update" ? { fields: change.fields.map((f) => f.field) } : {}),
  };
}

function digestPlan(plan: Plan): PlanDigest {
  return {
    checksum: plan.checksum,
    summary: plan.summary,
    safety: {
      ok: plan.safety.ok,
      violations: plan.safety.violations.map(({ rule, message, overridden }) => ({
        rule,
        message,
        overridden,
      })),
    },
    changes: plan.changes.slice(0, MAX_LISTED).map(digestChange),
    changes_truncated: Math.max(0, plan.changes.length - MAX_LISTED),
  };
}

function digestApply(report: ApplyReport): ApplyDigest {
  const by_kind: ApplyDigest["by_kind"] = {
    create: { applied: 0, failed: 0 },
    update: { applied: 0, failed: 0 },
    delete: { applied: 0, failed: 0 },
  };
  for (const r of report.results) by_kind[r.kind][r.status] += 1;
  return {
    applied: report.applied,
    failed: report.failed,
    adopted: report.adopted,
    forgotten: report.forgotten,
    by_kind,
    failures: report.results
      .filter(
        (r): r is ChangeResult & { error: { code: string; message: string } } =>
          r.status === "failed" && !!r.error,
      )
      .slice(0, MAX_LISTED)
      .map((r) => ({
        kind: r.kind,
        account_id: r.account_id,
        client_name: r.client_name,
        ...(r.client_id ? { client_id: r.client_id } : {}),
        code: r.error.code,
        message: r.error.message,
      })),
  };
}

/** Failed secret operations and those needing an operator, as one error; null when there are none. */
function secretTrouble(results: readonly SecretOpResult[], what: string): RunError | null {
  const troubled = results.filter((r) => r.status === "failed" || r.status === "attention");
  if (troubled.length === 0) return null;
  return {
    code: troubled[0]?.code ?? "E_SECRET_OP",
    message: troubled.map((r) => `${what} [${r.account_id}/${r.client_name}]: ${r.message}`).join("; "),
    disposition: "transient",
  };
}

function compactSummary(summary: PlanSummary): Partial<PlanSummary> {
  return Object.fromEntries(Object.entries(summary).filter(([, n]) => n !== 0));
}

/** A plain, JSON-able description of any error (GitOpsError keeps its code, issues and disposition). */
export function errorOf(error: unknown): RunError {
  if (error instanceof ConfigError) {
    return {
      code: error.code,
      message: error.message,
      disposition: error.disposition,
      issues: [...error.issues],
    };
  }
  if (error instanceof GitOpsError)
    return { code: error.code, message: error.message, disposition: error.disposition };
  const message = error instanceof Error ? error.message : String(error);
  return { code: "E_UNEXPECTED", message, disposition: "transient" };
}

function errorsOf(last: RunRecord | null): RunError[] {
  if (!last) return [];
  const errors: RunError[] = last.error ? [last.error] : [];
  for (const f of last.apply?.failures ?? []) {
    errors.push({
      code: f.code,
      message: `${f.kind} [${f.account_id}/${f.client_name}]: ${f.message}`,
      disposition: "transient",
    });
  }
  return errors;
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

import { backoffMs, type BackoffPolicy } from "../../backoff.js";
import type { Logger } from "../../log.js";
import { realScheduler, type Cancel, type Scheduler } from "../scheduler.js";
import { CARRIED_REASONS, type TriggerReason, URGENT_REASONS } from "./types.js";

/**
 * How a step ended, as far as scheduling cares: the disposition of its failure decides what the loop
 * does next (as Flux's controllers requeue, stall or retry).
 * - `ok`: done; the next run waits for a trigger.
 * - `aborted`: shutdown stopped it; nothing is scheduled.
 * - `transient`: back off exponentially, then retry.
 * - `terminal`: stall. Retrying cannot help (revoked credentials, a 403 on a write, invalid desired
 *   state): no run starts until new input arrives (an urgent reason: a commit, a file change, a
 *   webhook; or a restart). Timer-driven requests made meanwhile are kept, not run.
 * - `wait`: retry at `untilMs` (a quota's reset time), or after the base backoff when the time is
 *   not known (a state directory another process holds); failures do not grow the delay.
 */
export type StepOutcome =
  | { kind: "ok" }
  | { kind: "aborted" }
  | { kind: "transient" }
  | { kind: "terminal"; reason: string }
  | { kind: "wait"; reason: string; untilMs: number | null };

/** The wait after consecutive failed runs (src/backoff.ts, no jitter): 5 s doubling to 5 min. */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5_000, capMs: 300_000 };

/** What the loop is doing between runs, for `/status` and metrics. */
export type LoopState =
  | { state: "idle" }
  | { state: "backoff"; until: number }
  | { state: "waiting"; until: number; reason: string }
  | { state: "stalled"; since: number; reason: string };

/**
 * Why a requested run has not started yet, for `/status` `queue.next_run` (what the queue holds, so a
 * reader can tell "nothing to do" from "something to do later"):
 * - `running`: a run is in flight; this one starts when it ends (coalesced).
 * - `backoff`: after a transient failure; starts at `startsAt` unless news arrives first.
 * - `waiting`: after a wait outcome (a lock, a rate limit); starts at `startsAt`.
 * - `stalled`: after a terminal failure; starts only when new input arrives (`startsAt` null).
 */
export type HeldBy = "running" | "backoff" | "waiting" | "stalled";

/** The run the queue holds: every reason requested for it so far, and when it can start. */
export interface QueuedRun {
  reasons: TriggerReason[];
  heldBy: HeldBy;
  /** Epoch ms; null while a run is in flight (it starts when that one ends) or while stalled. */
  startsAt: number | null;
}

export interface RunQueueOptions {
  /** One run. Receives every reason requested since the previous run started. Should not throw. */
  step: (reasons: ReadonlySet<TriggerReason>) => Promise<StepOutcome>;
  backoff?: BackoffPolicy;
  logger: Logger;
  /** Clock and timers; real ones by default. */
  scheduler?: Scheduler;
}

/**
 * One run at a time. Requests made while a run is going are kept and coalesced into a single
 * follow-up run (a webhook storm during a slow apply costs one more run, not fifty). After a failure
 * the outcome decides: a `retry` once the backoff has passed (transient), at the known time (wait),
 * or none at all (terminal: stalled). Timer-driven requests (interval, rotation, retry) wait for the
 * backoff and never end a stall, while requests that bring news (a webhook, a file change, a moved
 * branch) start at once: new input may be the fix. A failed run's owed work (a due rotation, a held
 * delete: {@link CARRIED_REASONS}) is carried into the run that follows it, so it is not lost until
 * the next schedule fire.
 */
export class RunQueue {
  readonly #options: RunQueueOptions;
  readonly #clock: Scheduler;
  #pending = new Set<TriggerReason>();
  #running: Promise<void> | null = null;
  #cancelTimer: Cancel | null = null;
  #notBefore = 0;
  #failures = 0;
  #stall: { since: number; reason: string } | null = null;
  #wait: string | null = null;
  #closed = false;

  constructor(options: RunQueueOptions) {
    this.#options = options;
    this.#clock = options.scheduler ?? realScheduler;
  }

  /** Asks for a run. Ignored once the queue is closed. */
  request(reason: TriggerReason): void {
    if (this.#closed) return;
    this.#pending.add(reason);
    this.#schedule();
  }

  get running(): boolean {
    return this.#running !== null;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** When the backoff or wait ends (epoch ms), or null when not backing off. */
  get backoffUntil(): number | null {
    return this.#notBefore > this.#clock.now() ? this.#notBefore : null;
  }

  /** Reasons waiting for the next run. */
  get pending(): TriggerReason[] {
    return [...this.#pending];
  }

  /**
   * The run waiting to start, or null when nothing is requested. Requests are held only for a reason
   * (a run in flight, a backoff, a wait, a stall): an unheld request starts in the same call that
   * made it, so a reader never sees one that is about to start by itself with nothing to say when.
   */
  get queued(): QueuedRun | null {
    if (this.#pending.size === 0 || this.#closed) return null;
    const reasons = [...this.#pending];
    if (this.#running) return { reasons, heldBy: "running", startsAt: null };
    if (this.#stall) return { reasons, heldBy: "stalled", startsAt: null };
    // A retry timer due now whose callback has not run yet still says when it was due.
    return { reasons, heldBy: this.#wait !== null ? "waiting" : "backoff", startsAt: this.#notBefore };
  }

  /** Between runs: idle, backing off, waiting for a known time, or stalled until new input. */
  get state(): LoopState {
    if (this.#stall) return { state: "stalled", ...this.#stall };
    const until = this.backoffUntil;
    if (until === null) return { state: "idle" };
    return this.#wait !== null
      ? { state: "waiting", until, reason: this.#wait }
      : { state: "backoff", until };
  }

  /**
   * Stops taking requests and forgets pending ones; resolves when the run in flight (if any) ends.
   * The caller stops that run from starting new work (the shutdown signal) before waiting here.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending.clear();
    this.#clearTimer();
    await this.#running;
  }

  /** Resolves when no run is in flight (tests, `--once`). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #schedule(): void {
    if (this.#running || this.#closed || this.#pending.size === 0) return;
    const urgent = [...this.#pending].some((r) => URGENT_REASONS.has(r));
    if (this.#stall && !urgent) return;
    const wait = urgent ? 0 : this.#notBefore - this.#clock.now();
    if (wait > 0) {
      this.#cancelTimer ??= this.#clock.schedule(wait, () => {
        this.#cancelTimer = null;
        this.#schedule();
      });
      return;
    }
    this.#clearTimer();
    const reasons = this.#pending;
    this.#pending = new Set();
    this.#running = this.#run(reasons);
  }

  #clearTimer(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = null;
  }

  async #run(reasons: ReadonlySet<TriggerReason>): Promise<void> {
    let outcome: StepOutcome;
    try {
      outcome = await this.#options.step(reasons);
    } catch (error) {
      this.#options.logger.error({ error: (error as Error).message }, "run failed unexpectedly");
      outcome = { kind: "transient" };
    }
    this.#afterRun(outcome, reasons);
    this.#running = null;
    this.#schedule();
  }

  #afterRun(outcome: StepOutcome, reasons: ReadonlySet<TriggerReason>): void {
    const log = this.#options.logger;
    if (outcome.kind === "aborted") return;
    if (outcome.kind === "ok") {
      this.#failures = 0;
      this.#notBefore = 0;
      this.#stall = null;
      this.#wait = null;
      return;
    }
    if (this.#closed) return;
    for (const reason of reasons) if (CARRIED_REASONS.has(reason)) this.#pending.add(reason);
    const now = this.#clock.now();
    this.#failures += 1;
    this.#wait = null;
    if (outcome.kind === "terminal") {
      this.#stall = { since: this.#stall?.since ?? now, reason: outcome.reason };
      this.#notBefore = 0;
      this.#clearTimer();
      log.warn(
        { consecutive_failures: this.#failures, reason: outcome.reason, carried: this.pending },
        "run failed in a way retrying cannot fix; stalled until new input (a commit, a file change, a webhook, a restart)",
      );
      return;
    }
    this.#stall = null;
    const backoff = this.#options.backoff ?? DEFAULT_BACKOFF;
    if (outcome.kind === "wait") {
      this.#wait = outcome.reason;
      this.#notBefore = Math.max(now + 1, outcome.untilMs ?? now + backoff.baseMs);
      log.info(
        { reason: outcome.reason, retry_in_ms: this.#notBefore - now, carried: this.pending },
        "run must wait; retrying at the known time",
      );
    } else {
      const delay = backoffMs(this.#failures, backoff);
      this.#notBefore = now + delay;
      log.info(
        { consecutive_failures: this.#failures, retry_in_ms: delay, carried: this.pending },
        "run failed; retrying after backoff",
      );
    }
    this.#pending.add("retry");
  }
}

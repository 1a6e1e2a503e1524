import type { Logger } from "../../log.js";
import { type TriggerReason, URGENT_REASONS } from "./types.js";

/** How a step ended, as far as scheduling cares. */
export type StepOutcome = "ok" | "failed" | "aborted";

/** Exponential backoff after consecutive failures: `min(capMs, baseMs * 2^(failures-1))`. */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 5_000, capMs: 300_000 };

export interface RunQueueOptions {
  /** One run. Receives every reason requested since the previous run started. Should not throw. */
  step: (reasons: ReadonlySet<TriggerReason>) => Promise<StepOutcome>;
  backoff?: BackoffOptions;
  logger: Logger;
}

/** The delay before the retry after `failures` consecutive failures. */
export function backoffMs(failures: number, options: BackoffOptions): number {
  if (failures <= 0) return 0;
  return Math.min(options.capMs, options.baseMs * 2 ** Math.min(failures - 1, 30));
}

/**
 * One run at a time. Requests made while a run is going are kept and coalesced into a single
 * follow-up run (a webhook storm during a slow apply costs one more run, not fifty). After a failure
 * the queue schedules a `retry` once the backoff has passed; timer-driven requests (interval,
 * rotation, retry) wait for the backoff too, while requests that bring news (a webhook, a file change,
 * a moved branch) start at once: new input may be the fix.
 */
export class RunQueue {
  readonly #options: RunQueueOptions;
  #pending = new Set<TriggerReason>();
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #notBefore = 0;
  #failures = 0;
  #closed = false;

  constructor(options: RunQueueOptions) {
    this.#options = options;
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

  /** When the backoff ends (epoch ms), or null when not backing off. */
  get backoffUntil(): number | null {
    return this.#notBefore > Date.now() ? this.#notBefore : null;
  }

  /** Reasons waiting for the next run. */
  get pending(): TriggerReason[] {
    return [...this.#pending];
  }

  /**
   * Stops taking requests and forgets pending ones; resolves when the run in flight (if any) ends.
   * The caller stops that run from starting new work (the shutdown signal) before waiting here.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending.clear();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** Resolves when no run is in flight and none is waiting to start now (tests, `--once`). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #schedule(): void {
    if (this.#running || this.#closed || this.#pending.size === 0) return;
    const urgent = [...this.#pending].some((r) => URGENT_REASONS.has(r));
    const wait = urgent ? 0 : this.#notBefore - Date.now();
    if (wait > 0) {
      if (!this.#timer) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#schedule();
        }, wait);
      }
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const reasons = this.#pending;
    this.#pending = new Set();
    this.#running = this.#run(reasons);
  }

  async #run(reasons: ReadonlySet<TriggerReason>): Promise<void> {
    let outcome: StepOutcome;
    try {
      outcome = await this.#options.step(reasons);
    } catch (error) {
      this.#options.logger.error({ error: (error as Error).message }, "run failed unexpectedly");
      outcome = "failed";
    }
    this.#afterRun(outcome);
    this.#running = null;
    this.#schedule();
  }

  #afterRun(outcome: StepOutcome): void {
    if (outcome === "ok") {
      this.#failures = 0;
      this.#notBefore = 0;
    } else if (outcome === "failed") {
      this.#failures += 1;
      const delay = backoffMs(this.#failures, this.#options.backoff ?? DEFAULT_BACKOFF);
      this.#notBefore = Date.now() + delay;
      this.#options.logger.info(
        { consecutive_failures: this.#failures, retry_in_ms: delay },
        "run failed; retrying after backoff",
      );
      if (!this.#closed) this.#pending.add("retry");
    }
  }
}

import type { Logger } from "../../log.js";
import { realScheduler, type Cancel, type Scheduler } from "../scheduler.js";
import type { PendingTrigger, Trigger } from "./types.js";

/** ±10 %: enough that replicas and restarts drift apart instead of hitting the API together. */
export const DEFAULT_JITTER = 0.1;

/**
 * `seconds` scaled by a random factor in [1 - jitter, 1 + jitter), in milliseconds. Jitter spreads the
 * load of many daemons sharing one account (and one rate limit, docs/API-BEHAVIOUR.md, "Rate limits").
 */
export function jitteredMs(seconds: number, jitter: number, random: () => number = Math.random): number {
  const factor = 1 + jitter * (2 * random() - 1);
  return Math.max(1, Math.round(seconds * 1000 * factor));
}

export interface IntervalTriggerOptions {
  name: string;
  /** Seconds between ticks, before jitter. */
  seconds: number;
  jitter?: number;
  random?: () => number;
  /** Called on each tick; may be async (its failure is logged, the timer goes on). */
  onTick: () => void | Promise<void>;
  logger: Logger;
  /** Clock and timers; real ones by default. */
  scheduler?: Scheduler;
}

/**
 * A jittered repeating timer. Each tick is scheduled only after the previous one's work settled, so a
 * slow tick (a `git ls-remote` over a bad network) never piles up. `reset()` pushes the next tick a
 * full interval away: the daemon calls it after every run, so the backstop fills silences instead of
 * adding runs right after event-driven ones.
 */
export class IntervalTrigger implements Trigger {
  readonly name: string;
  readonly #options: IntervalTriggerOptions;
  readonly #clock: Scheduler;
  #cancel: Cancel | null = null;
  #nextAt: number | null = null;
  #stopped = true;
  #ticking = false;

  constructor(options: IntervalTriggerOptions) {
    this.name = options.name;
    this.#options = options;
    this.#clock = options.scheduler ?? realScheduler;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#schedule();
  }

  /** When the next tick is due (epoch ms), or null when stopped. */
  get nextAt(): number | null {
    return this.#nextAt;
  }

  /**
   * A tick whose work is still running (a git poll's `ls-remote`): its answer may request a run. A
   * tick that requests at once (the backstop interval) is never seen pending.
   */
  pending(): PendingTrigger | null {
    return this.#ticking ? { trigger: this.name, kind: "check", dueAt: null, paths: 0 } : null;
  }

  /** Restarts the countdown from now. */
  reset(): void {
    if (!this.#stopped) this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clear();
  }

  #schedule(): void {
    this.#clear();
    const { seconds, jitter, random } = this.#options;
    const delay = jitteredMs(seconds, jitter ?? DEFAULT_JITTER, random);
    this.#nextAt = this.#clock.now() + delay;
    this.#cancel = this.#clock.schedule(delay, () => void this.#tick());
  }

  async #tick(): Promise<void> {
    this.#cancel = null;
    this.#ticking = true;
    try {
      await this.#options.onTick();
    } catch (error) {
      this.#options.logger.warn(
        { trigger: this.name, error: (error as Error).message },
        "trigger tick failed",
      );
    } finally {
      this.#ticking = false;
    }
    if (!this.#stopped && this.#cancel === null) this.#schedule();
  }

  #clear(): void {
    this.#cancel?.();
    this.#cancel = null;
    this.#nextAt = null;
  }
}

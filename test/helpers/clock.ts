import { tryParseDuration } from "../../src/config/duration.js";
import type { Clock } from "../../src/cli/io.js";
import type { Scheduler } from "../../src/engine/scheduler.js";

/**
 * Moved clocks for tests. In-process tests pass {@link offsetClock} as the CLI context's `clock`;
 * tests that need a real process "days later" spawn test/helpers/cli-with-clock.ts (through
 * test/helpers/program.ts), the only reader of {@link TEST_CLOCK_OFFSET_ENV}. The production program
 * reads no clock variable at all.
 */

/** The test entry point's clock offset: whole seconds, or a duration (`36h`, `90d`, `-10m`). */
export const TEST_CLOCK_OFFSET_ENV = "CF_OAUTH_GITOPS_TEST_CLOCK_OFFSET";

/** The wall clock moved by `offsetSeconds` (negative: into the past). */
export function offsetClock(offsetSeconds: number): Clock {
  const offsetMs = offsetSeconds * 1000;
  return () => new Date(Date.now() + offsetMs);
}

/**
 * Seconds from `3600`, `36h`, `+90d` or `-10m`. A value that is not one is refused, never ignored:
 * a test that meant to move the clock must not silently run on the real one.
 */
export function parseClockOffset(raw: string): number {
  const text = raw.trim();
  const body = text.replace(/^[-+]/, "");
  const seconds = /^\d+$/.test(body) ? Number(body) : tryParseDuration(body);
  if (seconds === undefined || !Number.isSafeInteger(seconds)) {
    throw new Error(`${TEST_CLOCK_OFFSET_ENV}=${raw} is not a duration (e.g. 36h, -10m, 90d, 3600)`);
  }
  return text.startsWith("-") ? -seconds : seconds;
}

/**
 * A clock and timers that move only when the test says (src/engine/scheduler.ts `Scheduler`): the
 * run queue, the triggers and the daemon take it instead of real timers, so a test advances time
 * past a backoff or an interval and then asserts, instead of sleeping and hoping.
 */
export class ManualScheduler implements Scheduler {
  #now: number;
  #seq = 0;
  #timers = new Map<number, { at: number; seq: number; fn: () => void }>();

  constructor(startMs = Date.UTC(2030, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  schedule(delayMs: number, fn: () => void): () => void {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, delayMs), seq: id, fn });
    return () => this.#timers.delete(id);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the next timer fires (epoch ms), or null. */
  get nextAt(): number | null {
    let next: number | null = null;
    for (const t of this.#timers.values()) if (next === null || t.at < next) next = t.at;
    return next;
  }

  /**
   * Moves the clock `ms` ahead WITHOUT firing the timers that fall due meanwhile, as a blocked event
   * loop does: they fire late, each seeing the clock as it is then, at the next {@link advance}
   * (`advance(0)` fires just them).
   */
  stall(ms: number): void {
    this.#now += ms;
  }

  /**
   * Moves the clock `ms` ahead, firing every timer that falls due on the way, in time order, and
   * letting the promise callbacks each one starts settle before the next (a run the timer started
   * gets to its first real I/O). Timers scheduled meanwhile fire too when they fall within `ms`.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await settle();
      let due: { id: number; at: number; seq: number; fn: () => void } | null = null;
      for (const [id, t] of this.#timers) {
        if (t.at <= until && (!due || t.at < due.at || (t.at === due.at && t.seq < due.seq)))
          due = { id, ...t };
      }
      if (!due) break;
      this.#timers.delete(due.id);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = until;
    await settle();
  }
}

/** Lets queued promise callbacks and immediates run (a few turns of the event loop). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

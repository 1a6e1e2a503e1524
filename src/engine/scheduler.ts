/**
 * Time as the daemon's loop sees it: what time it is, and "call this in so many milliseconds".
 *
 * The run queue, the interval and git-poll timers, the file watcher's debounce and root check, and
 * the daemon's held-delete wake-up all take one of these instead of reading `Date.now()` and calling
 * `setTimeout` themselves, so their tests advance a manual clock (test/helpers/clock.ts) instead of
 * sleeping, and an assertion that nothing happened holds by construction rather than by luck.
 */

/** Cancels a scheduled call; calling it twice, or after the call ran, does nothing. */
export type Cancel = () => void;

export interface Scheduler {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `fn` once, `delayMs` from now (0 or less: on a later turn of the event loop). */
  schedule(delayMs: number, fn: () => void): Cancel;
}

/**
 * Node's clock and timers. Timers keep the process alive (a run waiting out a quiet period must not
 * let `run --once` exit under it); whoever schedules must cancel on shutdown.
 */
export const realScheduler: Scheduler = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    const timer = setTimeout(fn, Math.max(0, delayMs));
    return () => clearTimeout(timer);
  },
};

import type { RateLimitReading } from "./retry.js";

/**
 * Client-side pacing against Cloudflare's rate limit.
 *
 * Why: going over the quota does not just fail one call, it blocks **all** calls with 429 for the
 * rest of the five-minute window (docs/API-BEHAVIOUR.md, "Rate limits"), so a reconciler must never spend the
 * last request. The budget reads `Ratelimit` / `Ratelimit-Policy` from every response and lets a
 * request go only while `remaining - inFlight > reserve`; when the remainder is low it spreads the
 * calls left over the time until the reset, and when it is gone it waits for the reset. Calls in flight
 * count against the remainder, so concurrent callers sharing one budget cannot overshoot together.
 *
 * The budget is per client instance: two processes using the same token do not see each other's
 * spending (the server's headers correct for it on the next response).
 */

export interface RateBudgetOptions {
  /** Default true. Off: requests go out unpaced (429s are still retried). */
  enabled?: boolean;
  /** Requests always kept back. Default: 2% of the quota, at least 1. */
  reserve?: number;
  /** Below this fraction of the quota left, spread the remaining calls until the reset. Default 0.2. */
  spreadBelow?: number;
  /** Extra wait after the announced reset, for clock skew and rounding of `t`. Default 1000 ms. */
  resetMarginMs?: number;
  /** The longest one call waits for budget before failing with E_API_RATE_LIMITED. Default 330 s. */
  maxWaitMs?: number;
}

/** For metrics and status: what the budget believes now. Times are epoch ms. */
export interface RateBudgetSnapshot {
  remaining: number | null;
  resetAt: number | null;
  quota: number | null;
  /** Window length in seconds. */
  window: number | null;
  inFlight: number;
  blockedUntil: number | null;
}

/** The read-only face of the budget that the API client exposes. */
export interface RateBudgetView {
  snapshot(): RateBudgetSnapshot;
}

/** Thrown by `acquire` when the wait for budget would exceed `maxWaitMs`. */
export class BudgetWaitTooLongError extends Error {
  constructor(readonly waitMs: number) {
    super(`rate budget exhausted: next request possible in ${Math.ceil(waitMs / 1000)} s`);
  }
}

/** Returned by `acquire`; call `release` exactly once when the response (or failure) is in. */
export interface Permit {
  release(reading: RateLimitReading | null, receivedAt: number): void;
}

const POLL_MS = 250;
const NEW_WINDOW_SLACK_MS = 1500;

export class RateBudget implements RateBudgetView {
  readonly #enabled: boolean;
  readonly #reserveOption: number | undefined;
  readonly #spreadBelow: number;
  readonly #marginMs: number;
  readonly #maxWaitMs: number;
  readonly #now: () => number;

  #remaining: number | null = null;
  #resetAt: number | null = null;
  #estimated = false;
  #rolledAt = Number.NEGATIVE_INFINITY;
  #quota: number | null = null;
  #window: number | null = null;
  #inFlight = 0;
  #blockedUntil: number | null = null;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  readonly #waiters = new Set<() => void>();

  constructor(options: RateBudgetOptions = {}, now: () => number = Date.now) {
    this.#enabled = options.enabled ?? true;
    this.#reserveOption = options.reserve;
    this.#spreadBelow = options.spreadBelow ?? 0.2;
    this.#marginMs = options.resetMarginMs ?? 1000;
    this.#maxWaitMs = options.maxWaitMs ?? 330_000;
    this.#now = now;
  }

  snapshot(): RateBudgetSnapshot {
    return {
      remaining: this.#remaining,
      resetAt: this.#resetAt,
      quota: this.#quota,
      window: this.#window,
      inFlight: this.#inFlight,
      blockedUntil: this.#blockedUntil,
    };
  }

  /**
   * Waits until a request may go, then counts it in flight. Rejects with the signal's reason on abort
   * and with {@link BudgetWaitTooLongError} when the wait would pass `maxWaitMs`.
   */
  async acquire(signal?: AbortSignal): Promise<Permit> {
    const started = this.#now();
    for (;;) {
      signal?.throwIfAborted();
      const now = this.#now();
      const waitMs = this.waitMsAt(now);
      if (waitMs <= 0) return this.#take(now);
      if (now - started + waitMs > this.#maxWaitMs) throw new BudgetWaitTooLongError(waitMs);
      await this.#wait(waitMs, signal);
    }
  }

  /** Records a 429's Retry-After: nothing goes out before `until` (epoch ms). */
  blockUntil(until: number): void {
    if (!this.#enabled) return;
    this.#blockedUntil = Math.max(this.#blockedUntil ?? 0, until);
    this.#remaining = 0;
    // Roll the window over (full quota, or a single probe when the quota is unknown) right at `until`.
    this.#resetAt = until - this.#marginMs;
    this.#estimated = false;
  }

  /**
   * How long a request arriving at `now` must wait (0 = go). Exposed for tests with a fixed clock;
   * may roll the window over once its reset has passed.
   */
  waitMsAt(now: number): number {
    if (!this.#enabled) return 0;
    if (this.#blockedUntil !== null && now < this.#blockedUntil) return this.#blockedUntil - now;
    this.#rollIfReset(now);
    if (this.#remaining === null) return this.#inFlight === 0 ? 0 : POLL_MS;
    const available = this.#remaining - this.#inFlight - this.#reserve();
    if (available <= 0) {
      if (this.#resetAt === null) return POLL_MS;
      return Math.max(1, this.#resetAt + this.#marginMs - now);
    }
    if (this.#quota !== null && this.#resetAt !== null && available < this.#quota * this.#spreadBelow) {
      const interval = Math.max(0, this.#resetAt + this.#marginMs - now) / available;
      const nextAt = this.#lastSentAt + interval;
      if (now < nextAt) return Math.ceil(nextAt - now);
    }
    return 0;
  }

  /** Folds one response's headers into the state (see the class comment). */
  observe(reading: RateLimitReading, sentAt: number, receivedAt: number): void {
    if (reading.quota !== null) this.#quota = reading.quota;
    if (reading.windowSeconds !== null) this.#window = reading.windowSeconds;
    if (reading.remaining === null) return;
    if (sentAt < this.#rolledAt) return; // describes the window we already rolled past
    const resetAt = reading.resetSeconds === null ? null : receivedAt + reading.resetSeconds * 1000;
    const fresh =
      this.#remaining === null ||
      this.#resetAt === null ||
      this.#estimated ||
      (resetAt !== null && resetAt > this.#resetAt + NEW_WINDOW_SLACK_MS);
    if (fresh) {
      this.#remaining = reading.remaining;
      this.#resetAt = resetAt;
      this.#estimated = false;
      return;
    }
    this.#remaining = Math.min(this.#remaining ?? reading.remaining, reading.remaining);
    if (resetAt !== null) this.#resetAt = Math.max(this.#resetAt ?? resetAt, resetAt);
  }

  #take(now: number): Permit {
    this.#inFlight += 1;
    this.#lastSentAt = now;
    let released = false;
    return {
      release: (reading, receivedAt) => {
        if (released) return;
        released = true;
        this.#inFlight -= 1;
        if (reading) this.observe(reading, now, receivedAt);
        else if (this.#remaining !== null) this.#remaining = Math.max(0, this.#remaining - 1);
        this.#wakeAll();
      },
    };
  }

  #reserve(): number {
    if (this.#reserveOption !== undefined) return this.#reserveOption;
    return this.#quota === null ? 1 : Math.max(1, Math.ceil(this.#quota * 0.02));
  }

  /** Once the reset (plus margin) has passed, assume a full quota until a response says otherwise. */
  #rollIfReset(now: number): void {
    if (this.#resetAt === null || now < this.#resetAt + this.#marginMs) return;
    this.#rolledAt = now;
    this.#blockedUntil = null;
    if (this.#quota === null) {
      this.#remaining = null;
      this.#resetAt = null;
      return;
    }
    this.#remaining = this.#quota;
    this.#resetAt = this.#window === null ? null : now + this.#window * 1000;
    this.#estimated = true;
  }

  #wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(finish);
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(finish);
        reject(signal?.reason);
      };
      const timer = setTimeout(finish, ms);
      this.#waiters.add(finish);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #wakeAll(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

/**
 * The v4 API's rate limit (docs/API-BEHAVIOUR.md, "Rate limits"): a quota per window per credential; once it
 * is spent, every call from that credential gets 429 until the window ends. Windows are fixed and open
 * at the credential's first request (behaviour.ts). Time comes from the injected clock.
 */

export interface RateLimitConfig {
  quota: number;
  windowSeconds: number;
}

/** The outcome of counting one request, and what the response headers say. */
export interface RateDecision {
  limited: boolean;
  remaining: number;
  /** Whole seconds until the window resets (at least 1). */
  resetSeconds: number;
}

interface Window {
  start: number;
  count: number;
}

/** Counts requests per credential key. */
export class RateLimiter {
  readonly config: RateLimitConfig;
  readonly #now: () => Date;
  readonly #windows = new Map<string, Window>();

  constructor(config: RateLimitConfig, now: () => Date) {
    this.config = config;
    this.#now = now;
  }

  /** Counts one request for `key` and says whether it is over the quota. */
  take(key: string): RateDecision {
    const now = this.#now().getTime();
    const windowMs = this.config.windowSeconds * 1000;
    let window = this.#windows.get(key);
    if (!window || now >= window.start + windowMs) {
      if (this.#windows.size > 10_000) this.#prune(now, windowMs);
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
    }
    window.count += 1;
    const limited = window.count > this.config.quota;
    return {
      limited,
      remaining: Math.max(0, this.config.quota - window.count),
      resetSeconds: Math.max(1, Math.ceil((window.start + windowMs - now) / 1000)),
    };
  }

  clear(): void {
    this.#windows.clear();
  }

  #prune(now: number, windowMs: number): void {
    for (const [key, w] of this.#windows) if (now >= w.start + windowMs) this.#windows.delete(key);
  }
}

/**
 * `Ratelimit` and `Ratelimit-Policy` header values (docs/API-BEHAVIOUR.md, "Rate limits": on every
 * response).
 */
export function rateLimitHeaders(config: RateLimitConfig, decision: RateDecision): Record<string, string> {
  const headers: Record<string, string> = {
    Ratelimit: `"default";r=${decision.remaining};t=${decision.resetSeconds}`,
    "Ratelimit-Policy": `"default";q=${config.quota};w=${config.windowSeconds}`,
  };
  if (decision.limited) headers["Retry-After"] = String(decision.resetSeconds);
  return headers;
}

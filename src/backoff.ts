/**
 * Exponential backoff: the one formula every retry in the tool uses, so a fix reaches all of them.
 * The API client waits between attempts with full jitter (the official SDK's 0.5 s doubling to 8 s,
 * docs/API-BEHAVIOUR.md, "Rate limits"); the daemon waits between failed runs and the secret
 * publisher between sink writes without jitter (one process, nothing to spread).
 */

/** The first delay and the longest one. */
export interface BackoffPolicy {
  /** The delay after the first failure, in ms. */
  readonly baseMs: number;
  /** No delay is longer than this, in ms. */
  readonly capMs: number;
}

/**
 * The delay after `failures` consecutive failures: `min(capMs, baseMs * 2^(failures-1))`, and 0
 * before the first failure. The exponent stops growing at 30, where any sane cap has long been
 * reached, so a daemon failing for weeks still computes a finite number.
 */
export function backoffMs(failures: number, policy: BackoffPolicy): number {
  if (failures <= 0) return 0;
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(failures - 1, 30));
}

/**
 * Full jitter ("Exponential Backoff And Jitter", AWS architecture blog): a uniform pick in
 * `[0, backoffMs(failures))`, which spreads the retries of many clients sharing one rate limit best.
 * `random` returns a number in [0, 1) and is injected so tests can pin it; values outside are clamped.
 */
export function fullJitterBackoffMs(failures: number, policy: BackoffPolicy, random: () => number): number {
  return Math.floor(Math.min(Math.max(random(), 0), 1) * backoffMs(failures, policy));
}

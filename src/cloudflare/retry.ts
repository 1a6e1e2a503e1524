/**
 * Pure helpers for retry timing: `Retry-After` / `retry-after-ms` and the rate-limit headers. Kept
 * apart from the transport so they can be tested with plain values. The policy follows the official
 * SDK (docs/API-BEHAVIOUR.md, "Rate limits"): `retry-after-ms` first, then `Retry-After` in seconds or as an
 * HTTP date, else the backoff of src/backoff.ts (0.5 s doubling to 8 s with full jitter).
 */

export type HeaderMap = Record<string, string | string[] | undefined>;

/** The first value of a header, by lower-case name. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The wait the server asked for, in ms, or null: `retry-after-ms` (float ms), else `Retry-After` as
 * delta seconds or an HTTP date relative to `now`.
 */
export function retryAfterMs(headers: HeaderMap, now: number): number | null {
  const ms = headerValue(headers, "retry-after-ms");
  if (ms !== undefined && ms.trim() !== "") {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const ra = headerValue(headers, "retry-after")?.trim();
  if (!ra) return null;
  if (/^\d+(\.\d+)?$/.test(ra)) return Math.ceil(Number(ra) * 1000);
  const date = Date.parse(ra);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/** What one response said about the rate limit; any part may be unknown. */
export interface RateLimitReading {
  remaining: number | null;
  /** Seconds until the window resets. */
  resetSeconds: number | null;
  quota: number | null;
  windowSeconds: number | null;
}

/**
 * Reads `Ratelimit: "default";r=<remaining>;t=<seconds>` and
 * `Ratelimit-Policy: "default";q=<quota>;w=<window>` (docs/API-BEHAVIOUR.md, "Rate limits"), falling back to
 * the older `X-RateLimit-Limit/Remaining/Reset` (Reset as delta seconds, or epoch seconds when large).
 * Returns null when the response carries none of them.
 */
export function parseRateLimitHeaders(headers: HeaderMap, now: number): RateLimitReading | null {
  const current = parseStructuredItem(headerValue(headers, "ratelimit"));
  const policy = parseStructuredItem(headerValue(headers, "ratelimit-policy"));
  const reading: RateLimitReading = {
    remaining: current["r"] ?? null,
    resetSeconds: current["t"] ?? null,
    quota: policy["q"] ?? null,
    windowSeconds: policy["w"] ?? null,
  };
  const legacyRemaining = numberOrNull(headerValue(headers, "x-ratelimit-remaining"));
  const legacyLimit = numberOrNull(headerValue(headers, "x-ratelimit-limit"));
  const legacyReset = numberOrNull(headerValue(headers, "x-ratelimit-reset"));
  reading.remaining ??= legacyRemaining;
  reading.quota ??= legacyLimit;
  if (reading.resetSeconds === null && legacyReset !== null) {
    reading.resetSeconds = legacyReset > 1e9 ? Math.max(0, legacyReset - now / 1000) : legacyReset;
  }
  const known = Object.values(reading).some((v) => v !== null);
  return known ? reading : null;
}

/**
 * Parameters of the first list member of an RFC 9651 structured-field header, e.g.
 * `"default";r=50;t=30` -> `{r: 50, t: 30}`. Prefers the member named `default` when several are
 * listed. Non-numeric parameters are ignored.
 */
function parseStructuredItem(value: string | undefined): Record<string, number> {
  if (!value) return {};
  const members = value.split(",").map((m) => m.trim());
  const chosen = members.find((m) => /^"?default"?\s*(;|$)/.test(m)) ?? members[0] ?? "";
  const params: Record<string, number> = {};
  for (const part of chosen.split(";").slice(1)) {
    const [key, raw] = part.split("=").map((s) => s.trim());
    const n = numberOrNull(raw);
    if (key && n !== null) params[key.toLowerCase()] = n;
  }
  return params;
}

function numberOrNull(value: string | undefined): number | null {
  if (value === undefined || value.trim() === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

import { describe, expect, it } from "vitest";
import { parseRateLimitHeaders, retryAfterMs } from "../../src/cloudflare/retry.js";

describe("retryAfterMs", () => {
  const now = Date.parse("2030-01-01T00:00:00Z");
  it("prefers retry-after-ms", () => {
    expect(retryAfterMs({ "retry-after-ms": "250.4", "retry-after": "9" }, now)).toBe(251);
  });
  it("reads delta seconds", () => {
    expect(retryAfterMs({ "retry-after": "3" }, now)).toBe(3000);
  });
  it("reads an HTTP date relative to now", () => {
    expect(retryAfterMs({ "retry-after": "Tue, 01 Jan 2030 00:00:07 GMT" }, now)).toBe(7000);
  });
  it("gives null when absent or unreadable", () => {
    expect(retryAfterMs({}, now)).toBeNull();
    expect(retryAfterMs({ "retry-after": "soon" }, now)).toBeNull();
  });
});

describe("parseRateLimitHeaders", () => {
  const now = 1_000_000_000_000;
  it("reads the structured Ratelimit and Ratelimit-Policy headers", () => {
    expect(
      parseRateLimitHeaders(
        { ratelimit: '"default";r=50;t=30', "ratelimit-policy": '"default";q=1200;w=300' },
        now,
      ),
    ).toEqual({ remaining: 50, resetSeconds: 30, quota: 1200, windowSeconds: 300 });
  });
  it("prefers the default member of a list", () => {
    expect(parseRateLimitHeaders({ ratelimit: '"burst";r=1;t=1, "default";r=7;t=9' }, now)).toMatchObject({
      remaining: 7,
      resetSeconds: 9,
    });
  });
  it("falls back to X-RateLimit-* with delta or epoch reset", () => {
    expect(
      parseRateLimitHeaders(
        { "x-ratelimit-limit": "100", "x-ratelimit-remaining": "4", "x-ratelimit-reset": "12" },
        now,
      ),
    ).toEqual({ remaining: 4, resetSeconds: 12, quota: 100, windowSeconds: null });
    expect(
      parseRateLimitHeaders(
        { "x-ratelimit-remaining": "4", "x-ratelimit-reset": String(now / 1000 + 20) },
        now,
      ),
    ).toMatchObject({ resetSeconds: 20 });
  });
  it("gives null when no rate-limit header is present", () => {
    expect(parseRateLimitHeaders({ "content-type": "application/json" }, now)).toBeNull();
  });
});

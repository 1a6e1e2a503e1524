import { describe, expect, it } from "vitest";
import { backoffMs, fullJitterBackoffMs } from "../src/backoff.js";

describe("backoffMs", () => {
  it("doubles from the base after each failure, up to the cap, and is 0 before the first", () => {
    const policy = { baseMs: 1_000, capMs: 8_000 };
    expect([0, 1, 2, 3, 4, 5, 50, 10_000].map((n) => backoffMs(n, policy))).toEqual([
      0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000,
    ]);
  });
});

describe("fullJitterBackoffMs", () => {
  it.each([
    // failures, random, expected: floor(random * min(cap, base * 2^(failures-1))), base 500, cap 8000
    [1, 0.999, 499],
    [2, 0.5, 500],
    [3, 1, 2000],
    [5, 1, 8000],
    [9, 1, 8000],
    [4, 0, 0],
    [3, -1, 0],
    [3, 2, 2000],
  ])("failure %i with random %f -> %i ms", (failures, random, expected) => {
    expect(fullJitterBackoffMs(failures, { baseMs: 500, capMs: 8_000 }, () => random)).toBe(expected);
  });
});

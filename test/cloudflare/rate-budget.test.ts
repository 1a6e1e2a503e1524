import { describe, expect, it } from "vitest";
import { RateBudget } from "../../src/cloudflare/rate-budget.js";
import type { RateLimitReading } from "../../src/cloudflare/retry.js";

/** The budget's decisions with a hand-driven clock: no timers involved while the wait is 0. */
function budgetAt(start = 1_000_000, options = {}) {
  let now = start;
  const budget = new RateBudget({ resetMarginMs: 1000, ...options }, () => now);
  return {
    budget,
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

const reading = (
  remaining: number,
  resetSeconds: number,
  quota = 100,
  windowSeconds = 10,
): RateLimitReading => ({
  remaining,
  resetSeconds,
  quota,
  windowSeconds,
});

describe("RateBudget", () => {
  it("lets one probe out while nothing is known, then waits for its answer", async () => {
    const { budget, now } = budgetAt();
    const permit = await budget.acquire();
    expect(budget.waitMsAt(now())).toBeGreaterThan(0);
    permit.release(reading(90, 10), now());
    expect(budget.waitMsAt(now())).toBe(0);
  });

  it("counts requests in flight against the remainder and keeps the reserve", async () => {
    const { budget, now } = budgetAt(1_000_000, { spreadBelow: 0 });
    budget.observe(reading(5, 8), now(), now()); // reserve for q=100 is 2: 3 may go
    const permits = [await budget.acquire(), await budget.acquire(), await budget.acquire()];
    expect(budget.snapshot().inFlight).toBe(3);
    expect(budget.waitMsAt(now())).toBe(8000 + 1000); // until reset + margin
    permits[0]!.release(reading(4, 8), now());
    expect(budget.waitMsAt(now())).toBe(9000); // 4 - 2 in flight - 2 reserve = 0
  });

  it("rolls over to the full quota once the reset has passed", () => {
    const { budget, now, advance } = budgetAt();
    budget.observe(reading(2, 5), now(), now());
    expect(budget.waitMsAt(now())).toBe(6000);
    advance(6000);
    expect(budget.waitMsAt(now())).toBe(0);
    expect(budget.snapshot()).toMatchObject({ remaining: 100, quota: 100, window: 10 });
  });

  it("ignores an answer from a window it already rolled past", async () => {
    const { budget, now, advance } = budgetAt();
    budget.observe(reading(50, 1), now(), now());
    const sentBeforeRoll = now();
    advance(2500);
    expect(budget.waitMsAt(now())).toBe(0); // rolled
    budget.observe(reading(3, 0), sentBeforeRoll, now());
    expect(budget.snapshot().remaining).toBe(100);
  });

  it("takes the lower remainder when answers of one window arrive out of order", () => {
    const { budget, now } = budgetAt();
    budget.observe(reading(40, 8), now(), now());
    budget.observe(reading(45, 8), now(), now());
    expect(budget.snapshot().remaining).toBe(40);
  });

  it("spreads the last calls of a window over the time until the reset", async () => {
    const { budget, now } = budgetAt();
    budget.observe(reading(12, 9), now(), now()); // available = 12 - 2 = 10 < 20% of 100
    (await budget.acquire()).release(reading(11, 9), now());
    // 9 left to spend over (9 s + 1 s margin): one every ~1.1 s after the last send
    const wait = budget.waitMsAt(now());
    expect(wait).toBeGreaterThan(1000);
    expect(wait).toBeLessThanOrEqual(1112);
  });

  it("blocks everything until a 429's Retry-After has passed", () => {
    const { budget, now, advance } = budgetAt();
    budget.observe(reading(60, 9), now(), now());
    budget.blockUntil(now() + 3000);
    expect(budget.waitMsAt(now())).toBe(3000);
    advance(3000);
    expect(budget.waitMsAt(now())).toBe(0);
  });

  it("fails fast when the wait would exceed maxWaitMs", async () => {
    const { budget, now } = budgetAt(1_000_000, { maxWaitMs: 500 });
    budget.observe(reading(0, 60), now(), now());
    await expect(budget.acquire()).rejects.toMatchObject({ waitMs: 61_000 });
  });

  it("rejects a waiting acquire when its signal aborts", async () => {
    const { budget, now } = budgetAt();
    budget.observe(reading(0, 60), now(), now());
    const controller = new AbortController();
    const pending = budget.acquire(controller.signal);
    controller.abort(new Error("stop"));
    await expect(pending).rejects.toThrow("stop");
  });

  it("does nothing when disabled", () => {
    const { budget, now } = budgetAt(1_000_000, { enabled: false });
    budget.observe(reading(0, 60), now(), now());
    expect(budget.waitMsAt(now())).toBe(0);
  });
});

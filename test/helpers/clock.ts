import { tryParseDuration } from "../../src/config/duration.js";
import type { Clock } from "../../src/cli/io.js";

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

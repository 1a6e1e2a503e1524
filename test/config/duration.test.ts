import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../src/config/index.js";
import { GitOpsError } from "../../src/errors.js";

describe("parseDuration", () => {
  it.each([
    ["30s", 30],
    ["10m", 600],
    ["24h", 86_400],
    ["90d", 7_776_000],
    ["1h30m", 5_400],
    ["1d2h3m4s", 93_784],
    ["0s", 0],
  ])("%s is %i seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(["", "10", "1.5h", "90 days", "10 m", "30m1h", "1h1h", "5w", "-5m", "h", "1H"])(
    "refuses %j with E_BAD_DURATION",
    (text) => {
      let caught: unknown;
      try {
        parseDuration(text);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(GitOpsError);
      expect((caught as GitOpsError).code).toBe("E_BAD_DURATION");
    },
  );

  it("suggests a unit for a bare number", () => {
    expect(() => parseDuration("10")).toThrow(/`10s`/);
  });

  it("formats seconds back into the shortest string", () => {
    expect(formatDuration(7_776_000)).toBe("90d");
    expect(formatDuration(5_400)).toBe("1h30m");
    expect(formatDuration(0)).toBe("0s");
    for (const text of ["30s", "1d2h3m4s", "12h"]) expect(formatDuration(parseDuration(text))).toBe(text);
  });
});

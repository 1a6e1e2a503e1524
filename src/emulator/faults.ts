import { fail } from "./failure.js";
import { isPlainObject } from "./validate.js";
import type { Prng } from "./prng.js";

/**
 * Injected faults, so the reconciler's retry, resume and journal logic can be exercised against
 * the failures the real API produces: slowness, 5xx, reset connections, and the worst one, a write
 * that committed but whose response never arrived. Every decision draws from the seeded faults
 * stream, in a fixed order per request, so a seed replays the same faults.
 */
export interface FaultSettings {
  /** Added to every /client/v4 request before anything else happens. */
  latencyMs: number;
  /** Probability of a 5xx before the request does anything. */
  fault5xxRate: number;
  /** Probability the socket is destroyed before the request does anything. */
  faultResetRate: number;
  /** Probability a successful mutation is applied and then its socket destroyed before the response. */
  faultDropAfterCommitRate: number;
}

export const NO_FAULTS: FaultSettings = {
  latencyMs: 0,
  fault5xxRate: 0,
  faultResetRate: 0,
  faultDropAfterCommitRate: 0,
};

const RATE_KEYS = ["fault5xxRate", "faultResetRate", "faultDropAfterCommitRate"] as const;

/** Checks a partial settings object (from options or `POST /__emulator/faults`) and merges it. */
export function mergeFaultSettings(base: FaultSettings, patch: unknown): FaultSettings {
  if (!isPlainObject(patch)) throw fail("invalidJson", "fault settings must be a JSON object");
  const next: FaultSettings = { ...base };
  for (const key of RATE_KEYS) {
    const value = patch[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
      throw fail("invalidField", `${key}: must be a number between 0 and 1`, { field: key });
    }
    next[key] = value;
  }
  const latency = patch["latencyMs"];
  if (latency !== undefined) {
    if (typeof latency !== "number" || !Number.isFinite(latency) || latency < 0) {
      throw fail("invalidField", "latencyMs: must be a non-negative number", { field: "latencyMs" });
    }
    next.latencyMs = latency;
  }
  return next;
}

/** Draws one decision: true with probability `rate`. Always draws, so the sequence never shifts. */
export function roll(prng: Prng, rate: number): boolean {
  const draw = prng.next();
  return draw < rate;
}

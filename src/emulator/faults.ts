import { fail } from "./failure.js";
import { isPlainObject } from "./validate.js";
import type { Prng } from "./prng.js";

/**
 * Injected faults, so the reconciler's retry, resume and journal logic can be exercised against
 * the failures the real API produces: slowness, 5xx, reset connections, the worst write failure, a
 * write that committed but whose response never arrived, and the worst read failure, a list answer
 * that is `success: true` yet leaves clients out (a proxy, a bug or a partial outage can give that).
 * Every decision draws from the seeded faults stream, in a fixed order per request, so a seed
 * replays the same faults.
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
  /**
   * Probability that each client of a list answer is left out of it. One draw per listed client, in
   * list order, and only while the rate is above 0, so seeds of runs without this fault replay as
   * before.
   */
  listDropRate: number;
  /** Client ids always left out of list answers (GET of the client still finds them). */
  listDropIds: string[];
  /**
   * Added to `result_info.total_count` of client list answers. 0: `total_count` is the number of
   * clients in the answer (after any drop above), so a drop alone is not given away by the count.
   */
  listTotalCountOffset: number;
}

export const NO_FAULTS: FaultSettings = {
  latencyMs: 0,
  fault5xxRate: 0,
  faultResetRate: 0,
  faultDropAfterCommitRate: 0,
  listDropRate: 0,
  listDropIds: [],
  listTotalCountOffset: 0,
};

const RATE_KEYS = ["fault5xxRate", "faultResetRate", "faultDropAfterCommitRate", "listDropRate"] as const;

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
  const dropIds = patch["listDropIds"];
  if (dropIds !== undefined) {
    if (!Array.isArray(dropIds) || !dropIds.every((id) => typeof id === "string")) {
      throw fail("invalidField", "listDropIds: must be an array of client ids", { field: "listDropIds" });
    }
    next.listDropIds = [...(dropIds as string[])];
  }
  const offset = patch["listTotalCountOffset"];
  if (offset !== undefined) {
    if (typeof offset !== "number" || !Number.isInteger(offset)) {
      throw fail("invalidField", "listTotalCountOffset: must be a whole number", {
        field: "listTotalCountOffset",
      });
    }
    next.listTotalCountOffset = offset;
  }
  return next;
}

/**
 * A client list answer as the list faults shape it: the clients left in, how many were left out, and
 * the `total_count` to report. Draws from `prng` only when `listDropRate` is above 0.
 */
export function shapeListAnswer<T extends { client_id: string }>(
  clients: readonly T[],
  faults: FaultSettings,
  prng: Prng,
): { clients: T[]; dropped: number; totalCount: number } {
  const dropIds = new Set(faults.listDropIds);
  const kept = clients.filter((c) => {
    const byRate = faults.listDropRate > 0 && roll(prng, faults.listDropRate);
    return !byRate && !dropIds.has(c.client_id);
  });
  return {
    clients: kept,
    dropped: clients.length - kept.length,
    totalCount: kept.length + faults.listTotalCountOffset,
  };
}

/** Draws one decision: true with probability `rate`. Always draws, so the sequence never shifts. */
export function roll(prng: Prng, rate: number): boolean {
  const draw = prng.next();
  return draw < rate;
}

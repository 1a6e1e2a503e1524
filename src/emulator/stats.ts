/**
 * Request counters for `GET /__emulator/stats`: benchmarks and tests read how many calls a reconcile
 * made, of which kind, and how many were throttled, without parsing logs. Only /client/v4 traffic is
 * counted; control calls are not.
 */

/** A response status, or what happened instead of one. */
export type Outcome = number | "reset" | "dropped";

/** The JSON shape of `GET /__emulator/stats`. */
export interface StatsSnapshot {
  total: number;
  rate_limited: number;
  by_method: Record<string, number>;
  by_route: Record<string, number>;
  by_status: Record<string, number>;
  /** Route template -> status -> count. */
  by_route_status: Record<string, Record<string, number>>;
  /** `list_dropped`: clients left out of list answers by the list faults (faults.ts). */
  faults: { error_5xx: number; reset: number; drop_after_commit: number; list_dropped: number };
}

/** Mutable counters. */
export class Stats {
  #s: StatsSnapshot = emptyStats();

  /** Counts one request under its method and route template (`POST /accounts/:account_id/oauth_clients`). */
  record(method: string, route: string, outcome: Outcome, injected5xx = false): void {
    const s = this.#s;
    const status = String(outcome);
    s.total += 1;
    if (outcome === 429) s.rate_limited += 1;
    if (outcome === "reset") s.faults.reset += 1;
    if (outcome === "dropped") s.faults.drop_after_commit += 1;
    if (injected5xx) s.faults.error_5xx += 1;
    bump(s.by_method, method);
    bump(s.by_route, route);
    bump(s.by_status, status);
    bump((s.by_route_status[route] ??= {}), status);
  }

  /** Counts clients a list answer left out (the list request itself is recorded as a 200). */
  recordListDrop(clients: number): void {
    this.#s.faults.list_dropped += clients;
  }

  snapshot(): StatsSnapshot {
    return structuredClone(this.#s);
  }

  clear(): void {
    this.#s = emptyStats();
  }
}

function emptyStats(): StatsSnapshot {
  return {
    total: 0,
    rate_limited: 0,
    by_method: {},
    by_route: {},
    by_status: {},
    by_route_status: {},
    faults: { error_5xx: 0, reset: 0, drop_after_commit: 0, list_dropped: 0 },
  };
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

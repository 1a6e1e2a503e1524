import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { DesiredClient, DesiredState, Inventory } from "../../src/core/model.js";
import { clientKey } from "../../src/core/rotation.js";
import type { JournalRecord, SecretPlanInput } from "../../src/core/rotation-plan.js";

/**
 * One client's secret situation for the pure secret planner's table tests (test/core/rotation-plan.test.ts,
 * test/core/plan-rotations.test.ts): a desired entry with a sink, its live client, the journal and the
 * sink record's age, at a fixed time. Each row of a table states only what differs from these defaults.
 */

export const ACC = "0123456789abcdef0123456789abcdef";
export const DAY = 86_400;
export const NOW = new Date("2026-03-01T00:00:00.000Z");
export const ID = "id-app";
export const KEY = clientKey(ACC, ID);
export const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString();
export const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();

export function desiredEntry(extra: Partial<DesiredClient> = {}): DesiredClient {
  return {
    account_id: ACC,
    ensure: "present",
    client_name: "app",
    fields: { client_name: "app", token_endpoint_auth_method: "client_secret_basic" },
    visibility: "private",
    secret: { sink: "default", key: "app" },
    rotation: { every: 10 * DAY, grace: DAY },
    source: { file: "clients.yaml", line: 1, col: 1, path: "clients[0]" },
    ...extra,
  };
}

export function liveClient(extra: Partial<LiveClient> = {}): LiveClient {
  return {
    client_id: ID,
    client_name: "app",
    visibility: "private",
    token_endpoint_auth_method: "client_secret_basic",
    has_rotated_secret: false,
    created_at: ago(30 * DAY),
    ...extra,
  } as LiveClient;
}

/** A finished scheduled rotation published two days ago, unless `fields` say otherwise. */
export function entry(fields: Partial<JournalRecord>): JournalRecord {
  return {
    id: "e1",
    op: "rotate",
    reason: "scheduled",
    step: "done",
    account_id: ACC,
    client_name: "app",
    client_id: ID,
    target: { sink: "default", key: "app" },
    delete_old: "after-grace",
    grace_seconds: DAY,
    unused: false,
    created_by_tool: false,
    existing_client_ids: [],
    minted_at: ago(2 * DAY),
    published_at: ago(2 * DAY),
    blocked: null,
    ...fields,
  };
}

export interface Situation {
  entries?: JournalRecord[];
  /** Fields over {@link liveClient}; null: the client is not live. */
  live?: Partial<LiveClient> | null;
  /** The sink record's `issued_at`; null: no record; undefined: not read. */
  issued?: string | null;
  /** False: the inventory does not own the client. */
  owned?: boolean;
  desired?: Partial<DesiredClient>;
}

/** The planner's input for a situation, without the mode and the client filter. */
export function situationInput(s: Situation): Omit<SecretPlanInput, "mode" | "clients"> {
  const inventory: Inventory = {
    accounts: {
      [ACC]:
        s.owned === false
          ? []
          : [{ client_id: ID, client_name: "app", origin: "created", since: ago(30 * DAY) }],
    },
  };
  return {
    desired: { accounts: new Map([[ACC, [desiredEntry(s.desired)]]]) } as unknown as DesiredState,
    live: new Map([[ACC, s.live === null ? [] : [liveClient(s.live ?? {})]]]),
    inventory,
    entries: s.entries ?? [],
    sinkIssuedAt: new Map(s.issued === undefined ? [] : [[KEY, s.issued]]),
    defaultPolicy: { every: 90 * DAY, grace: DAY },
    now: NOW,
  };
}

import type { CreateClientBody, LiveClient } from "../../src/api/oauth-clients.js";
import type { DesiredClient, DesiredState, Inventory, InventoryEntry, Policy } from "../../src/core/model.js";
import { computePlan } from "../../src/core/plan.js";
import type { Plan, PlanInput } from "../../src/core/plan-types.js";

/**
 * Named fixtures for the planner tests: small builders for desired entries, live clients (as the API
 * would hold them), inventories and policies. Every id is 32 characters like the real ones.
 */

export const ACCOUNT_A = "aaaaaaaa0000000000000000000000a1";
export const ACCOUNT_B = "bbbbbbbb0000000000000000000000b2";

/** A client id from a short label: `id("x")` -> 32 characters, stable. */
export function id(label: string): string {
  return label.padEnd(32, "0").slice(0, 32);
}

export const BASE_FIELDS: CreateClientBody = {
  client_name: "app",
  redirect_uris: ["https://app.example.com/callback"],
  grant_types: ["authorization_code"],
  response_types: ["code"],
  scopes: ["account-settings.read"],
  token_endpoint_auth_method: "client_secret_basic",
};

let line = 1;

/** A present desired entry with the base fields, overridable. */
export function desired(
  name: string,
  fields: Partial<CreateClientBody> = {},
  extra: Partial<DesiredClient> = {},
): DesiredClient {
  return {
    account_id: extra.account_id ?? ACCOUNT_A,
    ensure: "present",
    client_name: name,
    fields: { ...BASE_FIELDS, client_name: name, ...fields },
    visibility: "private",
    secret: { sink: "vault", key: `oauth/${name}` },
    rotation: null,
    source: { file: "clients/apps.yaml", line: line++, col: 3, path: `clients[${line}]` },
    ...extra,
  };
}

/** An `ensure: absent` entry, optionally pinned. */
export function absent(name: string, clientId?: string, account = ACCOUNT_A): DesiredClient {
  return {
    account_id: account,
    ensure: "absent",
    client_name: name,
    ...(clientId !== undefined ? { client_id: clientId } : {}),
    fields: {},
    visibility: "private",
    secret: null,
    rotation: null,
    source: { file: "clients/apps.yaml", line: line++, col: 3, path: `clients[${line}]` },
  };
}

/** A live client as the server holds it for the given fields (protocol scopes added by the server rule). */
export function live(
  clientId: string,
  fields: Partial<CreateClientBody>,
  extra: Partial<LiveClient> = {},
): LiveClient {
  const merged = { ...BASE_FIELDS, ...fields };
  const scopes = merged.scopes.filter((s) => s !== "openid" && s !== "offline_access");
  if (merged.response_types.includes("id_token")) scopes.unshift("openid");
  if (merged.grant_types.includes("refresh_token")) scopes.push("offline_access");
  return {
    client_id: clientId,
    visibility: "private",
    ...merged,
    scopes,
    has_rotated_secret: false,
    created_at: "2025-01-01T00:00:00Z",
    updated_at: "2025-01-01T00:00:00Z",
    ...extra,
  };
}

/** The live twin of a desired entry. */
export function liveOf(entry: DesiredClient, clientId: string, extra: Partial<LiveClient> = {}): LiveClient {
  return live(clientId, entry.fields, extra);
}

/** Desired state from entries, grouped by their account. `accounts` adds empty documents. */
export function state(entries: DesiredClient[], accounts: string[] = []): DesiredState {
  const map = new Map<string, DesiredClient[]>();
  for (const a of accounts) map.set(a, []);
  for (const e of entries) {
    const list = map.get(e.account_id) ?? [];
    list.push(e);
    map.set(e.account_id, list);
  }
  return { accounts: map, files: ["clients/apps.yaml"] };
}

export function owned(clientId: string, name: string): InventoryEntry {
  return { client_id: clientId, client_name: name, origin: "created", since: "2025-01-01T00:00:00Z" };
}

export function inventory(byAccount: Record<string, InventoryEntry[]> = {}): Inventory {
  return { accounts: byAccount };
}

export const POLICY: Policy = {
  prune: "none",
  ignore: [],
  safety: { max_deletes: 100, max_change_percent: 100, min_clients_for_percent: 10, allow_empty: false },
};

export function policy(
  overrides: Partial<Omit<Policy, "safety">> & { safety?: Partial<Policy["safety"]> } = {},
): Policy {
  return { ...POLICY, ...overrides, safety: { ...POLICY.safety, ...overrides.safety } };
}

export interface Scenario {
  desired: DesiredClient[];
  /** Accounts with a desired document but no entries. */
  emptyAccounts?: string[];
  live?: Record<string, LiveClient[]>;
  inventory?: Record<string, InventoryEntry[]>;
  policy?: Policy;
  force?: boolean;
}

/** Builds the planner input of a scenario; accounts of desired entries get an empty live list by default. */
export function inputOf(s: Scenario): PlanInput {
  const liveMap = new Map<string, LiveClient[]>();
  for (const e of s.desired) liveMap.set(e.account_id, []);
  for (const a of s.emptyAccounts ?? []) liveMap.set(a, []);
  for (const a of Object.keys(s.inventory ?? {})) liveMap.set(a, []);
  for (const [a, clients] of Object.entries(s.live ?? {})) liveMap.set(a, clients);
  return {
    desired: state(s.desired, s.emptyAccounts),
    live: liveMap,
    inventory: inventory(s.inventory),
    policy: s.policy ?? POLICY,
    force: s.force ?? false,
  };
}

export function planOf(s: Scenario): Plan {
  return computePlan(inputOf(s));
}

import { createHash } from "node:crypto";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import { REQUIRED_FIELDS } from "../../src/api/oauth-clients.js";
import type { Inventory } from "../../src/core/model.js";
import type { Plan } from "../../src/core/plan-types.js";

/**
 * A tiny pure stand-in for the API, for second-round tests only: it applies a plan's changes to a copy
 * of the live state the way docs/API-BEHAVIOUR.md says the server does, and records ownership the way apply
 * does. It is written independently of src/core/compare.ts (its own scope rule, its own host check) so
 * that a wrong rule in the planner cannot hide behind the same wrong rule here. It throws where the
 * real API would refuse, so a plan that sends something invalid fails the test.
 */

export interface SimulatedWorld {
  live: Map<string, LiveClient[]>;
  inventory: Inventory;
}

export interface SimulatorOptions {
  /** Verification state given to a freshly set client_uri. Default `pending`. */
  verification?: "pending" | "verified";
}

let sequence = 0;

function nextStamp(): string {
  sequence++;
  return `2025-06-01T00:00:${String(sequence % 60).padStart(2, "0")}.${String(sequence).padStart(6, "0")}Z`;
}

function host(uri: string): string {
  return uri
    .replace(/^[a-z]+:\/\//i, "")
    .split(/[/:?#]/)[0]!
    .toLowerCase();
}

/**
 * The server's own protocol-scope rule (docs/API-BEHAVIOUR.md, "Scopes"), deliberately ordered
 * differently.
 */
function serverScopes(client: LiveClient): void {
  const base = (client.scopes ?? []).filter((s) => s !== "openid" && s !== "offline_access");
  const out = [...new Set(base)].reverse();
  if (client.response_types?.includes("id_token")) out.push("openid");
  if (client.grant_types?.includes("refresh_token")) out.unshift("offline_access");
  client.scopes = out;
}

function startVerification(client: LiveClient, options: SimulatorOptions): void {
  if (!client.client_uri) {
    delete client.client_uri_verification;
    return;
  }
  const token = createHash("sha256").update(client.client_uri).digest("hex").slice(0, 16);
  client.client_uri_verification = {
    status: options.verification ?? "pending",
    text: `cloudflare_oauth_client_publisher=${token}`,
  };
}

function assertPromotable(client: LiveClient): void {
  const ok =
    !!client.client_name?.trim() &&
    !!client.logo_uri &&
    client.client_uri_verification?.status === "verified" &&
    (client.scopes ?? []).some((s) => s.includes("."));
  if (!ok) throw new Error(`simulator: 400 promotion preconditions not met for ${client.client_id}`);
}

/** Applies every change, adoption and inventory clean-up of `plan` to a deep copy of the world. */
export function applyChangesToLive(
  plan: Plan,
  world: SimulatedWorld,
  options: SimulatorOptions = {},
): SimulatedWorld {
  const live = new Map<string, LiveClient[]>();
  for (const [a, clients] of world.live) live.set(a, structuredClone(clients));
  const inventory: Inventory = structuredClone(world.inventory);
  const own = (a: string) => (inventory.accounts[a] ??= []);
  for (const change of plan.changes) {
    const clients = live.get(change.account_id);
    if (!clients) throw new Error(`simulator: 404 account ${change.account_id}`);
    if (change.kind === "create") {
      if (!change.body.grant_types.includes("authorization_code"))
        throw new Error("simulator: 400 grant_types");
      sequence++;
      const client: LiveClient = {
        ...structuredClone(change.body),
        client_id: createHash("sha256").update(`client-${sequence}`).digest("hex").slice(0, 32),
        visibility: "private",
        has_rotated_secret: false,
        created_at: nextStamp(),
        updated_at: nextStamp(),
      };
      serverScopes(client);
      startVerification(client, options);
      clients.push(client);
      own(change.account_id).push({
        client_id: client.client_id,
        client_name: change.client_name,
        origin: "created",
        since: "2025-06-01T00:00:00Z",
      });
      continue;
    }
    const index = clients.findIndex((c) => c.client_id === change.client_id);
    const client = clients[index];
    if (!client) throw new Error(`simulator: 404 client ${change.client_id}`);
    if (change.kind === "delete") {
      clients.splice(index, 1);
      inventory.accounts[change.account_id] = own(change.account_id).filter(
        (e) => e.client_id !== change.client_id,
      );
      continue;
    }
    const body = change.body as Record<string, unknown>;
    if ("client_uri" in body) {
      if (body.client_uri === client.client_uri) throw new Error("simulator: client_uri re-sent unchanged");
      const verified = client.client_uri_verification?.status === "verified" && client.client_uri;
      if (verified && (typeof body.client_uri !== "string" || host(body.client_uri) !== host(verified))) {
        throw new Error("simulator: 400 verified client_uri host cannot change");
      }
    }
    const record = client as Record<string, unknown>;
    const oldHost = client.client_uri ? host(client.client_uri) : undefined;
    for (const [field, value] of Object.entries(body)) {
      if (field === "visibility") continue;
      if (value === null) {
        if ((REQUIRED_FIELDS as readonly string[]).includes(field))
          throw new Error(`simulator: 400 null ${field}`);
        delete record[field];
      } else {
        record[field] = structuredClone(value);
      }
    }
    serverScopes(client);
    if ("client_uri" in body && (client.client_uri ? host(client.client_uri) : undefined) !== oldHost) {
      startVerification(client, options);
    }
    if (body.visibility === "public") {
      assertPromotable(client);
      client.visibility = "public";
    }
    client.updated_at = nextStamp();
  }
  for (const a of plan.adoptions) {
    own(a.account_id).push({
      client_id: a.client_id,
      client_name: a.client_name,
      origin: "adopted",
      since: "2025-06-01T00:00:00Z",
    });
  }
  for (const s of plan.stale_inventory) {
    inventory.accounts[s.account_id] = own(s.account_id).filter((e) => e.client_id !== s.client_id);
  }
  return { live, inventory };
}

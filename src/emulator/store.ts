import { createHash, timingSafeEqual } from "node:crypto";
import { StateError } from "../errors.js";
import { VERIFICATION_STATUSES, type Visibility } from "../api/oauth-clients.js";
import {
  ACCOUNT_ID_PATTERN,
  AUTH_METHOD_CLASS_CHANGE_REFUSED,
  CLIENT_ID_HEX_LENGTH,
  EMPTY_PATCH_BUMPS_UPDATED_AT,
  SECRET_HEX_LENGTH,
  VERIFICATION_RULES,
  VERIFICATION_TOKEN_HEX_LENGTH,
  VISIBILITY_RULES,
  verificationText,
} from "./behaviour.js";
import { fail } from "./failure.js";
import { OAuthGrants } from "./grants.js";
import type { Prng } from "./prng.js";
import type { ScopeCatalogue } from "./scopes.js";
import {
  applyPatchBody,
  hostOf,
  isIdentityScope,
  isPlainObject,
  validateCreateBody,
  type ClientFields,
} from "./validate.js";

/**
 * The emulator's state and its rules, with no HTTP in sight: accounts, clients, secrets and the
 * transitions of docs/API-BEHAVIOUR.md (create, PATCH, promotion, verification, rotation). Every method
 * either returns a result or throws an `ApiFailure` having changed nothing, so the HTTP layer only maps
 * routes to calls and failures to envelopes, and the rules can be tested without a socket.
 *
 * Memory: one object per client plus two SHA-256 hex digests; secrets themselves are never kept, so
 * neither memory nor the state file holds a usable secret.
 */

export type VerificationStatus = (typeof VERIFICATION_STATUSES)[number];

/** A client as every read endpoint returns it (unset optional fields absent). */
export type EmulatedClient = ClientFields & {
  client_id: string;
  visibility: Visibility;
  client_uri_verification?: { status: VerificationStatus; text: string };
  has_rotated_secret: boolean;
  created_at: string;
  updated_at: string;
  promoted_at?: string;
};

/** Which of a client's secrets a value matched. */
export type SecretSlot = "current" | "rotated";

interface StoredClient {
  client: EmulatedClient;
  /** SHA-256 hex of the newest secret; absent for `none` clients. */
  current?: string;
  /** SHA-256 hex of the previous secret while `has_rotated_secret` is true. */
  rotated?: string;
}

/** Where the store draws ids and secrets from, and what time it is. */
export interface StoreDeps {
  catalogue: ScopeCatalogue;
  now: () => Date;
  /** Current PRNG streams; a function because a reset re-seeds them. */
  random: () => { ids: Prng; secrets: Prng };
}

/** The on-disk form (`statePath`): version, then every client with its secret digests. */
export interface StoreSnapshot {
  version: 1;
  clients: Array<{
    account_id: string;
    client: EmulatedClient;
    secret_sha256?: { current?: string; rotated?: string };
  }>;
}

/**
 * What happened to a client's secrets, and when (the store's clock, ISO 8601 with milliseconds):
 * `GET /__emulator/secret-events` lists these, so a test measures a consumer's window from the moment
 * a secret stopped working (`rotated_secret_deleted`, `client_deleted`) rather than from when the
 * reconciler's process ended. No secret, digest or token is in an event.
 */
export interface SecretEvent {
  at: string;
  account_id: string;
  client_id: string;
  event: "secret_issued" | "secret_rotated" | "rotated_secret_deleted" | "client_deleted";
}

/** Events kept: the newest this many (memory stays bounded on a long-running emulator). */
export const SECRET_EVENTS_KEPT = 10_000;

/** A client plus its account, as the control endpoint dumps it. */
export type DumpedClient = EmulatedClient & { account_id: string; has_secret: boolean };

const FIELD_ORDER = [
  "client_id",
  "visibility",
  "client_name",
  "client_uri",
  "client_uri_verification",
  "logo_uri",
  "policy_uri",
  "tos_uri",
  "redirect_uris",
  "post_logout_redirect_uris",
  "allowed_cors_origins",
  "grant_types",
  "response_types",
  "scopes",
  "optional_scopes",
  "token_endpoint_auth_method",
  "has_rotated_secret",
  "created_at",
  "updated_at",
  "promoted_at",
] as const;

/** The OAuth-clients state of every account. */
export class ClientStore {
  readonly #deps: StoreDeps;
  readonly #accounts = new Map<string, Map<string, StoredClient>>();
  /**
   * The authorization server's codes and tokens (src/emulator/grants.ts), kept beside the clients
   * they were issued to: deleting a client revokes them all, rotating its secret revokes none.
   */
  readonly grants: OAuthGrants;
  #events: SecretEvent[] = [];

  constructor(deps: StoreDeps) {
    this.#deps = deps;
    this.grants = new OAuthGrants(deps.now);
  }

  /** Number of clients across all accounts. */
  get size(): number {
    let n = 0;
    for (const clients of this.#accounts.values()) n += clients.size;
    return n;
  }

  /** The scope catalogue (`GET /oauth/scopes`). */
  scopes() {
    return this.#deps.catalogue.items;
  }

  /** Every client of an account, in creation order. */
  list(accountId: string): EmulatedClient[] {
    checkAccount(accountId);
    return [...(this.#accounts.get(accountId)?.values() ?? [])].map((s) => s.client);
  }

  get(accountId: string, clientId: string): EmulatedClient {
    return this.#find(accountId, clientId).client;
  }

  /** Create: validates, generates id and (for confidential clients) a secret returned only here. */
  create(accountId: string, body: unknown): { client: EmulatedClient; client_secret?: string } {
    checkAccount(accountId);
    const fields = validateCreateBody(requireObject(body), this.#deps.catalogue);
    const now = this.#timestamp();
    const client_id = this.#newClientId();
    const secret = fields.token_endpoint_auth_method === "none" ? undefined : this.#newSecret();
    const client = ordered({
      ...fields,
      client_id,
      visibility: "private",
      ...(fields.client_uri === undefined ? {} : { client_uri_verification: this.#pending(undefined) }),
      has_rotated_secret: false,
      created_at: now,
      updated_at: now,
    });
    const stored: StoredClient = secret === undefined ? { client } : { client, current: digest(secret) };
    this.#accountMap(accountId).set(client_id, stored);
    if (secret !== undefined) this.#record(accountId, client_id, "secret_issued");
    return secret === undefined ? { client } : { client, client_secret: secret };
  }

  /** PATCH: partial, arrays whole, null clears optionals, merged result re-validated; then visibility. */
  update(accountId: string, clientId: string, body: unknown): EmulatedClient {
    const stored = this.#find(accountId, clientId);
    const prev = stored.client;
    const outcome = applyPatchBody(fieldsOf(prev), requireObject(body), this.#deps.catalogue);
    checkAuthMethodChange(prev, outcome.fields);
    const verification = outcome.sent.has("client_uri")
      ? this.#nextVerification(prev, outcome.fields.client_uri)
      : prev.client_uri_verification;
    const changed = outcome.sent.size > 0 || outcome.visibility !== undefined;
    const next = ordered({
      ...outcome.fields,
      client_id: prev.client_id,
      visibility: prev.visibility,
      ...(verification === undefined ? {} : { client_uri_verification: verification }),
      has_rotated_secret: prev.has_rotated_secret,
      created_at: prev.created_at,
      updated_at: changed || EMPTY_PATCH_BUMPS_UPDATED_AT ? this.#timestamp() : prev.updated_at,
      ...(prev.promoted_at === undefined ? {} : { promoted_at: prev.promoted_at }),
    });
    if (outcome.visibility !== undefined) this.#applyVisibility(prev, next, outcome.visibility);
    stored.client = next;
    return next;
  }

  delete(accountId: string, clientId: string): { id: string } {
    this.#find(accountId, clientId);
    this.#accounts.get(accountId)?.delete(clientId);
    this.grants.revokeClient(clientId);
    this.#record(accountId, clientId, "client_deleted");
    return { id: clientId };
  }

  /** rotate_secret: a second secret, returned once; refused while one is rotated and for `none`. */
  rotateSecret(accountId: string, clientId: string): { client_secret: string } {
    const stored = this.#find(accountId, clientId);
    if (stored.client.token_endpoint_auth_method === "none" || stored.current === undefined) {
      throw fail(
        "rotateRefused",
        `client ${clientId}: token_endpoint_auth_method none has no secret to rotate`,
        {
          client_id: clientId,
        },
      );
    }
    if (stored.client.has_rotated_secret) {
      throw fail(
        "rotateRefused",
        `client ${clientId}: has_rotated_secret is true; delete the rotated secret before rotating again`,
        { client_id: clientId },
      );
    }
    const secret = this.#newSecret();
    stored.rotated = stored.current;
    stored.current = digest(secret);
    stored.client = { ...stored.client, has_rotated_secret: true, updated_at: this.#timestamp() };
    this.#record(accountId, clientId, "secret_rotated");
    return { client_secret: secret };
  }

  /** DELETE rotate_secret: keeps only the newest secret. */
  deleteRotatedSecret(accountId: string, clientId: string): { id: string } {
    const stored = this.#find(accountId, clientId);
    if (!stored.client.has_rotated_secret) {
      throw fail("noRotatedSecret", `client ${clientId}: no rotated secret to delete`, {
        client_id: clientId,
      });
    }
    delete stored.rotated;
    stored.client = { ...stored.client, has_rotated_secret: false, updated_at: this.#timestamp() };
    this.#record(accountId, clientId, "rotated_secret_deleted");
    return { id: clientId };
  }

  /** The secret events of {@link SecretEvent}, oldest first, of one account or client when named. */
  secretEvents(filter: { account_id?: string; client_id?: string } = {}): SecretEvent[] {
    return this.#events.filter(
      (e) =>
        (filter.account_id === undefined || e.account_id === filter.account_id) &&
        (filter.client_id === undefined || e.client_id === filter.client_id),
    );
  }

  #record(account_id: string, client_id: string, event: SecretEvent["event"]): void {
    this.#events.push({ at: this.#timestamp(), account_id, client_id, event });
    if (this.#events.length > SECRET_EVENTS_KEPT)
      this.#events.splice(0, this.#events.length - SECRET_EVENTS_KEPT);
  }

  /** Simulates the DNS check finishing (control endpoint): sets the verification status. */
  setVerification(accountId: string, clientId: string, status: unknown): EmulatedClient {
    const stored = this.#find(accountId, clientId);
    if (typeof status !== "string" || !(VERIFICATION_STATUSES as readonly string[]).includes(status)) {
      throw fail("invalidField", `status: must be one of ${VERIFICATION_STATUSES.join(", ")}`, {
        field: "status",
      });
    }
    const prev = stored.client.client_uri_verification;
    if (stored.client.client_uri === undefined || prev === undefined) {
      throw fail("invalidField", `client ${clientId}: has no client_uri to verify`, { client_id: clientId });
    }
    stored.client = {
      ...stored.client,
      client_uri_verification: { status: status as VerificationStatus, text: prev.text },
      updated_at: VERIFICATION_RULES.bumpUpdatedAtOnStatusChange
        ? this.#timestamp()
        : stored.client.updated_at,
    };
    return stored.client;
  }

  /** Whether a secret is one of the client's live secrets, and which. */
  checkSecret(
    accountId: string,
    clientId: string,
    secret: unknown,
  ): { valid: boolean; slot: SecretSlot | null } {
    const stored = this.#find(accountId, clientId);
    if (typeof secret !== "string" || secret === "") return { valid: false, slot: null };
    const d = digest(secret);
    if (stored.current !== undefined && sameDigest(d, stored.current))
      return { valid: true, slot: "current" };
    if (stored.rotated !== undefined && sameDigest(d, stored.rotated))
      return { valid: true, slot: "rotated" };
    return { valid: false, slot: null };
  }

  /**
   * A client by id alone, in whichever account holds it: the authorization server's requests name a
   * client, never an account. Undefined for an unknown (or deleted) client.
   */
  oauthClient(clientId: string): EmulatedClient | undefined {
    return this.#locate(clientId)?.client;
  }

  /**
   * Which live secret of a client `secret` is: the current one or, while `has_rotated_secret` is
   * true, the rotated one (DELETE rotate_secret removes it). Null for any other value, for a `none`
   * client and for an unknown client.
   */
  oauthSecretSlot(clientId: string, secret: string): SecretSlot | null {
    const stored = this.#locate(clientId);
    if (stored === undefined || secret === "") return null;
    const d = digest(secret);
    if (stored.current !== undefined && sameDigest(d, stored.current)) return "current";
    if (stored.rotated !== undefined && sameDigest(d, stored.rotated)) return "rotated";
    return null;
  }

  /** Every client (of one account, or all), without secrets. */
  dump(accountId?: string): DumpedClient[] {
    const out: DumpedClient[] = [];
    for (const [account, clients] of this.#accounts) {
      if (accountId !== undefined && account !== accountId) continue;
      for (const s of clients.values())
        out.push({ account_id: account, ...s.client, has_secret: s.current !== undefined });
    }
    return out;
  }

  clear(): void {
    this.#accounts.clear();
    this.grants.clear();
    this.#events = [];
  }

  /** The persisted form: clients and secret digests, no secret values. */
  toSnapshot(): StoreSnapshot {
    const clients: StoreSnapshot["clients"] = [];
    for (const [account_id, map] of this.#accounts) {
      for (const s of map.values()) {
        const digests = {
          ...(s.current ? { current: s.current } : {}),
          ...(s.rotated ? { rotated: s.rotated } : {}),
        };
        clients.push({ account_id, client: s.client, ...(s.current ? { secret_sha256: digests } : {}) });
      }
    }
    return { version: 1, clients };
  }

  /** Replaces the state with a snapshot read back from disk. */
  loadSnapshot(snapshot: unknown, source: string): void {
    if (!isPlainObject(snapshot) || snapshot["version"] !== 1 || !Array.isArray(snapshot["clients"])) {
      throw new StateError("E_EMULATOR_STATE", `state file ${source}: not an emulator state (version 1)`, {
        context: { path: source },
      });
    }
    this.clear();
    for (const entry of snapshot["clients"] as unknown[]) {
      if (
        !isPlainObject(entry) ||
        typeof entry["account_id"] !== "string" ||
        !isPlainObject(entry["client"])
      ) {
        throw new StateError("E_EMULATOR_STATE", `state file ${source}: malformed client entry`, {
          context: { path: source },
        });
      }
      const client = entry["client"] as unknown as EmulatedClient;
      const digests = isPlainObject(entry["secret_sha256"]) ? entry["secret_sha256"] : {};
      const stored: StoredClient = { client };
      if (typeof digests["current"] === "string") stored.current = digests["current"];
      if (typeof digests["rotated"] === "string") stored.rotated = digests["rotated"];
      this.#accountMap(entry["account_id"]).set(client.client_id, stored);
    }
  }

  #applyVisibility(prev: EmulatedClient, next: EmulatedClient, visibility: unknown): void {
    if (visibility !== "public") {
      if (prev.visibility === "public") {
        throw fail("demotionRefused", `client ${prev.client_id}: public clients cannot be made private`, {
          client_id: prev.client_id,
        });
      }
      throw fail("fieldNotAllowed", "visibility: only 'public' is accepted", { field: "visibility" });
    }
    if (prev.visibility === "public" && VISIBILITY_RULES.repeatPromotionIsNoop) return;
    const missing = promotionGaps(next);
    if (missing.length > 0) {
      throw fail(
        "promotionRefused",
        `client ${prev.client_id}: cannot promote to public: ${missing.join("; ")}`,
        {
          client_id: prev.client_id,
        },
      );
    }
    next.visibility = "public";
    next.promoted_at = next.updated_at;
  }

  /** The verification after `client_uri` was sent on a PATCH (behaviour.ts, VERIFICATION_RULES). */
  #nextVerification(
    prev: EmulatedClient,
    uri: string | undefined,
  ): EmulatedClient["client_uri_verification"] {
    const was = prev.client_uri_verification;
    const verifiedHost = was?.status === "verified" && prev.client_uri ? hostOf(prev.client_uri) : undefined;
    if (uri === undefined) {
      if (verifiedHost !== undefined && VERIFICATION_RULES.clearingVerifiedUriIsHostChange) {
        throw fail(
          "clientUriHostLocked",
          `client_uri: host ${verifiedHost} is verified and cannot be removed`,
          {
            field: "client_uri",
          },
        );
      }
      return undefined;
    }
    const host = hostOf(uri);
    if (verifiedHost !== undefined) {
      if (host !== verifiedHost) {
        throw fail(
          "clientUriHostLocked",
          `client_uri: host ${verifiedHost} is verified and cannot change to ${host}`,
          {
            field: "client_uri",
          },
        );
      }
      return was;
    }
    const sameHost = prev.client_uri !== undefined && hostOf(prev.client_uri) === host;
    return this.#pending(sameHost && VERIFICATION_RULES.keepTokenForSameHost ? was?.text : undefined);
  }

  #pending(text: string | undefined): { status: VerificationStatus; text: string } {
    return {
      status: VERIFICATION_RULES.restartStatus,
      text: text ?? verificationText(this.#deps.random().secrets.hex(VERIFICATION_TOKEN_HEX_LENGTH)),
    };
  }

  #find(accountId: string, clientId: string): StoredClient {
    checkAccount(accountId);
    const stored = this.#accounts.get(accountId)?.get(clientId);
    if (!stored)
      throw fail("notFound", `oauth client ${clientId} not found in account ${accountId}`, {
        client_id: clientId,
      });
    return stored;
  }

  #locate(clientId: string): StoredClient | undefined {
    for (const clients of this.#accounts.values()) {
      const stored = clients.get(clientId);
      if (stored !== undefined) return stored;
    }
    return undefined;
  }

  #accountMap(accountId: string): Map<string, StoredClient> {
    let map = this.#accounts.get(accountId);
    if (!map) {
      map = new Map();
      this.#accounts.set(accountId, map);
    }
    return map;
  }

  #newClientId(): string {
    for (;;) {
      const id = this.#deps.random().ids.hex(CLIENT_ID_HEX_LENGTH);
      if (![...this.#accounts.values()].some((m) => m.has(id))) return id;
    }
  }

  #newSecret(): string {
    return this.#deps.random().secrets.hex(SECRET_HEX_LENGTH);
  }

  #timestamp(): string {
    return this.#deps.now().toISOString();
  }
}

/** A malformed account id is an unknown account (behaviour.ts). */
function checkAccount(accountId: string): void {
  if (!ACCOUNT_ID_PATTERN.test(accountId)) {
    throw fail(
      "notFound",
      `Could not route to /accounts/${accountId}/oauth_clients, perhaps your object identifier is invalid?`,
      { account_id: accountId },
    );
  }
}

function requireObject(body: unknown): Record<string, unknown> {
  if (!isPlainObject(body)) throw fail("invalidJson", "request body must be a JSON object");
  return body;
}

function checkAuthMethodChange(prev: EmulatedClient, next: ClientFields): void {
  const wasPublic = prev.token_endpoint_auth_method === "none";
  const isPublic = next.token_endpoint_auth_method === "none";
  if (AUTH_METHOD_CLASS_CHANGE_REFUSED && wasPublic !== isPublic) {
    throw fail(
      "authMethodChangeRefused",
      `token_endpoint_auth_method: cannot change from ${prev.token_endpoint_auth_method} to ${next.token_endpoint_auth_method}`,
      { field: "token_endpoint_auth_method" },
    );
  }
}

/** What a client lacks for promotion (docs/API-BEHAVIOUR.md, "Update" [doc]). */
function promotionGaps(client: EmulatedClient): string[] {
  const gaps: string[] = [];
  if (client.client_name.trim() === "") gaps.push("client_name is empty");
  if (client.logo_uri === undefined) gaps.push("logo_uri is not set");
  if (client.client_uri === undefined) gaps.push("client_uri is not set");
  else if (client.client_uri_verification?.status !== "verified")
    gaps.push("client_uri host is not verified");
  if (!client.scopes.some((s) => !isIdentityScope(s))) gaps.push("no non-identity scope");
  return gaps;
}

/** The writable fields of a client (what PATCH merges onto). */
function fieldsOf(client: EmulatedClient): ClientFields {
  const {
    client_id: _id,
    visibility: _v,
    client_uri_verification: _cv,
    has_rotated_secret: _h,
    created_at: _c,
    updated_at: _u,
    promoted_at: _p,
    ...fields
  } = client;
  return fields;
}

/** A client with keys in a stable order and no undefined values. */
function ordered(client: EmulatedClient): EmulatedClient {
  const out: Record<string, unknown> = {};
  const source = client as unknown as Record<string, unknown>;
  for (const key of FIELD_ORDER) if (source[key] !== undefined) out[key] = source[key];
  return out as unknown as EmulatedClient;
}

function digest(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

function sameDigest(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

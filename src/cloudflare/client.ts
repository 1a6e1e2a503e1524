import { Secret } from "../secret.js";
import { CloudflareApiError, isApiError } from "./errors.js";
import type { ClientOptions } from "./options.js";
import type { RateBudgetView } from "./rate-budget.js";
import { singleIdSchema } from "../api/envelope.js";
import {
  createdClientSchema,
  liveClientListSchema,
  liveClientSchema,
  rotateSecretResultSchema,
  scopeListSchema,
  type CreateClientBody,
  type LiveClient,
  type OAuthScope,
  type UpdateClientBody,
} from "../api/oauth-clients.js";
import { Transport, type AmbiguityVerdict, type CallOptions } from "./transport.js";

/**
 * The OAuth-clients API as the reconciler sees it: the reconciler's only door to Cloudflare.
 *
 * Reading and writing are two interfaces so that dry-run is decided once, where the program is wired
 * (docs/DESIGN.md, "Dry-run decided once"): plan-only code gets {@link createReader}, whose object has no
 * write method to reach, and only `apply`/`rotate` build the full {@link CloudflareApi}.
 *
 * Writes that are not safe to repeat are never retried blindly after an ambiguous failure (timeout,
 * connection reset after sending, 5xx): the API has no idempotency key (docs/API-BEHAVIOUR.md,
 * "Rate limits").
 * - create: lists the account and looks for a client with the same `client_name` that was not there
 *   before the first attempt; if found, it is returned with `secretLost: true` (the caller mints a
 *   known secret by rotating); only if none is found is the create sent again.
 * - rotate_secret: re-reads the client; if `has_rotated_secret` is now true the rotation happened and
 *   its secret is lost, which fails with E_ROTATE_AMBIGUOUS (the rotation layer decides what next);
 *   otherwise the rotate is sent again.
 * - DELETE client / DELETE rotate_secret: re-read the client and stop if the change is already there.
 * Each check runs after the backoff wait, so a server still busy with the lost request has time to
 * finish; a server slower than that (a timeout on a slow create) can still apply it after the check,
 * which is the one residual race: the API offers no idempotency key to close it.
 * GET and PATCH are retried as they are. A 429 or a connection refused before sending is retried for
 * every method.
 */

/** Route templates: low-cardinality labels for logs, metrics and schema errors. */
export const ROUTES = {
  clients: "/accounts/:account_id/oauth_clients",
  client: "/accounts/:account_id/oauth_clients/:client_id",
  rotateSecret: "/accounts/:account_id/oauth_clients/:client_id/rotate_secret",
  scopes: "/oauth/scopes",
} as const;

export type { CallOptions } from "./transport.js";

/** Read-only calls: all that `plan`, `validate` and `export` need (token permission "OAuth Client Read"). */
export interface OAuthClientsReader {
  listClients(accountId: string, opts?: CallOptions): Promise<LiveClient[]>;
  getClient(accountId: string, clientId: string, opts?: CallOptions): Promise<LiveClient>;
  listScopes(opts?: CallOptions): Promise<OAuthScope[]>;
}

export interface CreateOptions extends CallOptions {
  /**
   * Ids of live clients in the account that already carry this `client_name`, as the caller last saw
   * them (usually none). Used to tell the client an ambiguous create made from ones that were there.
   * When omitted, the account is listed once before the first attempt.
   */
  existingClientIds?: readonly string[];
}

export interface CreateResult {
  client: LiveClient;
  /** The secret, returned once by the API; null for `none` clients and when `secretLost`. */
  secret: Secret | null;
  /**
   * True when the client was created but its secret never reached us (the create's answer was lost and
   * the client was found by listing). The caller should rotate to mint a secret it knows.
   */
  secretLost: boolean;
  /** True when the client was found by listing after an ambiguous failure rather than from the answer. */
  recovered: boolean;
}

/** Calls that change Cloudflare; only constructed when the program is allowed to write. */
export interface OAuthClientsWriter {
  createClient(accountId: string, body: CreateClientBody, opts?: CreateOptions): Promise<CreateResult>;
  updateClient(
    accountId: string,
    clientId: string,
    body: UpdateClientBody,
    opts?: CallOptions,
  ): Promise<LiveClient>;
  deleteClient(accountId: string, clientId: string, opts?: CallOptions): Promise<void>;
  /** Mints a second secret (docs/API-BEHAVIOUR.md, "Secrets and rotation"); the old one stays valid. */
  rotateSecret(accountId: string, clientId: string, opts?: CallOptions): Promise<Secret>;
  /** Drops the old secret, keeping only the newest: call only once consumers hold the new one. */
  deleteRotatedSecret(accountId: string, clientId: string, opts?: CallOptions): Promise<void>;
}

/** What every handle offers besides API calls. */
export interface ApiHandle {
  /** The shared rate budget, read-only, for metrics. */
  readonly budget: RateBudgetView;
  /** Closes keep-alive connections; the handle is unusable afterwards. */
  close(): Promise<void>;
}

export type ReaderHandle = OAuthClientsReader & ApiHandle;

/** Reader and writer over one transport (one keep-alive agent, one rate budget). */
export class CloudflareApi implements OAuthClientsReader, OAuthClientsWriter, ApiHandle {
  readonly budget: RateBudgetView;
  readonly #t: Transport;

  constructor(options: ClientOptions) {
    this.#t = new Transport(options);
    const budget = this.#t.budget;
    this.budget = Object.freeze({ snapshot: () => budget.snapshot() });
  }

  async listClients(accountId: string, opts?: CallOptions): Promise<LiveClient[]> {
    const path = `/accounts/${segment(accountId, "account id")}/oauth_clients`;
    return this.#t.call(
      {
        method: "GET",
        route: ROUTES.clients,
        path,
        result: liveClientListSchema,
        map: identity,
        verify: (clients, info) => countMismatch(clients.length, info),
        idempotent: true,
      },
      opts,
    );
  }

  async getClient(accountId: string, clientId: string, opts?: CallOptions): Promise<LiveClient> {
    return this.#t.call(
      {
        method: "GET",
        route: ROUTES.client,
        path: clientPath(accountId, clientId),
        result: liveClientSchema,
        map: identity,
        idempotent: true,
      },
      opts,
    );
  }

  async listScopes(opts?: CallOptions): Promise<OAuthScope[]> {
    return this.#t.call(
      {
        method: "GET",
        route: ROUTES.scopes,
        path: "/oauth/scopes",
        result: scopeListSchema,
        map: identity,
        idempotent: true,
      },
      opts,
    );
  }

  async createClient(
    accountId: string,
    body: CreateClientBody,
    opts: CreateOptions = {},
  ): Promise<CreateResult> {
    const path = `/accounts/${segment(accountId, "account id")}/oauth_clients`;
    const before = new Set(
      opts.existingClientIds ?? (await this.#idsNamed(accountId, body.client_name, opts)),
    );
    const needsSecret = body.token_endpoint_auth_method !== "none";
    return this.#t.call(
      {
        method: "POST",
        route: ROUTES.clients,
        path,
        body,
        result: createdClientSchema,
        idempotent: false,
        map: ({ client_secret, ...client }): CreateResult => ({
          client,
          secret: client_secret ? new Secret(client_secret) : null,
          secretLost: needsSecret && !client_secret,
          recovered: false,
        }),
        onAmbiguous: (error, signal) =>
          this.#findCreated(accountId, body, before, needsSecret, error, signal),
      },
      opts,
    );
  }

  async updateClient(
    accountId: string,
    clientId: string,
    body: UpdateClientBody,
    opts?: CallOptions,
  ): Promise<LiveClient> {
    return this.#t.call(
      {
        method: "PATCH",
        route: ROUTES.client,
        path: clientPath(accountId, clientId),
        body,
        result: liveClientSchema,
        map: identity,
        // Sending the same partial body twice leaves the same client (docs/API-BEHAVIOUR.md, "Update").
        idempotent: true,
      },
      opts,
    );
  }

  async deleteClient(accountId: string, clientId: string, opts?: CallOptions): Promise<void> {
    await this.#t.call(
      {
        method: "DELETE",
        route: ROUTES.client,
        path: clientPath(accountId, clientId),
        result: singleIdSchema,
        map: () => undefined,
        idempotent: false,
        onAmbiguous: async (_error, signal): Promise<AmbiguityVerdict<undefined>> => {
          try {
            await this.getClient(accountId, clientId, { signal });
            return { action: "retry" };
          } catch (e) {
            if (isApiError(e, "E_API_NOT_FOUND")) return { action: "resolve", value: undefined };
            throw e;
          }
        },
      },
      opts,
    );
  }

  async rotateSecret(accountId: string, clientId: string, opts?: CallOptions): Promise<Secret> {
    return this.#t.call(
      {
        method: "POST",
        route: ROUTES.rotateSecret,
        path: `${clientPath(accountId, clientId)}/rotate_secret`,
        result: rotateSecretResultSchema,
        map: (r) => new Secret(r.client_secret),
        idempotent: false,
        onAmbiguous: (error, signal) => this.#checkRotation(accountId, clientId, error, signal),
      },
      opts,
    );
  }

  async deleteRotatedSecret(accountId: string, clientId: string, opts?: CallOptions): Promise<void> {
    await this.#t.call(
      {
        method: "DELETE",
        route: ROUTES.rotateSecret,
        path: `${clientPath(accountId, clientId)}/rotate_secret`,
        result: singleIdSchema,
        map: () => undefined,
        idempotent: false,
        onAmbiguous: async (_error, signal): Promise<AmbiguityVerdict<undefined>> => {
          const client = await this.getClient(accountId, clientId, { signal });
          return client.has_rotated_secret ? { action: "retry" } : { action: "resolve", value: undefined };
        },
      },
      opts,
    );
  }

  close(): Promise<void> {
    return this.#t.close();
  }

  async #idsNamed(accountId: string, name: string, opts: CallOptions): Promise<string[]> {
    const clients = await this.listClients(accountId, { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return clients.filter((c) => c.client_name === name).map((c) => c.client_id);
  }

  /** After an ambiguous create: did it make a client? Never lets a second create go out if it did. */
  async #findCreated(
    accountId: string,
    body: CreateClientBody,
    before: ReadonlySet<string>,
    needsSecret: boolean,
    error: CloudflareApiError,
    signal: AbortSignal | undefined,
  ): Promise<AmbiguityVerdict<CreateResult>> {
    let clients: LiveClient[];
    try {
      clients = await this.listClients(accountId, { signal });
    } catch (cause) {
      if (isApiError(cause, "E_API_ABORTED")) throw cause;
      throw new CloudflareApiError(
        "E_CREATE_AMBIGUOUS",
        `${error.method} ${error.path}: create of "${body.client_name}" may have succeeded (${error.code}) and the account could not be listed to check: list before creating again`,
        {
          method: error.method,
          route: error.route,
          path: error.path,
          status: error.status,
          ambiguous: true,
          cause,
        },
      );
    }
    const made = clients
      .filter((c) => c.client_name === body.client_name && !before.has(c.client_id))
      .sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? ""));
    const client = made[0];
    if (!client) return { action: "retry" };
    this.#t.log.warn(
      { route: ROUTES.clients, client_id: client.client_id, candidates: made.length, cause: error.code },
      "create answer lost; found the client it made by listing",
    );
    return { action: "resolve", value: { client, secret: null, secretLost: needsSecret, recovered: true } };
  }

  /** After an ambiguous rotate: a rotation that happened has minted a secret nobody holds. */
  async #checkRotation(
    accountId: string,
    clientId: string,
    error: CloudflareApiError,
    signal: AbortSignal | undefined,
  ): Promise<AmbiguityVerdict<Secret>> {
    let client: LiveClient;
    try {
      client = await this.getClient(accountId, clientId, { signal });
    } catch (cause) {
      if (isApiError(cause, "E_API_ABORTED")) throw cause;
      throw rotateAmbiguous(error, "and the client could not be read to check", cause);
    }
    if (!client.has_rotated_secret) return { action: "retry" };
    throw rotateAmbiguous(error, "and has_rotated_secret is now true: the new secret is lost", undefined);
  }
}

function rotateAmbiguous(error: CloudflareApiError, detail: string, cause: unknown): CloudflareApiError {
  return new CloudflareApiError(
    "E_ROTATE_AMBIGUOUS",
    `${error.method} ${error.path}: rotation may have happened (${error.code}) ${detail}; the old secret still works — do not delete the rotated secret until consumers hold a known one`,
    {
      method: error.method,
      route: error.route,
      path: error.path,
      status: error.status,
      ambiguous: true,
      cause,
    },
  );
}

/** Reader and writer: for `apply`, `rotate` and the daemon. */
export function createClient(options: ClientOptions): CloudflareApi {
  return new CloudflareApi(options);
}

/**
 * A handle with only the read methods (plus `budget` and `close`): plan-only code holding it cannot
 * reach a write, not even through the prototype, because the full client stays in this closure.
 */
export function createReader(options: ClientOptions): ReaderHandle {
  const api = new CloudflareApi(options);
  return Object.freeze({
    listClients: (accountId: string, opts?: CallOptions) => api.listClients(accountId, opts),
    getClient: (accountId: string, clientId: string, opts?: CallOptions) =>
      api.getClient(accountId, clientId, opts),
    listScopes: (opts?: CallOptions) => api.listScopes(opts),
    budget: api.budget,
    close: () => api.close(),
  });
}

/**
 * A list whose `result_info.total_count` (when present) is not the number of clients it holds left
 * clients out, or holds a page of a longer list: either way it is not the account's whole list, and a
 * reconcile planned from it would re-create (or prune) what it did not see. The list is one page
 * (docs/API-BEHAVIOUR.md, "Endpoints"), so `total_count` must equal its length.
 */
export function countMismatch(
  length: number,
  info: Readonly<Record<string, unknown>> | undefined,
): string | null {
  const total = info?.["total_count"];
  if (typeof total !== "number" || !Number.isFinite(total) || total === length) return null;
  return `the list holds ${length} ${length === 1 ? "client" : "clients"} but result_info.total_count says ${total}; the answer is incomplete, nothing is planned from it`;
}

function identity<T>(value: T): T {
  return value;
}

function clientPath(accountId: string, clientId: string): string {
  return `/accounts/${segment(accountId, "account id")}/oauth_clients/${segment(clientId, "client id")}`;
}

/** A path segment: non-empty, URL-encoded, so an id can never change the route. */
function segment(value: string, what: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new CloudflareApiError("E_API_ARGUMENT", `${what} must be a non-empty string`, {
      method: "-",
      route: "-",
      path: "-",
    });
  }
  return encodeURIComponent(value);
}

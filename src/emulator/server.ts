import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { MAX_BODY_BYTES, RESET_RESEEDS_PRNG, USER_ENDPOINT_SCOPE } from "./behaviour.js";
import { authorise, identifyCaller, type AuthConfig } from "./auth.js";
import { ApiFailure, fail } from "./failure.js";
import { mergeFaultSettings, roll, shapeListAnswer, type FaultSettings } from "./faults.js";
import { bearerToken, OAuthServer, type OAuthUser } from "./oauth.js";
import type { StateFile } from "./persist.js";
import { createStreams, type RandomStreams } from "./prng.js";
import { RateLimiter, rateLimitHeaders, type RateLimitConfig } from "./ratelimit.js";
import { matchRoute, unmatchedTemplate, type RouteMatch } from "./routes.js";
import { Stats } from "./stats.js";
import { ClientStore } from "./store.js";
import type { ScopeCatalogue } from "./scopes.js";

/**
 * The HTTP layer: node:http request handling for /client/v4 (envelopes, auth, rate limit, faults)
 * and the unauthenticated control endpoints under /__emulator/. The rules live in the store; this
 * module maps routes to store calls and `ApiFailure`s to Cloudflare failure envelopes.
 */

/** A request body; null when it was larger than MAX_BODY_BYTES. */
type Body = Buffer | null;

export const API_PREFIX = "/client/v4";
export const CONTROL_PREFIX = "/__emulator/";

/** Everything the handler needs, built once by `startEmulator`. */
export interface EmulatorSetup {
  seed: number;
  auth: AuthConfig;
  rateLimit: RateLimitConfig;
  faults: FaultSettings;
  catalogue: ScopeCatalogue;
  now: () => Date;
  /** The test user of the authorization server and of `GET /client/v4/user`. */
  oauthUser: OAuthUser;
}

/** The running emulator's state: store, counters, fault settings, PRNG streams. */
export class Emulator {
  readonly store: ClientStore;
  readonly stats = new Stats();
  readonly limiter: RateLimiter;
  faults: FaultSettings;
  stateFile: StateFile | undefined;
  /** The origin, which is the OAuth issuer; set by `startEmulator` once the listener is bound. */
  issuer = "http://emulator";
  readonly oauth: OAuthServer;
  readonly #setup: EmulatorSetup;
  /** Tokens revoked by `POST /__emulator/tokens`. */
  readonly #revoked = new Set<string>();
  #streams: RandomStreams;
  readonly #stopping = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();

  constructor(setup: EmulatorSetup) {
    this.#setup = setup;
    this.#streams = createStreams(setup.seed);
    this.faults = { ...setup.faults };
    this.limiter = new RateLimiter(setup.rateLimit, setup.now);
    this.store = new ClientStore({ catalogue: setup.catalogue, now: setup.now, random: () => this.#streams });
    this.oauth = new OAuthServer({
      store: this.store,
      user: setup.oauthUser,
      issuer: () => this.issuer,
      now: setup.now,
    });
  }

  /** The node:http request listener. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    const task = this.#handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) sendFailure(res, {}, internalFailure(error));
    });
    this.#inFlight.add(task);
    void task.finally(() => this.#inFlight.delete(task));
  };

  /** Stops new work (sleeps end at once) and waits for in-flight handlers and the last state write. */
  async drain(): Promise<void> {
    this.#stopping.abort();
    await Promise.allSettled([...this.#inFlight]);
    await this.stateFile?.flush();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://emulator").pathname;
    if (path.startsWith(CONTROL_PREFIX)) return this.#control(req, res, path.slice(CONTROL_PREFIX.length));
    if (OAuthServer.serves(path)) return this.oauth.handle(req, res, path, await readBody(req));
    if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
      return this.#api(req, res, path.slice(API_PREFIX.length));
    }
    sendFailure(res, {}, fail("noRoute", `No route for ${req.method ?? "GET"} ${path}`));
  }

  async #api(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? "GET";
    const match = matchRoute(method, path);
    const template = match?.route.template ?? unmatchedTemplate(method);
    const body = await readBody(req);
    if (this.faults.latencyMs > 0) {
      const aborted = await sleep(this.faults.latencyMs, false, { signal: this.#stopping.signal }).catch(
        () => true,
      );
      if (aborted) return void req.socket.destroy();
    }
    if (this.#stopping.signal.aborted) return void req.socket.destroy();
    if (roll(this.#streams.faults, this.faults.faultResetRate)) {
      this.stats.record(method, template, "reset");
      return void req.socket.destroy();
    }
    const caller = identifyCaller(req.headers, req.socket.remoteAddress ?? "unknown", {
      ...this.#setup.auth,
      revoked: this.#revoked,
    });
    const decision = this.limiter.take(caller.key);
    const headers = rateLimitHeaders(this.limiter.config, decision);
    if (decision.limited) {
      this.stats.record(method, template, 429);
      const wait = `rate limited: quota ${this.limiter.config.quota} per ${this.limiter.config.windowSeconds}s spent; retry in ${decision.resetSeconds}s`;
      return sendFailure(res, headers, fail("rateLimited", wait));
    }
    if (roll(this.#streams.faults, this.faults.fault5xxRate)) {
      this.stats.record(method, template, 500, true);
      return sendFailure(res, headers, fail("injected5xx", "Internal server error (injected fault)"));
    }
    try {
      if (match?.route.action !== "user" || !this.#oauthUserCall(req)) {
        authorise(caller, match?.route.write ?? false);
      }
      if (!match) throw fail("noRoute", `No route for ${method} ${API_PREFIX}${path}`);
      const result = this.#execute(match, body);
      if (match.route.write) {
        this.stateFile?.markDirty();
        if (roll(this.#streams.faults, this.faults.faultDropAfterCommitRate)) {
          this.stats.record(method, template, "dropped");
          return void req.socket.destroy();
        }
      }
      this.stats.record(method, template, 200);
      sendSuccess(res, headers, result.value, result.info);
    } catch (error) {
      const failure = error instanceof ApiFailure ? error : internalFailure(error);
      this.stats.record(method, template, failure.status);
      sendFailure(res, headers, failure);
    }
  }

  /**
   * `GET /user` with an access token of the authorization server (docs/API-BEHAVIOUR.md, "The OAuth
   * authorization server": login libraries read the profile there): true when the bearer is a live
   * access token, which then needs `user-details.read`; false leaves the API's own auth to decide.
   */
  #oauthUserCall(req: IncomingMessage): boolean {
    const grant = this.store.grants.accessGrant(bearerToken(req.headers["authorization"]));
    if (grant === undefined) return false;
    if (!grant.scopes.includes(USER_ENDPOINT_SCOPE)) {
      throw fail("userScopeMissing", `Authentication error: the access token lacks ${USER_ENDPOINT_SCOPE}`);
    }
    return true;
  }

  #execute(match: RouteMatch, body: Body): { value: unknown; info?: Record<string, number> } {
    const { account_id, client_id } = match.params;
    const store = this.store;
    switch (match.route.action) {
      case "list": {
        const answer = shapeListAnswer(store.list(account_id), this.faults, this.#streams.faults);
        if (answer.dropped > 0) this.stats.recordListDrop(answer.dropped);
        return {
          value: answer.clients,
          info: { ...pageInfo(answer.clients.length), total_count: answer.totalCount },
        };
      }
      case "create": {
        const { client, client_secret } = store.create(account_id, parseJson(body));
        return { value: client_secret === undefined ? client : { ...client, client_secret } };
      }
      case "get":
        return { value: store.get(account_id, client_id) };
      case "update":
        return { value: store.update(account_id, client_id, parseJson(body)) };
      case "delete":
        return { value: store.delete(account_id, client_id) };
      case "rotate":
        return { value: store.rotateSecret(account_id, client_id) };
      case "deleteRotated":
        return { value: store.deleteRotatedSecret(account_id, client_id) };
      case "scopes": {
        const items = store.scopes();
        return { value: items, info: pageInfo(items.length) };
      }
      case "user":
        return { value: { id: this.#setup.oauthUser.id, email: this.#setup.oauthUser.email } };
    }
  }

  async #control(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const method = req.method ?? "GET";
    const body = await readBody(req);
    try {
      const result = this.#controlAction(`${method} ${name.replace(/\/$/, "")}`, req, body);
      sendSuccess(res, {}, result);
    } catch (error) {
      sendFailure(res, {}, error instanceof ApiFailure ? error : internalFailure(error));
    }
  }

  #controlAction(action: string, req: IncomingMessage, body: Body): unknown {
    switch (action) {
      case "GET stats":
        return this.stats.snapshot();
      case "POST reset":
        this.store.clear();
        this.stats.clear();
        this.limiter.clear();
        if (RESET_RESEEDS_PRNG) this.#streams = createStreams(this.#setup.seed);
        this.stateFile?.markDirty();
        return { reset: true };
      case "GET faults":
        return this.faults;
      case "POST faults":
        this.faults = mergeFaultSettings(this.faults, parseJson(body));
        return this.faults;
      case "GET in-flight":
        // API requests still being handled (this control request not counted): a test waits for 0
        // instead of sleeping past the latency of a request a client gave up on.
        return { requests: this.#inFlight.size - 1 };
      case "POST tokens": {
        // `{ "revoke": [token...], "restore": [token...] }`: a token revoked answers 401/403 like an
        // unknown one until restored (tests of a daemon whose credentials are revoked and fixed).
        const b = parseJson(body) as { revoke?: unknown; restore?: unknown } | null;
        const list = (v: unknown): string[] =>
          Array.isArray(v) && v.every((t) => typeof t === "string") ? v : [];
        for (const token of list(b?.revoke)) this.#revoked.add(token);
        for (const token of list(b?.restore)) this.#revoked.delete(token);
        return { revoked: this.#revoked.size };
      }
      case "POST verification": {
        const b = controlBody(body, ["account_id", "client_id"]);
        const client = this.store.setVerification(
          b["account_id"] as string,
          b["client_id"] as string,
          b["status"],
        );
        this.stateFile?.markDirty();
        return client;
      }
      case "POST check-secret": {
        const b = controlBody(body, ["account_id", "client_id"]);
        return this.store.checkSecret(
          b["account_id"] as string,
          b["client_id"] as string,
          b["client_secret"],
        );
      }
      case "GET clients": {
        const account = new URL(req.url ?? "/", "http://emulator").searchParams.get("account_id");
        return this.store.dump(account ?? undefined);
      }
      case "GET secret-events": {
        const query = new URL(req.url ?? "/", "http://emulator").searchParams;
        const account_id = query.get("account_id");
        const client_id = query.get("client_id");
        return this.store.secretEvents({
          ...(account_id === null ? {} : { account_id }),
          ...(client_id === null ? {} : { client_id }),
        });
      }
      default:
        throw fail("noRoute", `No emulator control endpoint ${action}`);
    }
  }
}

function controlBody(body: Body, required: string[]): Record<string, unknown> {
  const parsed = parseJson(body);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw fail("invalidJson", "request body must be a JSON object");
  }
  const record = parsed as Record<string, unknown>;
  for (const field of required) {
    if (typeof record[field] !== "string") throw fail("invalidField", `${field}: required string`, { field });
  }
  return record;
}

/** An empty body is `{}` (PATCH with only an account id sends none); anything else must be JSON. */
function parseJson(body: Body): unknown {
  if (body === null) throw fail("invalidJson", `request body larger than ${MAX_BODY_BYTES} bytes`);
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch {
    throw fail("invalidJson", "request body is not valid JSON");
  }
}

/** Reads the whole body (draining, so a response can still be sent); null when over the limit. */
async function readBody(req: IncomingMessage): Promise<Body> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  return size > MAX_BODY_BYTES ? null : Buffer.concat(chunks);
}

function pageInfo(count: number): Record<string, number> {
  return { page: 1, per_page: count, count, total_count: count };
}

function internalFailure(error: unknown): ApiFailure {
  const detail = error instanceof Error ? error.message : String(error);
  return new ApiFailure("injected5xx", `Internal server error: ${detail}`);
}

function sendSuccess(
  res: ServerResponse,
  headers: Record<string, string>,
  result: unknown,
  info?: object,
): void {
  const envelope = {
    success: true,
    errors: [],
    messages: [],
    result,
    ...(info ? { result_info: info } : {}),
  };
  send(res, 200, headers, envelope);
}

function sendFailure(res: ServerResponse, headers: Record<string, string>, failure: ApiFailure): void {
  const envelope = {
    success: false,
    errors: [{ code: failure.apiCode, message: failure.message }],
    messages: [],
    result: null,
  };
  send(res, failure.status, headers, envelope);
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, envelope: object): void {
  if (res.destroyed || res.headersSent) return;
  const payload = JSON.stringify(envelope);
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

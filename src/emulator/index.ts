import { mkdir } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { dirname } from "node:path";
import { GitOpsError } from "../errors.js";
import { DEFAULT_HOST, DEFAULT_OAUTH_USER, DEFAULT_PORT, RATE_LIMIT_DEFAULTS } from "./behaviour.js";
import { ApiFailure } from "./failure.js";
import { mergeFaultSettings, NO_FAULTS, type FaultSettings } from "./faults.js";
import { StateFile } from "./persist.js";
import { randomSeed } from "./prng.js";
import type { RateLimitConfig } from "./ratelimit.js";
import type { OAuthUser } from "./oauth.js";
import { loadScopeCatalogue } from "./scopes.js";
import { API_PREFIX, Emulator } from "./server.js";

/**
 * A local emulator of Cloudflare's OAuth-clients API (docs/API-BEHAVIOUR.md): the seven client endpoints,
 * `GET /oauth/scopes` and `GET /user` under /client/v4, with Cloudflare's envelopes, auth, rate limit
 * and rules, plus reproducible faults and control endpoints under /__emulator/. The reconciler's tests,
 * benchmarks and demos run against it instead of the real API. At the root of the same origin it is
 * also Cloudflare's OAuth authorization server (src/emulator/oauth.ts), so an application can test its
 * Cloudflare login against the clients the reconciler made.
 */

/** How to run the emulator; every field is optional. */
export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8787; 0 picks a free port (tests). */
  port?: number;
  /** Write tokens. Empty: any non-empty bearer token (and any X-Auth-Email + X-Auth-Key pair) is accepted. */
  tokens?: string[];
  /** Tokens that may only list and get (403 code 10000 on writes). */
  readOnlyTokens?: string[];
  /** Default 1200 requests per 300 seconds per credential. */
  rateLimit?: RateLimitConfig;
  /** Persist clients here across restarts (atomic JSON writes). */
  statePath?: string;
  /** Seeds the PRNG behind every random decision: faults, client ids, secrets, verification tokens. */
  seed?: number;
  latencyMs?: number;
  /** 0..1: share of /client/v4 requests answered 500 before doing anything. */
  fault5xxRate?: number;
  /** 0..1: share of /client/v4 requests whose connection is reset before doing anything. */
  faultResetRate?: number;
  /** 0..1: share of successful mutations applied and then dropped before the response. */
  faultDropAfterCommitRate?: number;
  /** 0..1: share of clients left out of each list answer (one seeded draw per client). */
  listDropRate?: number;
  /** Client ids always left out of list answers; GET still finds them. */
  listDropIds?: string[];
  /** Added to `result_info.total_count` of client list answers (a count that disagrees with the list). */
  listTotalCountOffset?: number;
  /** A JSON scope catalogue replacing config/scopes.json. */
  scopesFile?: string;
  /** Clock for timestamps, rate windows and OAuth code and token lifetimes (tests). */
  now?: () => Date;
  /** The user who signs in and consents at the authorization endpoint (default in behaviour.ts). */
  oauthUser?: OAuthUser;
}

/** A running emulator. */
export interface EmulatorHandle {
  /** `http://HOST:PORT/client/v4`: the SDK's `baseURL` / `CLOUDFLARE_BASE_URL`. */
  url: string;
  /**
   * `http://HOST:PORT`: control endpoints are under `${origin}/__emulator/`. It is also the OAuth
   * issuer: `${origin}/.well-known/openid-configuration`.
   */
  origin: string;
  /** The OAuth issuer (equal to `origin`). */
  issuer: string;
  port: number;
  /** Closes the listener and every connection, waits for in-flight work and the last state write. */
  stop(): Promise<void>;
}

/** Starts an emulator and resolves once it is listening. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<EmulatorHandle> {
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  checkPort(port);
  const emulator = new Emulator({
    seed: options.seed ?? randomSeed(),
    auth: { tokens: options.tokens ?? [], readOnlyTokens: options.readOnlyTokens ?? [] },
    rateLimit: checkRateLimit(options.rateLimit ?? RATE_LIMIT_DEFAULTS),
    faults: faultsFrom(options),
    catalogue: loadScopeCatalogue(options.scopesFile),
    now: options.now ?? (() => new Date()),
    oauthUser: checkOAuthUser(options.oauthUser ?? DEFAULT_OAUTH_USER),
  });
  if (options.statePath !== undefined) await attachState(emulator, options.statePath);
  const server = createServer(emulator.listener);
  const bound = await listen(server, host, port);
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${bound}`;
  emulator.issuer = origin;
  let stopping: Promise<void> | undefined;
  return {
    url: `${origin}${API_PREFIX}`,
    origin,
    issuer: origin,
    port: bound,
    stop: () => (stopping ??= stopServer(server, emulator)),
  };
}

async function attachState(emulator: Emulator, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const file = new StateFile(path, () => emulator.store.toSnapshot());
  const snapshot = await file.load();
  if (snapshot !== undefined) emulator.store.loadSnapshot(snapshot, path);
  emulator.stateFile = file;
}

function faultsFrom(options: EmulatorOptions): FaultSettings {
  const patch = {
    latencyMs: options.latencyMs,
    fault5xxRate: options.fault5xxRate,
    faultResetRate: options.faultResetRate,
    faultDropAfterCommitRate: options.faultDropAfterCommitRate,
    listDropRate: options.listDropRate,
    listDropIds: options.listDropIds,
    listTotalCountOffset: options.listTotalCountOffset,
  };
  try {
    return mergeFaultSettings(NO_FAULTS, patch);
  } catch (error) {
    if (error instanceof ApiFailure) throw optionError(error.message);
    throw error;
  }
}

function checkOAuthUser(user: OAuthUser): OAuthUser {
  if (typeof user.id !== "string" || !/^[A-Za-z0-9._-]+$/.test(user.id)) {
    throw optionError("oauthUser: id must be non-empty letters, digits, '.', '_' or '-'");
  }
  if (typeof user.email !== "string" || !/^[^@\s]+@[^@\s]+$/.test(user.email)) {
    throw optionError("oauthUser: email must look like name@host");
  }
  return { id: user.id, email: user.email };
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw optionError(`port: ${port} is not 0..65535`);
}

function checkRateLimit(limit: RateLimitConfig): RateLimitConfig {
  const ok = (n: number) => Number.isInteger(n) && n > 0;
  if (!ok(limit.quota) || !ok(limit.windowSeconds)) {
    throw optionError(`rateLimit: quota and windowSeconds must be positive integers`);
  }
  return { quota: limit.quota, windowSeconds: limit.windowSeconds };
}

function optionError(message: string): GitOpsError {
  return new GitOpsError("E_EMULATOR_OPTIONS", `emulator: ${message}`);
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      reject(
        new GitOpsError("E_EMULATOR_LISTEN", `emulator: cannot listen on ${host}:${port}: ${error.message}`, {
          cause: error,
          context: { host, port },
        }),
      );
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}

async function stopServer(server: Server, emulator: Emulator): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await emulator.drain();
  await closed;
}

export type { RateLimitConfig } from "./ratelimit.js";
export type { FaultSettings } from "./faults.js";
export type { OAuthUser } from "./oauth.js";
export type { StatsSnapshot } from "./stats.js";
export type { DumpedClient, EmulatedClient, SecretSlot, VerificationStatus } from "./store.js";

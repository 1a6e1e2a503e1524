import type { BackoffPolicy } from "../backoff.js";
import { GitOpsError } from "../errors.js";
import type { Logger } from "../log.js";
import { proxySettings, type ProxySettings } from "../proxy.js";
import { Secret } from "../secret.js";
import type { RateBudgetOptions } from "./rate-budget.js";

/**
 * How the API client is built. Credentials come from the environment only (`clientOptionsFromEnv`):
 * there is deliberately no command-line option for a token anywhere, because argv is visible to every
 * user of the machine and lands in shell history.
 */

/** The public Cloudflare API (docs/API-BEHAVIOUR.md, "Endpoints"). */
export const DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4";

/** An API token (preferred: it can be scoped to "OAuth Client Read" for plan-only jobs) or a global key. */
export type Credentials = { kind: "token"; token: Secret } | { kind: "key"; email: string; key: Secret };

/** The client's backoff between attempts (src/backoff.ts, with full jitter); each part has a default. */
export type BackoffOptions = Partial<BackoffPolicy>;

export interface ClientOptions {
  /** e.g. `https://api.cloudflare.com/client/v4`, or the emulator's `http://127.0.0.1:PORT/client/v4`. */
  baseUrl: string;
  credentials: Credentials;
  /** Per attempt: from sending the request to reading the whole body. Default 30 s. */
  timeoutMs?: number;
  /** Attempts per call, the first included. Default 4. */
  maxAttempts?: number;
  /** Give up retrying once this much time has passed since the call started. Default 60 s. */
  maxRetryTimeMs?: number;
  backoff?: BackoffOptions;
  /** A pino logger; the client logs through its child `{component: "cloudflare"}`. */
  logger?: Logger;
  /** Local pacing against the server's Ratelimit headers; on unless `enabled: false`. */
  rateBudget?: RateBudgetOptions;
  /** Source of jitter in [0, 1). Injectable so tests can pin it. */
  random?: () => number;
  /** Waits `ms`, rejecting when `signal` aborts. Injectable; the client also races it with the signal. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Clock in epoch ms, for the rate budget and the total-time bound. */
  now?: () => number;
  /**
   * Largest answer body read, in bytes; a larger one fails the call with `E_API_TOO_LARGE` (not
   * retried) and is never held in memory. Default {@link DEFAULT_MAX_RESPONSE_BYTES}.
   */
  maxResponseBytes?: number;
  /** Keep-alive connections per origin. Default 8. */
  connections?: number;
  /**
   * The proxy to go through (src/proxy.ts); read from `process.env` when left out.
   * `clientOptionsFromEnv` takes it from the environment it was given.
   */
  proxy?: ProxySettings;
  userAgent?: string;
  /**
   * Called after every attempt with what the debug log line carries (never headers or bodies), so the
   * daemon can count requests by route and status without parsing logs. `status` is null when no
   * response arrived (`code` says why). Exceptions it throws are ignored.
   */
  onResponse?: (info: ApiResponseInfo) => void;
}

/** One attempt, as reported to {@link ClientOptions.onResponse}. */
export interface ApiResponseInfo {
  method: string;
  /** Route template, e.g. `/accounts/:account_id/oauth_clients`: low cardinality. */
  route: string;
  status: number | null;
  attempt: number;
  durationMs: number;
  /** The error code when the attempt failed without a response (timeout, network, abort). */
  code?: string;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ATTEMPTS = 4;
export const DEFAULT_MAX_RETRY_TIME_MS = 60_000;
export const DEFAULT_BACKOFF_BASE_MS = 500;
export const DEFAULT_BACKOFF_CAP_MS = 8_000;
/**
 * 32 MiB: the list of an account's clients is one page (docs/API-BEHAVIOUR.md, "Endpoints") of a few hundred
 * bytes per client, so this leaves room for tens of thousands of clients, while an answer that keeps
 * growing (a broken proxy, a hostile endpoint) stops long before it can exhaust memory.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/**
 * Builds client options from the variables the official SDK reads (docs/API-BEHAVIOUR.md, "Envelope and
 * auth"): `CLOUDFLARE_BASE_URL`, `CLOUDFLARE_API_TOKEN`, or `CLOUDFLARE_EMAIL` + `CLOUDFLARE_API_KEY`.
 * A token wins when both kinds are set. Missing credentials fail with `E_NO_CREDENTIALS` naming the
 * variables, an unusable base URL with `E_BAD_BASE_URL`.
 */
export function clientOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides: Partial<Omit<ClientOptions, "credentials" | "baseUrl">> = {},
): ClientOptions {
  return {
    proxy: proxySettings(env),
    ...overrides,
    baseUrl: baseUrlFromEnv(env),
    credentials: credentialsFromEnv(env),
  };
}

function baseUrlFromEnv(env: Readonly<Record<string, string | undefined>>): string {
  const raw = nonEmpty(env["CLOUDFLARE_BASE_URL"]) ?? DEFAULT_BASE_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GitOpsError("E_BAD_BASE_URL", `CLOUDFLARE_BASE_URL is not a URL: ${raw}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new GitOpsError("E_BAD_BASE_URL", `CLOUDFLARE_BASE_URL must be http(s): ${raw}`);
  }
  if (url.username || url.password) {
    throw new GitOpsError("E_BAD_BASE_URL", "CLOUDFLARE_BASE_URL must not carry credentials");
  }
  return raw.replace(/\/+$/, "");
}

/**
 * What to say when `baseUrl` is plain `http://` to a host that is not this machine's loopback
 * (127.0.0.0/8, `::1`, `localhost`): the API token and every minted client secret would cross the
 * network unencrypted. Loopback is how the emulator is reached (src/emulator), so it stays quiet;
 * undefined when there is nothing to say.
 */
export function plainHttpBaseUrlWarning(baseUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" || isLoopbackHost(url.hostname)) return undefined;
  return `the Cloudflare API base URL (CLOUDFLARE_BASE_URL) is plain http to ${url.host}, which is not loopback: the API token and client secrets travel unencrypted; use https://`;
}

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host === "[::1]") return true;
  // WHATWG URL parsing has already normalised IPv4 forms (`127.1`, `0x7f.0.0.1`) to dotted quads.
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function credentialsFromEnv(env: Readonly<Record<string, string | undefined>>): Credentials {
  const token = nonEmpty(env["CLOUDFLARE_API_TOKEN"]);
  if (token) return { kind: "token", token: new Secret(token) };
  const email = nonEmpty(env["CLOUDFLARE_EMAIL"]);
  const key = nonEmpty(env["CLOUDFLARE_API_KEY"]);
  if (email && key) return { kind: "key", email, key: new Secret(key) };
  const missing = email ? "CLOUDFLARE_API_KEY" : key ? "CLOUDFLARE_EMAIL" : null;
  throw new GitOpsError(
    "E_NO_CREDENTIALS",
    missing
      ? `Cloudflare credentials incomplete: ${missing} is not set (set CLOUDFLARE_API_TOKEN, or both CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY)`
      : "no Cloudflare credentials: set CLOUDFLARE_API_TOKEN (or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY) in the environment",
    { context: { missing: missing ?? "CLOUDFLARE_API_TOKEN" } },
  );
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/** The auth headers for one request. Reveals the secret only into the outgoing header map. */
export function authHeaders(credentials: Credentials): Record<string, string> {
  if (credentials.kind === "token") return { authorization: `Bearer ${credentials.token.reveal()}` };
  return { "x-auth-email": credentials.email, "x-auth-key": credentials.key.reveal() };
}

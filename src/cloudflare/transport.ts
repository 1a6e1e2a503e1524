import { setTimeout as sleepTimer } from "node:timers/promises";
import type { z } from "zod";
import { fullJitterBackoffMs, type BackoffPolicy } from "../backoff.js";
import { silentLogger, type Logger } from "../log.js";
import { proxyAwareDispatcher, proxySettings } from "../proxy.js";
import { request, type Dispatcher } from "../undici.js";
import {
  CloudflareApiError,
  describeHttpFailure,
  type ApiErrorCode,
  type ApiErrorDetails,
  type CfError,
} from "./errors.js";
import {
  authHeaders,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_CAP_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_MAX_RETRY_TIME_MS,
  DEFAULT_TIMEOUT_MS,
  plainHttpBaseUrlWarning,
  type ClientOptions,
  type Credentials,
} from "./options.js";
import { BudgetWaitTooLongError, RateBudget, type Permit } from "./rate-budget.js";
import { headerValue, parseRateLimitHeaders, retryAfterMs, type HeaderMap } from "./retry.js";
import { envelopeSchema, failureEnvelopeSchema } from "../api/envelope.js";
import { describeIssues, scrubSecrets } from "./validate.js";

/**
 * The HTTP layer under the OAuth-clients API: one keep-alive undici dispatcher (direct, or through
 * the proxy that `HTTPS_PROXY` / `HTTP_PROXY` name unless `NO_PROXY` exempts the host: see
 * src/proxy.ts), auth headers, per-attempt
 * timeouts joined with the caller's AbortSignal, the shared rate budget, retries with backoff, and
 * zod validation of every envelope. It knows nothing about OAuth clients; `client.ts` describes each
 * call with a {@link CallSpec}.
 *
 * Retry rules (docs/API-BEHAVIOUR.md, "Rate limits", after the official SDK): connection errors, 408, 429 and
 * 5xx are retried, at most `maxAttempts` times; no retry starts past `maxRetryTimeMs` since the call
 * began (waits for the rate budget are not counted: they are paced, not failures).
 * A failure that may have reached the server (timeout, reset after sending, 5xx) is *ambiguous*: an
 * idempotent call retries it, a non-idempotent one hands it to `onAmbiguous`, which checks the live
 * state and decides (see client.ts: no blind create or rotate retries).
 */

export type HttpMethod = "GET" | "POST" | "PATCH" | "DELETE";

/** Per-call options every API method accepts. */
export interface CallOptions {
  /** Aborts the whole call, including backoff and rate-budget waits: rejects with E_API_ABORTED. */
  signal?: AbortSignal;
  /** Overrides the client's per-attempt timeout for this call. */
  timeoutMs?: number;
}

/** What a non-idempotent call decides after an ambiguous failure, having looked at the live state. */
export type AmbiguityVerdict<R> = { action: "retry" } | { action: "resolve"; value: R };

/** One API call, described for the transport. */
export interface CallSpec<S, R> {
  method: HttpMethod;
  /** Route template for logs and metrics, e.g. `/accounts/:account_id/oauth_clients`. */
  route: string;
  /** Concrete path below the base URL. */
  path: string;
  body?: unknown;
  /** Schema of the envelope's `result`. */
  result: z.ZodType<S>;
  map: (result: S) => R;
  /**
   * Checks a 2xx answer beyond its schema (a list's `result_info.total_count`): returns what is wrong,
   * or null. A failed check is a failed read, E_API_LIST_COUNT_MISMATCH, retried like a 5xx.
   */
  verify?: (result: S, resultInfo: Readonly<Record<string, unknown>> | undefined) => string | null;
  /** Safe to send twice with the same effect (GET, PATCH). */
  idempotent: boolean;
  /**
   * Called after an ambiguous failure of a non-idempotent call, before any retry; may throw. Without
   * it, an ambiguous failure of a non-idempotent call is thrown as is.
   */
  onAmbiguous?: (error: CloudflareApiError, signal: AbortSignal | undefined) => Promise<AmbiguityVerdict<R>>;
}

/** The parts of a call that name it in logs and errors. */
type Where = Pick<CallSpec<unknown, unknown>, "method" | "route" | "path">;

const PRE_SEND_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
]);

const DEFAULT_USER_AGENT = "cf-oauth-gitops/0.1";

/** Outcome of one attempt, before retry decisions. */
type AttemptResult<R> = { ok: true; value: R } | { ok: false; error: CloudflareApiError; final?: boolean };

export class Transport {
  readonly budget: RateBudget;
  readonly #baseUrl: string;
  readonly #credentials: Credentials;
  readonly #agent: Dispatcher;
  /** The `{component: "cloudflare"}` child logger, shared with client.ts. */
  readonly log: Logger;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #maxAttempts: number;
  readonly #maxRetryTimeMs: number;
  readonly #backoff: BackoffPolicy;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #now: () => number;
  readonly #userAgent: string;
  readonly #onResponse: ClientOptions["onResponse"];

  constructor(options: ClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#credentials = options.credentials;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.#maxRetryTimeMs = options.maxRetryTimeMs ?? DEFAULT_MAX_RETRY_TIME_MS;
    this.#backoff = {
      baseMs: options.backoff?.baseMs ?? DEFAULT_BACKOFF_BASE_MS,
      capMs: options.backoff?.capMs ?? DEFAULT_BACKOFF_CAP_MS,
    };
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? ((ms, signal) => sleepTimer(ms, undefined, { signal }));
    this.#now = options.now ?? Date.now;
    this.#userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.#onResponse = options.onResponse;
    this.log = (options.logger ?? silentLogger).child({ component: "cloudflare" });
    const plainHttp = plainHttpBaseUrlWarning(this.#baseUrl);
    if (plainHttp) this.log.warn({ base_url: new URL(this.#baseUrl).origin }, plainHttp);
    this.budget = new RateBudget(options.rateBudget, this.#now);
    this.#agent = proxyAwareDispatcher(
      options.proxy ?? proxySettings(process.env),
      { timeout: Math.min(this.#timeoutMs, 10_000) },
      { connections: options.connections ?? 8, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 30_000 },
    );
  }

  /** Runs one call with retries; resolves with the mapped result or rejects with CloudflareApiError. */
  async call<S, R>(spec: CallSpec<S, R>, opts: CallOptions = {}): Promise<R> {
    const deadline = this.#now() + this.#maxRetryTimeMs;
    for (let attempt = 1; ; attempt++) {
      // A retry's timeout is cut to the time left before the deadline (at least 1 s).
      const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
      const attemptTimeoutMs =
        attempt === 1 ? timeoutMs : Math.min(timeoutMs, Math.max(1000, deadline - this.#now()));
      const outcome = await this.#attempt(spec, opts, attempt, attemptTimeoutMs);
      if (outcome.ok) return outcome.value;
      const error = outcome.error;
      if (!error.retryable || outcome.final) throw error.withAttempts(attempt);
      const mustCheck = error.ambiguous && !spec.idempotent;
      if (mustCheck && !spec.onAmbiguous) throw error.withAttempts(attempt);
      const delay = this.#retryDelay(error, attempt);
      const giveUp = attempt >= this.#maxAttempts || this.#now() + delay > deadline;
      this.log.debug(
        {
          method: spec.method,
          route: spec.route,
          attempt,
          code: error.code,
          status: error.status,
          delayMs: delay,
        },
        giveUp ? "cloudflare request failed, giving up" : "cloudflare request failed, retrying",
      );
      if (error.code === "E_API_RATE_LIMITED") this.budget.blockUntil(this.#now() + delay);
      // Wait first, then check: a server still working on the lost request gets time to finish, so
      // the check sees its effect. The check runs even when giving up, so a write that did happen is
      // reported as done rather than failed.
      if (!giveUp) await this.#pause(delay, opts.signal, spec, attempt);
      if (mustCheck && spec.onAmbiguous) {
        const verdict = await spec.onAmbiguous(error, opts.signal);
        if (verdict.action === "resolve") return verdict.value;
      }
      if (giveUp) throw error.withAttempts(attempt, mustCheck ? { verifiedNotApplied: true } : {});
    }
  }

  /** Closes the keep-alive connections. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  #retryDelay(error: CloudflareApiError, attempt: number): number {
    if (error.retryAfterMs !== null) return error.retryAfterMs;
    return fullJitterBackoffMs(attempt, this.#backoff, this.#random);
  }

  async #pause(ms: number, signal: AbortSignal | undefined, spec: Where, attempt: number) {
    if (ms <= 0) return;
    try {
      await raceAbort(this.#sleep(ms, signal), signal);
    } catch (cause) {
      throw this.#aborted(spec, attempt, cause, false);
    }
  }

  async #attempt<S, R>(
    spec: CallSpec<S, R>,
    opts: CallOptions,
    attempt: number,
    timeoutMs: number,
  ): Promise<AttemptResult<R>> {
    let permit: Permit;
    try {
      permit = await this.budget.acquire(opts.signal);
    } catch (cause) {
      // Waiting longer here or retrying cannot help within this call: fail it as a whole.
      return { ok: false, error: this.#budgetFailure(spec, attempt, cause, opts.signal), final: true };
    }
    const sentAt = this.#now();
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let status: number | null = null;
    let headers: HeaderMap = {};
    let text: string;
    try {
      const res = await request(`${this.#baseUrl}${spec.path}`, {
        method: spec.method,
        headers: this.#headers(spec),
        body: spec.body === undefined ? null : JSON.stringify(spec.body),
        signal,
        dispatcher: this.#agent,
      });
      status = res.statusCode;
      headers = res.headers;
      text = await readCappedBody(res.body, headers, this.#maxResponseBytes);
    } catch (cause) {
      permit.release(status === null ? null : parseRateLimitHeaders(headers, this.#now()), this.#now());
      const error =
        cause instanceof BodyTooLargeError
          ? tooLargeFailure(spec, status, cause, attempt)
          : this.#transportFailure(spec, attempt, cause, opts.signal, timeout, status);
      this.#logAttempt(spec, attempt, status, sentAt, error.code);
      return { ok: false, error };
    }
    const receivedAt = this.#now();
    permit.release(parseRateLimitHeaders(headers, receivedAt), receivedAt);
    this.#logAttempt(spec, attempt, status, sentAt);
    return this.#interpret(spec, status, headers, text, receivedAt, attempt);
  }

  #headers(spec: Where & { body?: unknown }): Record<string, string> {
    const headers: Record<string, string> = {
      ...authHeaders(this.#credentials),
      accept: "application/json",
      "user-agent": this.#userAgent,
    };
    // rotate_secret and the DELETEs carry no body and no Content-Type (docs/API-BEHAVIOUR.md, "Endpoints").
    if (spec.body !== undefined) headers["content-type"] = "application/json";
    return headers;
  }

  #logAttempt(spec: Where, attempt: number, status: number | null, sentAt: number, code?: string) {
    // Method, route template, status, attempt and duration only: never headers or bodies.
    const info = {
      method: spec.method,
      route: spec.route,
      status,
      attempt,
      durationMs: this.#now() - sentAt,
      ...(code ? { code } : {}),
    };
    this.log.debug(info, "cloudflare request");
    try {
      this.#onResponse?.(info);
    } catch {
      // A metrics hook must never fail a request.
    }
  }

  #interpret<S, R>(
    spec: CallSpec<S, R>,
    status: number,
    headers: HeaderMap,
    text: string,
    receivedAt: number,
    attempt: number,
  ): AttemptResult<R> {
    const body = parseJson(text);
    if (status < 200 || status >= 300) {
      return { ok: false, error: httpFailure(spec, status, body, headers, receivedAt, attempt) };
    }
    if (body === undefined)
      return { ok: false, error: schemaFailure(spec, "(body): expected JSON", attempt) };
    const parsed = envelopeSchema(spec.result).safeParse(body);
    if (!parsed.success) {
      return {
        ok: false,
        error: schemaFailure(spec, scrubSecrets(describeIssues(parsed.error.issues), body), attempt),
      };
    }
    if (!parsed.data.success) {
      const cfErrors = parsed.data.errors.map(({ code, message }) => ({ code, message }));
      const error = new CloudflareApiError(
        "E_API_HTTP",
        describeHttpFailure(spec.method, spec.path, status, cfErrors),
        {
          ...where(spec),
          status,
          cfErrors,
          attempts: attempt,
        },
      );
      return { ok: false, error };
    }
    const problem = spec.verify?.(parsed.data.result as S, parsed.data.result_info) ?? null;
    if (problem !== null) {
      const error = new CloudflareApiError(
        "E_API_LIST_COUNT_MISMATCH",
        `${spec.method} ${spec.path}: ${problem}`,
        { ...where(spec), status, retryable: true, attempts: attempt },
      );
      return { ok: false, error };
    }
    return { ok: true, value: spec.map(parsed.data.result as S) };
  }

  #transportFailure(
    spec: Where,
    attempt: number,
    cause: unknown,
    callerSignal: AbortSignal | undefined,
    timeout: AbortSignal,
    status: number | null,
  ): CloudflareApiError {
    if (callerSignal?.aborted) return this.#aborted(spec, attempt, cause, true);
    const statusPart = status === null ? "" : ` (after ${status})`;
    if (timeout.aborted) {
      return new CloudflareApiError("E_API_TIMEOUT", `${spec.method} ${spec.path}: timed out${statusPart}`, {
        ...where(spec),
        status,
        retryable: true,
        ambiguous: true,
        attempts: attempt,
        cause,
      });
    }
    const code = networkCode(cause);
    const preSend = status === null && code !== undefined && PRE_SEND_CODES.has(code);
    return new CloudflareApiError(
      "E_API_NETWORK",
      `${spec.method} ${spec.path}: ${code ?? "network error"}${statusPart}: ${messageOf(cause)}`,
      {
        ...where(spec),
        status,
        retryable: true,
        ambiguous: !preSend,
        attempts: attempt,
        cause,
        extra: { networkCode: code },
      },
    );
  }

  #aborted(spec: Where, attempt: number, cause: unknown, inFlight: boolean): CloudflareApiError {
    // An abort while a write was on the wire leaves its outcome unknown: say so (ambiguous) for the journal.
    const ambiguous = inFlight && spec.method !== "GET";
    return new CloudflareApiError("E_API_ABORTED", `${spec.method} ${spec.path}: aborted`, {
      ...where(spec),
      ambiguous,
      attempts: attempt,
      cause,
    });
  }

  #budgetFailure(
    spec: Where,
    attempt: number,
    cause: unknown,
    signal: AbortSignal | undefined,
  ): CloudflareApiError {
    if (signal?.aborted) return this.#aborted(spec, attempt, cause, false);
    const waitMs = cause instanceof BudgetWaitTooLongError ? cause.waitMs : null;
    return new CloudflareApiError("E_API_RATE_LIMITED", `${spec.method} ${spec.path}: ${messageOf(cause)}`, {
      ...where(spec),
      retryable: true,
      attempts: attempt,
      cause,
      extra: { budgetWaitMs: waitMs },
    });
  }
}

function where(spec: Where): Pick<ApiErrorDetails, "method" | "route" | "path"> {
  return { method: spec.method, route: spec.route, path: spec.path };
}

/** Maps a non-2xx response to a typed error (docs/API-BEHAVIOUR.md, "Envelope and auth": status codes). */
function httpFailure(
  spec: Where,
  status: number,
  body: unknown,
  headers: HeaderMap,
  now: number,
  attempt: number,
): CloudflareApiError {
  const cfErrors = extractCfErrors(body);
  const code: ApiErrorCode =
    status === 401 || status === 403
      ? "E_API_AUTH"
      : status === 404
        ? "E_API_NOT_FOUND"
        : status === 429
          ? "E_API_RATE_LIMITED"
          : "E_API_HTTP";
  const shouldRetry = headerValue(headers, "x-should-retry");
  const retryable = shouldRetry !== "false" && (status === 408 || status === 429 || status >= 500);
  return new CloudflareApiError(code, describeHttpFailure(spec.method, spec.path, status, cfErrors), {
    ...where(spec),
    status,
    cfErrors,
    retryable,
    // A 5xx may come after the server applied the change; 408 and 429 mean it was not processed.
    ambiguous: status >= 500,
    retryAfterMs: retryAfterMs(headers, now),
    attempts: attempt,
  });
}

/** Why {@link readCappedBody} stopped: what the answer declared, or how far reading got. */
export class BodyTooLargeError extends Error {
  constructor(
    readonly maxBytes: number,
    readonly declaredBytes: number | null,
    readonly receivedBytes: number,
  ) {
    super(
      declaredBytes !== null
        ? `answer declares ${declaredBytes} bytes, over the limit of ${maxBytes}`
        : `answer passed the limit of ${maxBytes} bytes while being read`,
    );
    this.name = "BodyTooLargeError";
  }
}

/**
 * Reads a body as UTF-8 text, at most `maxBytes` of it. A declared `content-length` over the limit
 * fails before a byte is read; without one (chunked), bytes are counted as they arrive. Either way
 * the stream is destroyed at once, which closes the connection, so an answer of any size costs at
 * most `maxBytes` of memory, where reading it whole (`body.text()`) let a 700 MB answer take a run
 * to 1.5 GB.
 */
export async function readCappedBody(
  body: AsyncIterable<Uint8Array> & {
    destroy(error?: Error): unknown;
    on(event: "error", listener: (error: Error) => void): unknown;
  },
  headers: HeaderMap,
  maxBytes: number,
): Promise<string> {
  const declared = Number(headerValue(headers, "content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    const error = new BodyTooLargeError(maxBytes, declared, 0);
    // Nobody reads the stream: its destroy error must not surface as an unhandled 'error' event.
    body.on("error", () => undefined);
    body.destroy(error);
    throw error;
  }
  const chunks: Uint8Array[] = [];
  let received = 0;
  for await (const chunk of body) {
    received += chunk.byteLength;
    if (received > maxBytes) {
      const error = new BodyTooLargeError(maxBytes, null, received);
      body.destroy(error);
      throw error;
    }
    chunks.push(chunk);
  }
  return new TextDecoder("utf-8").decode(Buffer.concat(chunks, received));
}

/**
 * Not retryable: the same request gets the same answer. A write's oversized answer came after the
 * server took the request, so for anything but a GET it is ambiguous too (nothing blind follows).
 */
function tooLargeFailure(
  spec: Where,
  status: number | null,
  cause: BodyTooLargeError,
  attempt: number,
): CloudflareApiError {
  const applied = spec.method === "GET" ? "" : " (the server may have applied the request)";
  return new CloudflareApiError(
    "E_API_TOO_LARGE",
    `${spec.method} ${spec.path}: ${cause.message}; the answer was dropped unread${applied}`,
    {
      ...where(spec),
      status,
      retryable: false,
      ambiguous: spec.method !== "GET",
      attempts: attempt,
      cause,
      extra: {
        maxResponseBytes: cause.maxBytes,
        ...(cause.declaredBytes !== null ? { declaredBytes: cause.declaredBytes } : {}),
      },
    },
  );
}

function schemaFailure(spec: Where, detail: string, attempt: number): CloudflareApiError {
  const applied =
    spec.method === "GET" ? "" : " (the server accepted the request; its answer could not be read)";
  return new CloudflareApiError("E_API_SCHEMA", `${spec.method} ${spec.route}: ${detail}${applied}`, {
    ...where(spec),
    status: 200,
    attempts: attempt,
  });
}

function extractCfErrors(body: unknown): CfError[] {
  const parsed = failureEnvelopeSchema.safeParse(body);
  if (parsed.success) return parsed.data.errors.map(({ code, message }) => ({ code, message }));
  return [];
}

function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      // undici wraps socket failures; prefer the OS code from the cause when there is one.
      const inner = networkCode((e as { cause?: unknown }).cause);
      return inner && inner !== code ? inner : code;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolves/rejects like `promise`, but rejects as soon as `signal` aborts (an injected sleep may ignore it). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e as Error);
      },
    );
  });
}

import { type ErrorCode, GitOpsError } from "../errors.js";

/**
 * Typed failures of the Cloudflare API client.
 *
 * Every failure names the request it failed on (`POST /accounts/<acc>/oauth_clients`) and carries a
 * stable code, so the engine can sort it (docs/DESIGN.md, "Errors"): retryable failures are `transient`
 * (try again next run), everything else `terminal`.
 */

/** Stable codes of {@link CloudflareApiError}; what each means is in the registry, src/error-codes.ts. */
export const API_ERROR_CODES = [
  "E_API_HTTP",
  "E_API_AUTH",
  "E_API_NOT_FOUND",
  "E_API_RATE_LIMITED",
  "E_API_NETWORK",
  "E_API_TIMEOUT",
  "E_API_ABORTED",
  "E_API_SCHEMA",
  "E_API_TOO_LARGE",
  "E_API_LIST_COUNT_MISMATCH",
  "E_ROTATE_AMBIGUOUS",
  "E_CREATE_AMBIGUOUS",
  "E_API_ARGUMENT",
] as const satisfies readonly ErrorCode[];
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/** One entry of the envelope's `errors` array (docs/API-BEHAVIOUR.md, "Envelope and auth"). */
export interface CfError {
  code: number;
  message: string;
}

export interface ApiErrorDetails {
  method: string;
  /** Route template, e.g. `/accounts/:account_id/oauth_clients/:client_id`: a low-cardinality label. */
  route: string;
  /** The concrete path below the base URL (ids, never secrets). */
  path: string;
  status?: number | null;
  cfErrors?: readonly CfError[];
  retryable?: boolean;
  /**
   * True when the request may have reached the server and changed something even though no usable
   * answer came back (timeout, reset after sending, 5xx). Non-idempotent calls must check before
   * trying again.
   */
  ambiguous?: boolean;
  /** Server-requested wait before a retry (Retry-After / retry-after-ms), in ms. */
  retryAfterMs?: number | null;
  attempts?: number;
  cause?: unknown;
  /** Extra context, safe to log. */
  extra?: Record<string, unknown>;
}

/**
 * A failed call to the Cloudflare API.
 *
 * `retryable` says whether trying the same request again can help (connection errors, 408, 429, 5xx);
 * it also decides `disposition` (`transient` vs `terminal`). `cfErrors` are Cloudflare's own
 * `{code, message}` pairs so callers can match on API error codes.
 */
export class CloudflareApiError extends GitOpsError {
  readonly status: number | null;
  readonly cfErrors: readonly CfError[];
  readonly retryable: boolean;
  readonly ambiguous: boolean;
  readonly method: string;
  readonly route: string;
  readonly path: string;
  readonly retryAfterMs: number | null;
  readonly attempts: number;

  constructor(code: ApiErrorCode, message: string, details: ApiErrorDetails) {
    const retryable = details.retryable ?? false;
    super(code, message, {
      cause: details.cause,
      disposition: retryable ? "transient" : "terminal",
      context: {
        method: details.method,
        route: details.route,
        path: details.path,
        status: details.status ?? null,
        cfErrors: details.cfErrors ?? [],
        retryable,
        ...(details.ambiguous ? { ambiguous: true } : {}),
        ...(details.attempts !== undefined ? { attempts: details.attempts } : {}),
        ...details.extra,
      },
    });
    this.status = details.status ?? null;
    this.cfErrors = details.cfErrors ?? [];
    this.retryable = retryable;
    this.ambiguous = details.ambiguous ?? false;
    this.method = details.method;
    this.route = details.route;
    this.path = details.path;
    this.retryAfterMs = details.retryAfterMs ?? null;
    this.attempts = details.attempts ?? 1;
  }

  /** A copy that records how many attempts were made, for the final error the caller sees. */
  withAttempts(attempts: number, extra: Record<string, unknown> = {}): CloudflareApiError {
    return new CloudflareApiError(this.code as ApiErrorCode, this.message, {
      method: this.method,
      route: this.route,
      path: this.path,
      status: this.status,
      cfErrors: this.cfErrors,
      retryable: this.retryable,
      ambiguous: this.ambiguous,
      retryAfterMs: this.retryAfterMs,
      attempts,
      cause: this.cause,
      extra: { ...pickExtra(this.context), ...extra },
    });
  }
}

const BASE_CONTEXT_KEYS = new Set([
  "method",
  "route",
  "path",
  "status",
  "cfErrors",
  "retryable",
  "ambiguous",
  "attempts",
]);

function pickExtra(context: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(context).filter(([k]) => !BASE_CONTEXT_KEYS.has(k)));
}

/** `POST /accounts/x/oauth_clients: 400 [1001] grant_types must include authorization_code`. */
export function describeHttpFailure(
  method: string,
  path: string,
  status: number,
  cfErrors: readonly CfError[],
): string {
  const detail = cfErrors.length > 0 ? cfErrors.map((e) => `[${e.code}] ${e.message}`).join("; ") : "";
  return `${method} ${path}: ${status}${detail ? ` ${detail}` : ""}`;
}

/** True for an error thrown by this client with one of the given codes. */
export function isApiError(error: unknown, ...codes: ApiErrorCode[]): error is CloudflareApiError {
  return (
    error instanceof CloudflareApiError && (codes.length === 0 || codes.includes(error.code as ApiErrorCode))
  );
}

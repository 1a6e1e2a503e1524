import type { IncomingHttpHeaders } from "node:http";
import { API_KEY_CHECKED_AGAINST_TOKENS, BEARER_WINS_OVER_API_KEY } from "./behaviour.js";
import { fail } from "./failure.js";

/**
 * Authentication as the v4 API does it (docs/API-BEHAVIOUR.md, "Envelope and auth"): `Authorization: Bearer`
 * or `X-Auth-Email` + `X-Auth-Key`. Tokens are either full ("OAuth Client Write") or read-only
 * ("OAuth Client Read", what a CI plan job holds).
 */
export interface AuthConfig {
  /** Accepted write tokens; when empty, any non-empty token not listed in `readOnlyTokens` is a write token. */
  tokens: readonly string[];
  readOnlyTokens: readonly string[];
  /**
   * Tokens revoked through `POST /__emulator/tokens` (what deleting or rolling a token in the
   * dashboard does): answered as invalid until restored.
   */
  revoked?: ReadonlySet<string>;
}

/** Who is calling: the rate-limit key and whether writes are allowed. */
export interface Caller {
  /** Rate-limit bucket: one per token, per API-key user, or per address for anonymous calls. */
  key: string;
  present: boolean;
  canWrite: boolean;
  valid: boolean;
}

/** Reads the credential from the headers without deciding yet (the rate limit needs the key first). */
export function identifyCaller(
  headers: IncomingHttpHeaders,
  remoteAddress: string,
  config: AuthConfig,
): Caller {
  const bearer = bearerToken(headers["authorization"]);
  const email = single(headers["x-auth-email"]);
  const apiKey = single(headers["x-auth-key"]);
  const hasKeyPair = email !== "" && apiKey !== "";
  if (bearer !== "" && (BEARER_WINS_OVER_API_KEY || !hasKeyPair)) {
    return { key: `token:${bearer}`, present: true, ...judge(bearer, config) };
  }
  if (hasKeyPair) {
    const verdict = API_KEY_CHECKED_AGAINST_TOKENS ? judge(apiKey, config) : { valid: true, canWrite: true };
    return { key: `user:${email}`, present: true, ...verdict };
  }
  return { key: `ip:${remoteAddress}`, present: false, valid: false, canWrite: false };
}

/** Throws the 401/403 of the failure table when the caller may not make this call. */
export function authorise(caller: Caller, write: boolean): void {
  if (!caller.present)
    throw fail(
      "authMissing",
      "Authentication error: no credentials (Bearer token or X-Auth-Email/X-Auth-Key)",
    );
  if (!caller.valid) throw fail("authInvalid", "Authentication error: invalid credentials");
  if (write && !caller.canWrite)
    throw fail("authReadOnly", "Authentication error: this token can only read OAuth clients");
}

function judge(token: string, config: AuthConfig): { valid: boolean; canWrite: boolean } {
  if (config.revoked?.has(token)) return { valid: false, canWrite: false };
  if (config.readOnlyTokens.includes(token)) return { valid: true, canWrite: false };
  if (config.tokens.length === 0) return { valid: true, canWrite: true };
  return config.tokens.includes(token) ? { valid: true, canWrite: true } : { valid: false, canWrite: false };
}

function bearerToken(header: string | undefined): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? "";
}

function single(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value)?.trim() ?? "";
}

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { GitOpsError } from "../errors.js";
import { OAUTH_LIFETIMES, OAUTH_RANDOM_BYTES, REVOKE_RULES, TOKEN_RULES } from "./behaviour.js";

/**
 * The authorization server's memory: codes, access tokens and refresh tokens, and the rules of
 * exchanging them (docs/API-BEHAVIOUR.md, "The OAuth authorization server"; the choices are in
 * src/emulator/behaviour.ts). No HTTP here: `src/emulator/oauth.ts` authenticates the client and maps
 * an `OAuthFailure` to an RFC 6749 error answer, and `src/emulator/store.ts` owns one `OAuthGrants` so
 * that deleting a client revokes every token issued to it.
 *
 * Every code and token is 256 random bits from node:crypto, handed out once and kept only as its
 * SHA-256 digest, so neither memory nor a dump holds a usable one; none is persisted (a restart
 * signs every user out) and none is ever logged.
 *
 * A grant is what one authorization (one code) led to: the code, every access token and every refresh
 * token descended from it. Replaying a used code or a rotated refresh token revokes the whole grant.
 */

/** An RFC 6749 §5.2 error (or §4.1.2.1, at the authorization endpoint). */
export class OAuthFailure extends GitOpsError {
  readonly error: string;
  readonly status: number;

  constructor(error: string, description: string, status = 400) {
    super("E_EMULATOR_REFUSED", description, { disposition: "terminal", context: { error } });
    this.error = error;
    this.status = status;
  }
}

/** What the authorization endpoint approved, to be carried by the code. */
export interface Authorization {
  clientId: string;
  redirectUri: string;
  scopes: readonly string[];
  nonce?: string;
  /** The S256 `code_challenge`, when the request carried one. */
  challenge?: string;
  userId: string;
}

/** What a live access token stands for. */
export interface AccessGrant {
  clientId: string;
  userId: string;
  scopes: readonly string[];
}

/** A token answer before the HTTP layer adds `id_token`. */
export interface IssuedTokens {
  access_token: string;
  expires_in: number;
  refresh_token?: string;
  scopes: readonly string[];
  /** For the id_token: who, for whom, and the nonce of the authorization request (code grants only). */
  clientId: string;
  userId: string;
  nonce?: string;
}

interface CodeRecord extends Authorization {
  grantId: string;
  expiresAt: number;
  used: boolean;
}

interface TokenRecord extends AccessGrant {
  grantId: string;
  expiresAt: number;
}

interface RefreshRecord extends TokenRecord {
  used: boolean;
}

/** The in-memory codes and tokens of every client. */
export class OAuthGrants {
  readonly #now: () => Date;
  readonly #codes = new Map<string, CodeRecord>();
  readonly #access = new Map<string, TokenRecord>();
  readonly #refresh = new Map<string, RefreshRecord>();

  constructor(now: () => Date) {
    this.#now = now;
  }

  /** A new single-use code for an approved authorization. */
  issueCode(authorization: Authorization): string {
    this.#sweep();
    const code = newToken();
    this.#codes.set(digest(code), {
      ...authorization,
      grantId: newToken(),
      expiresAt: this.#ms() + OAUTH_LIFETIMES.codeSeconds * 1000,
      used: false,
    });
    return code;
  }

  /**
   * The `authorization_code` grant for an already authenticated client. `withRefresh` says whether the
   * client holds the `refresh_token` grant (the caller knows the client; this module does not).
   */
  exchangeCode(
    clientId: string,
    code: string,
    redirectUri: string | undefined,
    verifier: string | undefined,
    withRefresh: boolean,
  ): IssuedTokens {
    const record = this.#codes.get(digest(code));
    if (record === undefined || record.expiresAt <= this.#ms() || record.clientId !== clientId) {
      throw new OAuthFailure(
        "invalid_grant",
        "the code is unknown, expired, or was issued to another client",
      );
    }
    if (record.used) {
      if (TOKEN_RULES.codeReuseRevokesGrant) this.revokeGrant(record.grantId);
      throw new OAuthFailure(
        "invalid_grant",
        "the code was already used; the tokens issued from it are revoked",
      );
    }
    if (!TOKEN_RULES.codeConsumedOnlyOnSuccess) record.used = true;
    if (redirectUri !== record.redirectUri) {
      throw new OAuthFailure("invalid_grant", "redirect_uri differs from the authorization request's");
    }
    checkVerifier(record.challenge, verifier);
    record.used = true;
    return this.#issue(record, withRefresh, record.nonce);
  }

  /** The `refresh_token` grant for an already authenticated client that holds the `refresh_token` grant. */
  refresh(clientId: string, token: string, scope: string | undefined): IssuedTokens {
    const record = this.#refresh.get(digest(token));
    if (record === undefined || record.expiresAt <= this.#ms() || record.clientId !== clientId) {
      throw new OAuthFailure(
        "invalid_grant",
        "the refresh token is unknown, expired, revoked, or was issued to another client",
      );
    }
    if (record.used) {
      if (TOKEN_RULES.refreshReuseRevokesGrant) this.revokeGrant(record.grantId);
      throw new OAuthFailure(
        "invalid_grant",
        "the refresh token was already used; every token of its grant is revoked",
      );
    }
    let scopes = record.scopes;
    if (scope !== undefined) {
      const asked = splitScope(scope);
      const wider = asked.filter((s) => !record.scopes.includes(s));
      if (wider.length > 0) {
        throw new OAuthFailure("invalid_scope", `scope wider than the grant: ${wider.join(" ")}`);
      }
      scopes = asked;
    }
    if (!TOKEN_RULES.rotateRefreshTokens) {
      // Without rotation the presented token stays the grant's refresh token.
      return { ...this.#issue(record, false, undefined, scopes), refresh_token: token };
    }
    record.used = true;
    return this.#issue(record, true, undefined, scopes);
  }

  /** What a live access token stands for; undefined for an unknown, expired or revoked one. */
  accessGrant(token: string): AccessGrant | undefined {
    if (token === "") return undefined;
    const record = this.#access.get(digest(token));
    if (record === undefined || record.expiresAt <= this.#ms()) return undefined;
    return { clientId: record.clientId, userId: record.userId, scopes: record.scopes };
  }

  /** RFC 7009 for an authenticated client: a token of another client, or an unknown one, is left alone. */
  revokeToken(clientId: string, token: string): void {
    const key = digest(token);
    const refresh = this.#refresh.get(key);
    if (refresh !== undefined && refresh.clientId === clientId) {
      if (REVOKE_RULES.refreshRevokesGrant) this.revokeGrant(refresh.grantId);
      else this.#refresh.delete(key);
      return;
    }
    const access = this.#access.get(key);
    if (access !== undefined && access.clientId === clientId) this.#access.delete(key);
  }

  /** Revokes every access and refresh token of a grant. */
  revokeGrant(grantId: string): void {
    for (const [key, r] of this.#access) if (r.grantId === grantId) this.#access.delete(key);
    for (const [key, r] of this.#refresh) if (r.grantId === grantId) this.#refresh.delete(key);
  }

  /** Deleting a client: every code and token issued to it stops working at once. */
  revokeClient(clientId: string): void {
    for (const map of [this.#codes, this.#access, this.#refresh] as Array<
      Map<string, { clientId: string }>
    >) {
      for (const [key, r] of map) if (r.clientId === clientId) map.delete(key);
    }
  }

  clear(): void {
    this.#codes.clear();
    this.#access.clear();
    this.#refresh.clear();
  }

  #issue(
    from: { grantId: string; clientId: string; userId: string; scopes: readonly string[] },
    withRefresh: boolean,
    nonce: string | undefined,
    accessScopes: readonly string[] = from.scopes,
  ): IssuedTokens {
    this.#sweep();
    const now = this.#ms();
    // A refresh token keeps the grant's scopes (RFC 6749 §6); an access token may carry fewer.
    const base = { grantId: from.grantId, clientId: from.clientId, userId: from.userId, scopes: from.scopes };
    const access = newToken();
    this.#access.set(digest(access), {
      ...base,
      scopes: accessScopes,
      expiresAt: now + OAUTH_LIFETIMES.accessTokenSeconds * 1000,
    });
    const issued: IssuedTokens = {
      access_token: access,
      expires_in: OAUTH_LIFETIMES.accessTokenSeconds,
      scopes: accessScopes,
      clientId: from.clientId,
      userId: from.userId,
      ...(nonce === undefined ? {} : { nonce }),
    };
    if (withRefresh && from.scopes.includes("offline_access")) {
      const refresh = newToken();
      this.#refresh.set(digest(refresh), {
        ...base,
        expiresAt: now + OAUTH_LIFETIMES.refreshTokenSeconds * 1000,
        used: false,
      });
      issued.refresh_token = refresh;
    }
    return issued;
  }

  /**
   * Drops what has expired; used codes and refresh tokens stay until then, for replay detection.
   * Each map gets one lifetime for all its entries, so a Map's insertion order is expiry order and
   * the walk stops at the first live entry: a sweep costs what it drops, not what is kept. (Walking
   * every entry made a long-running consumer's refresh loop quadratic: each refresh kept a used
   * token, and each issue walked them all.) Should the store's clock step back, a later entry may
   * expire before an earlier one and wait for it here; lookups check `expiresAt` themselves, so it
   * is never accepted late.
   */
  #sweep(): void {
    const now = this.#ms();
    for (const map of [this.#codes, this.#access, this.#refresh] as Array<
      Map<string, { expiresAt: number }>
    >) {
      for (const [key, r] of map) {
        if (r.expiresAt > now) break;
        map.delete(key);
      }
    }
  }

  /** How many codes, access tokens and refresh tokens are held (for tests of the sweep). */
  get size(): { codes: number; access: number; refresh: number } {
    return { codes: this.#codes.size, access: this.#access.size, refresh: this.#refresh.size };
  }

  #ms(): number {
    return this.#now().getTime();
  }
}

/** RFC 7636 §4.6 with S256, the only method the authorization endpoint accepts. */
function checkVerifier(challenge: string | undefined, verifier: string | undefined): void {
  if (challenge === undefined) {
    if (verifier !== undefined) {
      throw new OAuthFailure("invalid_grant", "code_verifier sent for a code issued without code_challenge");
    }
    return;
  }
  if (verifier === undefined || !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) {
    throw new OAuthFailure("invalid_grant", "code_verifier missing or malformed (RFC 7636 §4.1)");
  }
  const computed = Buffer.from(createHash("sha256").update(verifier).digest("base64url"));
  const expected = Buffer.from(challenge);
  if (computed.length !== expected.length || !timingSafeEqual(computed, expected)) {
    throw new OAuthFailure("invalid_grant", "code_verifier does not match the code_challenge");
  }
}

/** Space-separated scopes, empty entries dropped. */
export function splitScope(scope: string): string[] {
  return scope.split(" ").filter((s) => s !== "");
}

function newToken(): string {
  return randomBytes(OAUTH_RANDOM_BYTES).toString("base64url");
}

function digest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

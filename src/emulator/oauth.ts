import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  AUTHORIZE_RULES,
  ID_TOKEN_SIGNING,
  OAUTH_LIFETIMES,
  OAUTH_PATHS,
  TOKEN_RULES,
  USERINFO_SCOPE,
} from "./behaviour.js";
import { OAuthFailure, splitScope, type IssuedTokens } from "./grants.js";
import { SigningKey } from "./keys.js";
import type { ClientStore, EmulatedClient } from "./store.js";

/**
 * The emulator as Cloudflare's OAuth authorization server (docs/API-BEHAVIOUR.md, "The OAuth
 * authorization server"): discovery, JWKS, the authorization endpoint with a test user who consents
 * at once, the token endpoint (authorization_code with PKCE, refresh_token), revocation, userinfo and
 * logout, at the root of the emulator's origin, which is the issuer. The clients are the ones created
 * through the emulated API, authenticated by their `token_endpoint_auth_method` and their live
 * secrets; codes and tokens live in the store (src/emulator/grants.ts). Every choice the documents
 * leave open is in src/emulator/behaviour.ts.
 *
 * Faults, latency and the rate limit apply to /client/v4 only: the login flows of a test stay
 * deterministic while the reconciler's API calls are being broken.
 */

/** The user who signs in at the authorization endpoint. */
export interface OAuthUser {
  /** `sub` of every token, `id` of `GET /client/v4/user`. */
  id: string;
  email: string;
}

export interface OAuthSetup {
  store: ClientStore;
  user: OAuthUser;
  /** The origin the emulator listens on (known only once it is listening). */
  issuer: () => string;
  now: () => Date;
}

type Params = Map<string, string>;
type Body = Buffer | null;

const PATHS = new Set<string>(Object.values(OAUTH_PATHS));

/** Serves the OAuth paths of `OAUTH_PATHS`. */
export class OAuthServer {
  readonly #setup: OAuthSetup;
  readonly #key = new SigningKey();

  constructor(setup: OAuthSetup) {
    this.#setup = setup;
  }

  /** Whether `path` is one of the authorization server's. */
  static serves(path: string): boolean {
    return PATHS.has(path);
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, body: Body): void {
    const method = req.method ?? "GET";
    try {
      switch (path) {
        case OAUTH_PATHS.discovery:
          allow(method, ["GET"]);
          return sendJson(res, 200, this.#discovery());
        case OAUTH_PATHS.jwks:
          allow(method, ["GET"]);
          return sendJson(res, 200, this.#key.jwks());
        case OAUTH_PATHS.authorize:
          allow(method, ["GET", "POST"]);
          return this.#authorize(res, requestParams(req, body));
        case OAUTH_PATHS.token:
          allow(method, ["POST"]);
          return this.#token(req, res, formParams(req, body));
        case OAUTH_PATHS.revoke:
          allow(method, ["POST"]);
          return this.#revoke(req, res, formParams(req, body));
        case OAUTH_PATHS.userinfo:
          allow(method, ["GET", "POST"]);
          return this.#userinfo(req, res);
        case OAUTH_PATHS.logout:
          allow(method, ["GET", "POST"]);
          return this.#logout(res, requestParams(req, body));
      }
    } catch (error) {
      if (error instanceof MethodNotAllowed) {
        res.setHeader("Allow", error.allowed.join(", "));
        return sendJson(res, 405, { error: "invalid_request", error_description: error.message });
      }
      if (error instanceof PageFailure) return sendPage(res, 400, error.message);
      if (!(error instanceof OAuthFailure)) throw error;
      const headers: Record<string, string> = {};
      if (error instanceof ClientAuthFailure && error.basic)
        headers["WWW-Authenticate"] = 'Basic realm="oauth2"';
      sendJson(res, error.status, { error: error.error, error_description: error.message }, headers);
    }
  }

  #discovery(): Record<string, unknown> {
    const issuer = this.#setup.issuer();
    const methods = ["client_secret_basic", "client_secret_post", "none"];
    return {
      issuer,
      authorization_endpoint: `${issuer}${OAUTH_PATHS.authorize}`,
      token_endpoint: `${issuer}${OAUTH_PATHS.token}`,
      revocation_endpoint: `${issuer}${OAUTH_PATHS.revoke}`,
      userinfo_endpoint: `${issuer}${OAUTH_PATHS.userinfo}`,
      end_session_endpoint: `${issuer}${OAUTH_PATHS.logout}`,
      jwks_uri: `${issuer}${OAUTH_PATHS.jwks}`,
      response_types_supported: [AUTHORIZE_RULES.servedResponseType],
      response_modes_supported: ["query"],
      grant_types_supported: ["authorization_code", "refresh_token"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: [ID_TOKEN_SIGNING.alg],
      token_endpoint_auth_methods_supported: methods,
      revocation_endpoint_auth_methods_supported: methods,
      code_challenge_methods_supported: [...AUTHORIZE_RULES.codeChallengeMethods],
      scopes_supported: ["openid", "offline_access", ...this.#setup.store.scopes().map((s) => s.id)],
      claims_supported: ["iss", "sub", "aud", "iat", "exp", "nonce", "at_hash"],
      authorization_response_iss_parameter_supported: AUTHORIZE_RULES.issInRedirect,
    };
  }

  /** RFC 6749 §4.1.1: approves at once for the test user, or redirects the error (§4.1.2.1). */
  #authorize(res: ServerResponse, p: Params): void {
    const clientId = p.get("client_id");
    const client = clientId === undefined ? undefined : this.#setup.store.oauthClient(clientId);
    if (client === undefined) {
      throw new PageFailure(
        clientId === undefined ? "client_id is missing" : `unknown client_id ${clientId}`,
      );
    }
    const redirectUri = p.get("redirect_uri");
    if (redirectUri === undefined) throw new PageFailure("redirect_uri is missing");
    if (!client.redirect_uris.includes(redirectUri)) {
      throw new PageFailure("redirect_uri is not one of the client's redirect_uris");
    }
    const state = p.get("state");
    const back = (values: Record<string, string>) => {
      const extra: Record<string, string> = AUTHORIZE_RULES.issInRedirect
        ? { iss: this.#setup.issuer() }
        : {};
      redirect(res, redirectUri, { ...values, ...(state === undefined ? {} : { state }), ...extra });
    };
    try {
      if (p.has(DUPLICATE))
        throw new OAuthFailure("invalid_request", `parameter ${p.get(DUPLICATE)} repeated`);
      const scopes = checkAuthorizeRequest(client, p);
      const challenge = p.get("code_challenge");
      const nonce = p.get("nonce");
      const code = this.#setup.store.grants.issueCode({
        clientId: client.client_id,
        redirectUri,
        scopes,
        userId: this.#setup.user.id,
        ...(challenge === undefined ? {} : { challenge }),
        ...(nonce === undefined ? {} : { nonce }),
      });
      back({ code });
    } catch (error) {
      if (!(error instanceof OAuthFailure)) throw error;
      back({ error: error.error, error_description: error.message });
    }
  }

  /** RFC 6749 §4.1.3 and §6. */
  #token(req: IncomingMessage, res: ServerResponse, p: Params): void {
    const client = this.#authenticate(req, p);
    const grants = this.#setup.store.grants;
    const grantType = p.get("grant_type");
    let issued: IssuedTokens;
    if (grantType === "authorization_code") {
      const code = required(p, "code");
      const withRefresh = client.grant_types.includes("refresh_token");
      issued = grants.exchangeCode(
        client.client_id,
        code,
        p.get("redirect_uri"),
        p.get("code_verifier"),
        withRefresh,
      );
    } else if (grantType === "refresh_token") {
      if (!client.grant_types.includes("refresh_token")) {
        throw new OAuthFailure("unauthorized_client", "the client does not hold the refresh_token grant");
      }
      issued = grants.refresh(client.client_id, required(p, "refresh_token"), p.get("scope"));
    } else if (grantType === undefined) {
      throw new OAuthFailure("invalid_request", "grant_type is missing");
    } else {
      throw new OAuthFailure("unsupported_grant_type", `grant_type ${grantType} is not supported`);
    }
    const answer: Record<string, unknown> = {
      access_token: issued.access_token,
      token_type: "Bearer",
      expires_in: issued.expires_in,
      scope: issued.scopes.join(" "),
      ...(issued.refresh_token === undefined ? {} : { refresh_token: issued.refresh_token }),
    };
    const idToken = grantType === "authorization_code" || TOKEN_RULES.idTokenOnRefresh;
    if (idToken && issued.scopes.includes("openid")) answer["id_token"] = this.#idToken(issued);
    sendJson(res, 200, answer);
  }

  /** OpenID Connect Core 2 and 3.1.3.6. */
  #idToken(issued: IssuedTokens): string {
    const iat = Math.floor(this.#setup.now().getTime() / 1000);
    const hash = createHash("sha256").update(issued.access_token).digest();
    return this.#key.signJwt({
      iss: this.#setup.issuer(),
      sub: issued.userId,
      aud: issued.clientId,
      iat,
      exp: iat + OAUTH_LIFETIMES.idTokenSeconds,
      ...(issued.nonce === undefined ? {} : { nonce: issued.nonce }),
      at_hash: hash.subarray(0, hash.length / 2).toString("base64url"),
    });
  }

  /** RFC 7009 §2: 200 for any token once the client is authenticated. */
  #revoke(req: IncomingMessage, res: ServerResponse, p: Params): void {
    const client = this.#authenticate(req, p);
    this.#setup.store.grants.revokeToken(client.client_id, required(p, "token"));
    res.writeHead(200, { "Cache-Control": "no-store", "Content-Length": 0 });
    res.end();
  }

  /** OpenID Connect Core 5.3: only `sub` (docs/API-BEHAVIOUR.md [doc]). */
  #userinfo(req: IncomingMessage, res: ServerResponse): void {
    const grant = this.#setup.store.grants.accessGrant(bearerToken(req.headers["authorization"]));
    if (grant === undefined) {
      return sendJson(
        res,
        401,
        { error: "invalid_token" },
        { "WWW-Authenticate": 'Bearer error="invalid_token"' },
      );
    }
    if (!grant.scopes.includes(USERINFO_SCOPE)) {
      const challenge = `Bearer error="insufficient_scope", scope="${USERINFO_SCOPE}"`;
      return sendJson(res, 403, { error: "insufficient_scope" }, { "WWW-Authenticate": challenge });
    }
    sendJson(res, 200, { sub: grant.userId });
  }

  /** OpenID Connect RP-Initiated Logout 1.0. */
  #logout(res: ServerResponse, p: Params): void {
    const hint = p.get("id_token_hint");
    let clientId = p.get("client_id");
    if (hint !== undefined) {
      const aud = this.#key.verifiedClaims(hint)?.["aud"];
      if (typeof aud !== "string")
        throw new PageFailure("id_token_hint is not an id_token this server issued");
      if (clientId !== undefined && clientId !== aud)
        throw new PageFailure("id_token_hint is for another client");
      clientId = aud;
    }
    const target = p.get("post_logout_redirect_uri");
    if (clientId === undefined) {
      if (target !== undefined)
        throw new PageFailure("post_logout_redirect_uri needs client_id or id_token_hint");
      return sendPage(res, 200, "You are signed out.");
    }
    const client = this.#setup.store.oauthClient(clientId);
    if (client === undefined) throw new PageFailure(`unknown client_id ${clientId}`);
    if (target === undefined) return sendPage(res, 200, "You are signed out.");
    if (!(client.post_logout_redirect_uris ?? []).includes(target)) {
      throw new PageFailure("post_logout_redirect_uri is not one of the client's post_logout_redirect_uris");
    }
    const state = p.get("state");
    redirect(res, target, state === undefined ? {} : { state });
  }

  /**
   * RFC 6749 §2.3 with the client's own `token_endpoint_auth_method`: Basic header, `client_secret` in
   * the body, or neither (`none`); any other method than the client's, two at once, an unknown client
   * or a secret that is neither its current nor its rotated one is `invalid_client`.
   */
  #authenticate(req: IncomingMessage, p: Params): EmulatedClient {
    if (p.has(DUPLICATE)) throw new OAuthFailure("invalid_request", `parameter ${p.get(DUPLICATE)} repeated`);
    const header = req.headers["authorization"];
    const basic = header === undefined ? undefined : basicCredentials(header);
    const postSecret = p.get("client_secret");
    if (basic !== undefined && postSecret !== undefined) {
      throw new OAuthFailure("invalid_request", "the client authenticated with more than one method");
    }
    const bodyId = p.get("client_id");
    if (basic !== undefined && bodyId !== undefined && bodyId !== basic.id) {
      throw new ClientAuthFailure("client_id in the body differs from the Basic credentials", true);
    }
    const method =
      basic !== undefined ? "client_secret_basic" : postSecret !== undefined ? "client_secret_post" : "none";
    const isBasic = basic !== undefined;
    const clientId = basic?.id ?? bodyId;
    if (clientId === undefined || clientId === "")
      throw new ClientAuthFailure("no client authentication", isBasic);
    const client = this.#setup.store.oauthClient(clientId);
    if (client === undefined) throw new ClientAuthFailure("client authentication failed", isBasic);
    if (client.token_endpoint_auth_method !== method) {
      throw new ClientAuthFailure(
        `the client authenticates with ${client.token_endpoint_auth_method}, not ${method}`,
        isBasic,
      );
    }
    if (method !== "none") {
      const secret = basic?.secret ?? postSecret ?? "";
      if (this.#setup.store.oauthSecretSlot(clientId, secret) === null) {
        throw new ClientAuthFailure("client authentication failed", isBasic);
      }
    }
    return client;
  }
}

/** The authorization request's checks after client and redirect_uri: the granted scopes, or a failure. */
function checkAuthorizeRequest(client: EmulatedClient, p: Params): string[] {
  const responseType = p.get("response_type");
  if (responseType === undefined) throw new OAuthFailure("invalid_request", "response_type is missing");
  if (responseType !== AUTHORIZE_RULES.servedResponseType) {
    throw new OAuthFailure("unsupported_response_type", `response_type ${responseType} is not supported`);
  }
  if (!(client.response_types as readonly string[]).includes(responseType)) {
    throw new OAuthFailure(
      "unauthorized_client",
      `the client's response_types do not include ${responseType}`,
    );
  }
  const scopes = splitScope(p.get("scope") ?? "");
  if (scopes.length === 0 && AUTHORIZE_RULES.requireScope) {
    throw new OAuthFailure("invalid_scope", "scope is missing");
  }
  const unknown = scopes.filter((s) => !client.scopes.includes(s));
  if (unknown.length > 0) {
    throw new OAuthFailure("invalid_scope", `not among the client's scopes: ${unknown.join(" ")}`);
  }
  const challenge = p.get("code_challenge");
  const method = p.get("code_challenge_method");
  if (challenge !== undefined) {
    if (
      method === undefined ||
      !(AUTHORIZE_RULES.codeChallengeMethods as readonly string[]).includes(method)
    ) {
      throw new OAuthFailure("invalid_request", "code_challenge_method must be S256");
    }
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
      throw new OAuthFailure("invalid_request", "code_challenge is not a base64url SHA-256 digest");
    }
  } else {
    if (method !== undefined)
      throw new OAuthFailure("invalid_request", "code_challenge_method without code_challenge");
    if ((AUTHORIZE_RULES.pkceRequiredFor as readonly string[]).includes(client.token_endpoint_auth_method)) {
      throw new OAuthFailure("invalid_request", "PKCE (code_challenge) is required for this client");
    }
  }
  return [...new Set(scopes)];
}

/** A failure the client authentication step refuses with: 401 `invalid_client`. */
class ClientAuthFailure extends OAuthFailure {
  readonly basic: boolean;

  constructor(description: string, basic: boolean) {
    super("invalid_client", description, 401);
    this.basic = basic;
  }
}

/** A request that must not be redirected back (unknown client, bad redirect_uri): a 400 page. */
class PageFailure extends Error {}

class MethodNotAllowed extends Error {
  readonly allowed: readonly string[];

  constructor(allowed: readonly string[]) {
    super(`method not allowed; use ${allowed.join(" or ")}`);
    this.allowed = allowed;
  }
}

function allow(method: string, allowed: readonly string[]): void {
  if (!allowed.includes(method)) throw new MethodNotAllowed(allowed);
}

/** Set under this key when a parameter came twice (RFC 6749 §3.1: "MUST NOT be included more than once"). */
const DUPLICATE = "\u0000duplicate";

function toParams(search: URLSearchParams): Params {
  const out: Params = new Map();
  for (const [key, value] of search) {
    if (value === "") continue; // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    if (out.has(key)) out.set(DUPLICATE, key);
    else out.set(key, value);
  }
  return out;
}

/** The query of a GET, the form body of a POST (the authorization and logout endpoints take both). */
function requestParams(req: IncomingMessage, body: Body): Params {
  if (req.method === "POST") return formParams(req, body);
  return toParams(new URL(req.url ?? "/", "http://emulator").searchParams);
}

function formParams(req: IncomingMessage, body: Body): Params {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (body === null) throw new OAuthFailure("invalid_request", "request body too large");
  if (body.length > 0 && type !== "application/x-www-form-urlencoded") {
    throw new OAuthFailure("invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  return toParams(new URLSearchParams(body.toString("utf8")));
}

function required(p: Params, name: string): string {
  const value = p.get(name);
  if (value === undefined) throw new OAuthFailure("invalid_request", `${name} is missing`);
  return value;
}

/** RFC 6749 §2.3.1: `Basic base64(urlencode(id):urlencode(secret))`; undefined for another scheme. */
function basicCredentials(header: string): { id: string; secret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match?.[1] === undefined) {
    if (/^Basic\b/i.test(header)) throw new ClientAuthFailure("malformed Basic credentials", true);
    return undefined;
  }
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw new ClientAuthFailure("malformed Basic credentials", true);
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    throw new ClientAuthFailure("malformed Basic credentials", true);
  }
}

function formDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, " "));
}

/** The token of `Authorization: Bearer <token>`, or "". */
export function bearerToken(header: string | undefined): string {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1] ?? "";
}

function redirect(res: ServerResponse, target: string, values: Record<string, string>): void {
  const url = new URL(target);
  for (const [key, value] of Object.entries(values)) url.searchParams.set(key, value);
  res.writeHead(302, { Location: url.href, "Cache-Control": "no-store", "Content-Length": 0 });
  res.end();
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
    Pragma: "no-cache",
    "Content-Length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

function sendPage(res: ServerResponse, status: number, message: string): void {
  const title = status === 200 ? "Signed out" : "OAuth request refused";
  const payload = `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1><p>${escapeHtml(message)}</p></body></html>\n`;
  res.writeHead(status, {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Every `[chosen]` behaviour of the emulator, in one place.
 *
 * docs/API-BEHAVIOUR.md marks what Cloudflare documents ([doc]) and what the project had to choose because it
 * is not documented anywhere ([chosen]). Everything here is a choice: when the real API is observed
 * to behave differently, change it here and the store, the HTTP layer and the tests follow. Nothing
 * outside this module hard-codes an error code, an HTTP status, a secret format or a rule toggle.
 */

/** One API failure kind: the HTTP status and the integer code that goes into `errors[0].code`. */
export interface FailureKind {
  status: number;
  code: number;
}

/**
 * The failure table. docs/API-BEHAVIOUR.md, "Envelope and auth": 400 for every validation or state-conflict
 * error (never 409: the SDKs retry 409), 401/403 with code 10000 for auth, 404 for an unknown client or
 * account, 429 for the rate limit. The individual codes (>= 1000, as the OpenAPI `messages` schema requires)
 * are chosen so tests and the reconciler can tell the rules apart.
 */
export const FAILURES = {
  /** Body is not JSON, not an object, or too large. */
  invalidJson: { status: 400, code: 1000 },
  /** A field is missing, has the wrong type, or a value outside its enum. */
  invalidField: { status: 400, code: 1001 },
  /** A colon-delimited scope, or a dot-delimited scope missing from the catalogue. */
  invalidScope: { status: 400, code: 1002 },
  /** An optional scope not in `scopes`, or a protocol scope made optional. */
  invalidOptionalScope: { status: 400, code: 1003 },
  /** A field that cannot be sent here (`client_id`/`visibility` on create, visibility other than `public`). */
  fieldNotAllowed: { status: 400, code: 1004 },
  /** Promotion to public refused: a requirement is missing. */
  promotionRefused: { status: 400, code: 1005 },
  /** Public -> private refused (promotion is one-way). */
  demotionRefused: { status: 400, code: 1006 },
  /** The verified `client_uri` host cannot change. */
  clientUriHostLocked: { status: 400, code: 1007 },
  /** rotate_secret refused: a rotated secret is still present, or the client has no secret (`none`). */
  rotateRefused: { status: 400, code: 1008 },
  /** DELETE rotate_secret with no rotated secret. */
  noRotatedSecret: { status: 400, code: 1009 },
  /** `token_endpoint_auth_method` cannot move between `none` and a confidential method. */
  authMethodChangeRefused: { status: 400, code: 1010 },
  /** No credentials at all. */
  authMissing: { status: 401, code: 10000 },
  /** Credentials present but not accepted. */
  authInvalid: { status: 403, code: 10000 },
  /** A read-only token on a write endpoint. */
  authReadOnly: { status: 403, code: 10000 },
  /** Unknown client id, or an account id that is not 32 characters (treated as an unknown account). */
  notFound: { status: 404, code: 7003 },
  /** No route for that method and path. */
  noRoute: { status: 404, code: 7000 },
  /** The credential spent its quota for the window. */
  rateLimited: { status: 429, code: 1015 },
  /** An injected server fault. */
  injected5xx: { status: 500, code: 10002 },
  /** `GET /user` with an OAuth access token whose grant lacks `user-details.read`. */
  userScopeMissing: { status: 403, code: 10000 },
} as const satisfies Record<string, FailureKind>;

export type FailureName = keyof typeof FAILURES;

/** Largest request body the emulator reads (bytes). */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Account ids: docs/API-BEHAVIOUR.md, "Endpoints", says "32 characters"; the emulator checks exactly that
 * (not hex), so test fixtures may use readable ids. A malformed one is an unknown account: 404 `notFound`.
 */
export const ACCOUNT_ID_PATTERN = /^[^/]{32}$/;

/** Client ids the emulator generates: 32 lowercase hex characters (docs/API-BEHAVIOUR.md, "Endpoints"). */
export const CLIENT_ID_HEX_LENGTH = 32;

/** Secrets: 64 lowercase hex characters, drawn from the seeded PRNG. */
export const SECRET_HEX_LENGTH = 64;

/** The verification token in `cloudflare_oauth_client_publisher=<token>`: 32 lowercase hex characters. */
export const VERIFICATION_TOKEN_HEX_LENGTH = 32;

/** The DNS TXT value a publisher must add (docs/API-BEHAVIOUR.md, "Create" [doc]). */
export function verificationText(token: string): string {
  return `cloudflare_oauth_client_publisher=${token}`;
}

/**
 * Fields that cannot be sent on create: 400 `fieldNotAllowed` (docs/API-BEHAVIOUR.md, "Create":
 * "cannot be sent").
 */
export const CREATE_REFUSED_FIELDS = ["client_id", "visibility"] as const;

/** Unknown body fields (and read-only fields on PATCH, such as `client_id`) are ignored, not refused. */
export const IGNORE_UNKNOWN_FIELDS = true;

/** `null` on create is treated as "not sent" for optional fields; on PATCH it clears them. */
export const NULL_ON_CREATE_MEANS_ABSENT = true;

/** Validation of individual values. */
export const VALUE_RULES = {
  /** `redirect_uris` must hold at least one URI (an authorization_code client needs somewhere to return). */
  minRedirectUris: 1,
  /** `scopes` may be empty (a client can hold only identity/protocol scopes). */
  minScopes: 0,
  /** `response_types` must hold at least one value. */
  minResponseTypes: 1,
  /** Duplicate entries in any array field are refused with 400 rather than silently collapsed. */
  refuseDuplicates: true,
  /** `client_uri`, `logo_uri`, `policy_uri`, `tos_uri` must be absolute http(s) URLs. */
  httpUrlFields: ["client_uri", "logo_uri", "policy_uri", "tos_uri"] as const,
  /** `redirect_uris` and `post_logout_redirect_uris` must be absolute URLs of any scheme (native apps). */
  anyUrlArrayFields: ["redirect_uris", "post_logout_redirect_uris"] as const,
  /** `allowed_cors_origins` entries must be origins: http(s)://host[:port], no path, query or fragment. */
  originArrayFields: ["allowed_cors_origins"] as const,
};

/** A simple identity scope: no dot, no colon. `email`, `profile`, `openid`, `offline_access`. */
export const IDENTITY_SCOPE_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Scopes that may never be optional (docs/API-BEHAVIOUR.md, "Scopes" [doc]). */
export const NEVER_OPTIONAL_SCOPES = ["openid", "offline", "offline_access"] as const;

/**
 * Protocol scopes: [chosen, from user reports] `offline_access` exactly when `refresh_token` is in
 * grant_types, `openid` exactly when `id_token` is in response_types. The server strips whatever the
 * caller sent for them and appends them at the end in this order, so the stored order is stable.
 */
export const PROTOCOL_SCOPE_RULES = [
  {
    scope: "openid",
    when: (f: { response_types: readonly string[] }) => f.response_types.includes("id_token"),
  },
  {
    scope: "offline_access",
    when: (f: { grant_types: readonly string[] }) => f.grant_types.includes("refresh_token"),
  },
] as const;

/**
 * `client_uri` verification.
 * - Sending `client_uri` (create, or PATCH even with the same value) restarts verification at
 *   `pending`, unless the host is already verified and unchanged (then it stays verified and only the
 *   path changes).
 * - The token is kept while the host stays the same and regenerated when the host changes.
 * - Clearing `client_uri` (null) once its host is verified is a host change: 400 `clientUriHostLocked`.
 * - A verification status change (control endpoint) bumps `updated_at`.
 */
export const VERIFICATION_RULES = {
  restartStatus: "pending",
  keepTokenForSameHost: true,
  clearingVerifiedUriIsHostChange: true,
  bumpUpdatedAtOnStatusChange: true,
} as const;

/** PATCH: any value of `visibility` other than `"public"` is 400 (`demotionRefused` when currently public). */
export const VISIBILITY_RULES = {
  /** A second `visibility: "public"` on a public client succeeds and keeps the first `promoted_at`. */
  repeatPromotionIsNoop: true,
} as const;

/** PATCH `{}` is a mutation: it succeeds and bumps `updated_at` like every other PATCH. */
export const EMPTY_PATCH_BUMPS_UPDATED_AT = true;

/**
 * `token_endpoint_auth_method` may change between `client_secret_basic` and `client_secret_post`, but
 * not between `none` and a confidential method: PATCH never returns a secret, so a client moved to a
 * confidential method would have none, and one moved to `none` would keep secrets it cannot use.
 */
export const AUTH_METHOD_CLASS_CHANGE_REFUSED = true;

/** Auth: a `Bearer` token wins over `X-Auth-Email` + `X-Auth-Key` when both are sent. */
export const BEARER_WINS_OVER_API_KEY = true;

/**
 * With a token list configured, `X-Auth-Key` must be one of the listed tokens (or read-only tokens);
 * any non-empty `X-Auth-Email` goes with it. With no list, any non-empty pair is accepted.
 */
export const API_KEY_CHECKED_AGAINST_TOKENS = true;

/** Rate limiting: fixed windows per credential, the window opening at the credential's first request. */
export const RATE_LIMIT_DEFAULTS = { quota: 1200, windowSeconds: 300 } as const;

/*
 * Also chosen, fixed in the code rather than toggled here:
 * - The per-IP limit of the real API (200 requests/second) is not emulated; only the per-credential one.
 * - Lists are in creation order, one page, with `result_info {page: 1, per_page, count, total_count}`.
 * - `promoted_at` is the `updated_at` of the PATCH that promoted the client.
 * - Control endpoints answer with the same v4 envelope as the API.
 */

/** `POST /__emulator/reset` also re-seeds the PRNG, so a reset emulator replays the same ids and faults. */
export const RESET_RESEEDS_PRNG = true;

/** Default listening address and port. */
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 8787;

/*
 * The OAuth authorization server (docs/API-BEHAVIOUR.md, "The OAuth authorization server"). Cloudflare
 * documents the endpoints, the client authentication methods and that userinfo holds only `sub`;
 * everything below is chosen, following RFC 6749, RFC 7636 (PKCE), RFC 7009 (revocation) and OpenID
 * Connect Core, and `src/emulator/oauth.ts` and `src/emulator/grants.ts` read it from here.
 */

/** The user who signs in and consents at once unless `oauthUser` / `--oauth-user ID:EMAIL` names another. */
export const DEFAULT_OAUTH_USER = {
  id: "9a7806061c88ada191ed06f989cc3dac",
  email: "user@example.com",
} as const;

/** The OAuth paths, at the root of the emulator's origin (the issuer), as on dash.cloudflare.com. */
export const OAUTH_PATHS = {
  discovery: "/.well-known/openid-configuration",
  jwks: "/.well-known/jwks.json",
  authorize: "/oauth2/auth",
  token: "/oauth2/token",
  revoke: "/oauth2/revoke",
  logout: "/oauth2/logout",
  userinfo: "/oauth2/userinfo",
} as const;

/** Lifetimes, in seconds, measured on the emulator's clock (`now`). */
export const OAUTH_LIFETIMES = {
  /** RFC 6749 §4.1.2 recommends at most ten minutes; the emulator uses the maximum. */
  codeSeconds: 600,
  accessTokenSeconds: 3600,
  idTokenSeconds: 3600,
  /** A refresh token expires this long after it was issued (each rotation issues a fresh one). */
  refreshTokenSeconds: 30 * 24 * 3600,
} as const;

/** Random values from node:crypto: bytes before base64url (32 bytes = 256 bits). */
export const OAUTH_RANDOM_BYTES = 32;

/**
 * The authorization endpoint's rules.
 * - Only `response_type=code` is served: a client holding `token` or `id_token` may list them, but
 *   asking for them answers `unsupported_response_type`; asking for `code` when the client does not
 *   list it answers `unauthorized_client`.
 * - `redirect_uri` is required (OpenID Connect Core 3.1.2.1) and compared as an exact string; a missing
 *   or unregistered one, like an unknown `client_id`, gets a 400 page and no redirect (RFC 6749 §4.1.2.1).
 * - `scope` is required; every requested scope must be one of the client's `scopes`, which carry the
 *   protocol scopes by the API's rule (PROTOCOL_SCOPE_RULES): `openid` only for a client with `id_token`
 *   in response_types, `offline_access` only for one with the `refresh_token` grant. The granted scopes
 *   are exactly the requested ones (the test user consents to everything).
 * - PKCE: S256 only (a `plain` or missing `code_challenge_method` beside a challenge is
 *   `invalid_request`); required for `none` clients, verified whenever the request carried one.
 * - The redirect carries `iss` (RFC 9207) besides `code` and `state`.
 */
export const AUTHORIZE_RULES = {
  servedResponseType: "code",
  requireScope: true,
  codeChallengeMethods: ["S256"],
  pkceRequiredFor: ["none"],
  issInRedirect: true,
} as const;

/**
 * The token endpoint's rules.
 * - The method a request authenticates with (Basic header, `client_secret` in the body, or neither)
 *   must be the client's `token_endpoint_auth_method`; another is `invalid_client`. So is using two.
 * - The current secret and, while `has_rotated_secret` is true, the rotated one authenticate; neither
 *   rotating nor deleting the rotated secret revokes a token: tokens belong to the client.
 * - `invalid_client` is 401, with `WWW-Authenticate: Basic` when the request used Basic (RFC 6749 §5.2);
 *   every other error is 400.
 * - A code is consumed only by a successful exchange. A second use fails `invalid_grant` and revokes
 *   every token issued from that code (RFC 6749 §4.1.2). A code exchanged without the verifier its
 *   challenge needs, with a verifier it had no challenge for, or with another `redirect_uri` fails
 *   `invalid_grant` and stays usable.
 * - Refresh tokens rotate: each refresh answers a new refresh token and the one presented stops
 *   working. Presenting a used one again fails `invalid_grant` and revokes the whole grant (every
 *   token descended from the same code), as the OAuth security BCP recommends for replay.
 * - A refresh may narrow `scope` (a subset of the grant); wider is `invalid_scope`. It is refused with
 *   `unauthorized_client` once the client no longer holds the `refresh_token` grant.
 * - A refresh token is issued only when the client holds the `refresh_token` grant and
 *   `offline_access` was granted; an `id_token` only when `openid` was granted (on refresh too, without
 *   `nonce`).
 */
export const TOKEN_RULES = {
  codeConsumedOnlyOnSuccess: true,
  codeReuseRevokesGrant: true,
  rotateRefreshTokens: true,
  refreshReuseRevokesGrant: true,
  idTokenOnRefresh: true,
} as const;

/** The id_token signature: RS256 with a 2048-bit key made at the first use, `kid` = its RFC 7638 thumbprint. */
export const ID_TOKEN_SIGNING = { alg: "RS256", modulusLength: 2048 } as const;

/**
 * Revocation (RFC 7009): the client authenticates as at the token endpoint; an unknown token, or one
 * issued to another client, answers 200 and revokes nothing. Revoking a refresh token revokes its whole
 * grant (access tokens included, RFC 7009 §2.1); revoking an access token revokes only that token.
 */
export const REVOKE_RULES = { refreshRevokesGrant: true } as const;

/**
 * Userinfo: a live access token whose grant holds `openid` (OpenID Connect Core 5.3), else 401
 * `invalid_token` (403 `insufficient_scope` without `openid`); the answer is `{sub}` only.
 * `GET /client/v4/user` accepts a live access token whose grant holds `user-details.read` (403 code
 * 10000 without it) besides the API's own tokens, and answers the test user `{id, email}`.
 */
export const USERINFO_SCOPE = "openid";
export const USER_ENDPOINT_SCOPE = "user-details.read";

/**
 * Logout (OpenID Connect RP-Initiated Logout): the client is named by `client_id` or by the `aud` of an
 * `id_token_hint` this emulator signed; `post_logout_redirect_uri` must equal one of the client's
 * `post_logout_redirect_uris` (a 302 there, with `state`), otherwise a 400 page; without one, a 200
 * page. The emulator keeps no browser session, so logout revokes no token (fixed in the code).
 */

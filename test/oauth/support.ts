import { createHash } from "node:crypto";
import * as oidc from "openid-client";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { ACCOUNT_A, WRITE_TOKEN } from "../helpers/emulator.js";
import { call, createClient, type Client } from "../emulator/support.js";

/**
 * Helpers for the authorization server's tests: clients are created through the emulator's API (as the
 * reconciler creates them, the secret taken from the create answer), and a relying party is
 * openid-client, a certified OpenID library nobody here wrote, configured by discovery. The
 * authorization endpoint is driven with fetch and `redirect: "manual"`: the test user consents at
 * once, so one 302 carries the code.
 */

export type AuthMethod = "client_secret_basic" | "client_secret_post" | "none";
export const AUTH_METHODS: readonly AuthMethod[] = ["client_secret_basic", "client_secret_post", "none"];

export const REDIRECT_URI = "https://app.example.com/callback";
export const LOGOUT_URI = "https://app.example.com/signed-out";
/** What a login library asks for: identity, refresh, and the profile at /client/v4/user. */
export const LOGIN_SCOPE = "openid offline_access user-details.read";

/** A login-capable client: code + id_token, refresh tokens, the profile scope; created through the API. */
export async function createLoginClient(
  emu: EmulatorHandle,
  method: AuthMethod,
  overrides: Record<string, unknown> = {},
): Promise<Client> {
  return createClient(emu, ACCOUNT_A, {
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [LOGOUT_URI],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code", "id_token"],
    scopes: ["user-details.read", "account-settings.read"],
    token_endpoint_auth_method: method,
    ...overrides,
  });
}

/** The openid-client authentication for a method and secret. */
export function clientAuth(method: AuthMethod, secret: string | undefined): oidc.ClientAuth {
  if (method === "none") return oidc.None();
  if (secret === undefined) throw new Error(`${method} needs a secret`);
  return method === "client_secret_basic" ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret);
}

/** An openid-client configuration found by discovery at the emulator's issuer. */
export function relyingParty(
  emu: EmulatorHandle,
  clientId: string,
  method: AuthMethod,
  secret: string | undefined,
): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(emu.issuer), clientId, undefined, clientAuth(method, secret), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** Follows the authorization URL once, without following the redirect: the 302's Location. */
export async function authorize(
  url: URL | string,
): Promise<{ status: number; location: URL | undefined; body: string }> {
  const res = await fetch(url, { redirect: "manual" });
  const location = res.headers.get("location");
  return {
    status: res.status,
    location: location === null ? undefined : new URL(location),
    body: await res.text(),
  };
}

export interface Login {
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  /** The callback URL the authorization endpoint redirected to (holds the code). */
  callback: URL;
  verifier: string;
}

/** A whole login: PKCE, state and nonce, the redirect, and openid-client's code exchange and checks. */
export async function login(config: oidc.Configuration, scope = LOGIN_SCOPE): Promise<Login> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  // A nonce only with openid: openid-client then expects an id_token.
  const nonce = scope.split(" ").includes("openid") ? oidc.randomNonce() : undefined;
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    ...(nonce === undefined ? {} : { nonce }),
  });
  const answer = await authorize(url);
  if (answer.status !== 302 || answer.location === undefined) {
    throw new Error(`authorization endpoint answered ${answer.status}: ${answer.body}`);
  }
  const tokens = await oidc.authorizationCodeGrant(config, answer.location, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    ...(nonce === undefined ? {} : { expectedNonce: nonce }),
  });
  return { tokens, callback: answer.location, verifier };
}

/** Raw form POST to an OAuth endpoint (for what openid-client refuses to send). */
export async function postForm(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** `Authorization: Basic` for a client id and secret (RFC 6749 §2.3.1). */
export function basic(clientId: string, secret: string): Record<string, string> {
  const pair = `${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`;
  return { authorization: `Basic ${Buffer.from(pair).toString("base64")}` };
}

/** `GET /client/v4/user` with a bearer token: the status and the envelope's result. */
export async function profile(
  emu: EmulatorHandle,
  token: string,
): Promise<{ status: number; result: unknown }> {
  const reply = await call(emu, "GET", "/user", { token });
  return { status: reply.status, result: reply.body.result };
}

/** API calls on a client as the reconciler makes them. */
export const api = {
  rotate: (emu: EmulatorHandle, id: string) =>
    call<{ client_secret: string }>(emu, "POST", `/accounts/${ACCOUNT_A}/oauth_clients/${id}/rotate_secret`, {
      token: WRITE_TOKEN,
    }),
  deleteRotated: (emu: EmulatorHandle, id: string) =>
    call(emu, "DELETE", `/accounts/${ACCOUNT_A}/oauth_clients/${id}/rotate_secret`),
  delete: (emu: EmulatorHandle, id: string) =>
    call(emu, "DELETE", `/accounts/${ACCOUNT_A}/oauth_clients/${id}`),
  patch: (emu: EmulatorHandle, id: string, body: Record<string, unknown>) =>
    call(emu, "PATCH", `/accounts/${ACCOUNT_A}/oauth_clients/${id}`, { body }),
};

const VERIFIER = "dBjftJeZ4CVP-mJ0kbzsmJ-aXdOyCwXb8zESjW2HiqM";

/** A fixed PKCE pair for raw requests: the challenge is the S256 of the verifier (RFC 7636 §4.2). */
export const PKCE = {
  verifier: VERIFIER,
  challenge: createHash("sha256").update(VERIFIER).digest("base64url"),
} as const;

/** `/oauth2/auth` by hand: a valid request for `clientId` unless `params` overrides (null drops one). */
export function authorizeUrl(
  emu: EmulatorHandle,
  clientId: string,
  params: Record<string, string | null> = {},
): URL {
  const url = new URL(`${emu.issuer}/oauth2/auth`);
  const all: Record<string, string | null> = {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: "user-details.read",
    state: "st-1",
    code_challenge: PKCE.challenge,
    code_challenge_method: "S256",
    ...params,
  };
  for (const [key, value] of Object.entries(all)) if (value !== null) url.searchParams.set(key, value);
  return url;
}

/** A code from a valid authorization request (fails the test otherwise). */
export async function codeFor(
  emu: EmulatorHandle,
  clientId: string,
  params: Record<string, string | null> = {},
): Promise<string> {
  const answer = await authorize(authorizeUrl(emu, clientId, params));
  const code = answer.location?.searchParams.get("code");
  if (answer.status !== 302 || code === null || code === undefined) {
    throw new Error(`no code: ${answer.status} ${answer.location?.href ?? answer.body}`);
  }
  return code;
}

/** A raw `authorization_code` exchange with `client_secret_post` credentials (or none). */
export function exchange(
  emu: EmulatorHandle,
  form: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return postForm(
    `${emu.issuer}/oauth2/token`,
    { grant_type: "authorization_code", redirect_uri: REDIRECT_URI, code_verifier: PKCE.verifier, ...form },
    headers,
  );
}

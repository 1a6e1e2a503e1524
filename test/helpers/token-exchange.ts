import * as oidc from "openid-client";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { control } from "./emulator.js";

/**
 * Whether a client secret works, asked the way an application finds out: a token exchange at the
 * emulator's authorization server with openid-client (test/oauth/consumer-proof.test.ts runs a whole
 * consumer that way). The emulator's `check-secret` control endpoint stays a convenience: it also
 * names the slot (current or rotated), which no OAuth answer tells, and {@link verifiedSecret}
 * refuses to answer if the two disagree.
 */

/** A client as `GET /__emulator/clients` dumps it: the fields an exchange needs. */
interface DumpedClient {
  client_id: string;
  token_endpoint_auth_method: string;
  redirect_uris?: string[];
  response_types?: string[];
  scopes?: string[];
}

/**
 * True when `secret` authenticates the client at /oauth2/token: an authorization code (PKCE, the
 * emulator's test user consents at once) exchanged with the client's own auth method. A client that
 * cannot get a code (no redirect URI or no `code` response type) is asked at /oauth2/revoke, which
 * authenticates the client the same way. False on 401 (`invalid_client`); any other refusal throws.
 */
export async function exchangeWorks(
  emu: EmulatorHandle,
  accountId: string,
  clientId: string,
  secret: string,
): Promise<boolean> {
  if (secret === "") return false;
  const clients = await control<DumpedClient[]>(emu, "GET", `clients?account_id=${accountId}`);
  const client = clients.find((c) => c.client_id === clientId);
  if (client === undefined) return false;
  const method = client.token_endpoint_auth_method;
  if (method !== "client_secret_basic" && method !== "client_secret_post") {
    throw new Error(`exchangeWorks: ${clientId} authenticates with ${method}, not a secret`);
  }
  const auth =
    method === "client_secret_basic" ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret);
  const config = await oidc.discovery(new URL(emu.issuer), clientId, undefined, auth, {
    execute: [oidc.allowInsecureRequests],
  });
  const redirectUri = client.redirect_uris?.[0];
  const scope = client.scopes?.[0];
  try {
    if (redirectUri === undefined || scope === undefined || !(client.response_types ?? []).includes("code")) {
      await oidc.tokenRevocation(config, "not-a-token");
      return true;
    }
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    });
    const answer = await fetch(url, { redirect: "manual" });
    const location = answer.headers.get("location");
    if (answer.status !== 302 || location === null) {
      throw new Error(`exchangeWorks: the authorization endpoint answered ${answer.status}`);
    }
    const tokens = await oidc.authorizationCodeGrant(config, new URL(location), {
      pkceCodeVerifier: verifier,
    });
    return tokens.access_token !== "";
  } catch (error) {
    // A refused client authentication is 401 (RFC 6749 §5.2); openid-client reports the Basic
    // challenge as a WWWAuthenticateChallengeError, the body's error as a ResponseBodyError.
    if ((error as { status?: unknown }).status === 401) return false;
    throw error;
  }
}

/**
 * The emulator's verdict on a secret, proven by a token exchange: `valid` is whether the exchange
 * worked, `slot` is `check-secret`'s. Throws if they disagree, or (as `check-secret` does) for a
 * client the emulator does not know.
 */
export async function verifiedSecret<Slot extends string = string>(
  emu: EmulatorHandle,
  accountId: string,
  clientId: string,
  secret: string,
): Promise<{ valid: boolean; slot: Slot | null }> {
  const verdict = await control<{ valid: boolean; slot: Slot | null }>(emu, "POST", "check-secret", {
    account_id: accountId,
    client_id: clientId,
    client_secret: secret,
  });
  const exchanged = await exchangeWorks(emu, accountId, clientId, secret);
  if (exchanged !== verdict.valid) {
    throw new Error(
      `the token endpoint ${exchanged ? "accepted" : "refused"} a secret check-secret calls ${verdict.valid ? "valid" : "invalid"}`,
    );
  }
  return { valid: exchanged, slot: verdict.slot };
}

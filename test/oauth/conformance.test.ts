import * as oidc from "openid-client";
import { describe, expect, it } from "vitest";
import { DEFAULT_OAUTH_USER } from "../../src/emulator/behaviour.js";
import { useEmulator } from "../helpers/emulator.js";
import {
  AUTH_METHODS,
  authorize,
  createLoginClient,
  LOGOUT_URI,
  login,
  profile,
  relyingParty,
} from "./support.js";

/**
 * The emulator as Cloudflare's OAuth authorization server, driven by openid-client (a certified
 * OpenID relying party): discovery, authorization code with PKCE, the id_token checked against the
 * JWKS, refresh, userinfo, the profile at /client/v4/user, revocation and logout, once for each
 * `token_endpoint_auth_method`, with the client created through the emulated API.
 */

const emulator = useEmulator();

/** The rejection's OAuth `error` (openid-client's ResponseBodyError carries it). */
async function oauthError(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { error?: string }).error ?? (error as Error).message;
  }
  throw new Error("expected a rejection");
}

describe.each(AUTH_METHODS)("token_endpoint_auth_method %s", (method) => {
  it("discovers, logs in with PKCE, validates the id_token, refreshes, revokes and logs out", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, method);
    expect(client.scopes).toEqual(expect.arrayContaining(["openid", "offline_access"]));
    if (method === "none") expect(client.client_secret).toBeUndefined();
    const config = await relyingParty(emu, client.client_id, method, client.client_secret);

    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(emu.issuer);
    expect(metadata.token_endpoint).toBe(`${emu.issuer}/oauth2/token`);
    expect(metadata.code_challenge_methods_supported).toEqual(["S256"]);
    expect(metadata.token_endpoint_auth_methods_supported).toContain(method);

    const { tokens } = await login(config);
    expect(tokens.token_type.toLowerCase()).toBe("bearer");
    expect(tokens.refresh_token).toBeDefined();
    // openid-client has checked the signature against the JWKS, iss, aud, exp, iat and the nonce.
    const claims = tokens.claims();
    expect(claims?.sub).toBe(DEFAULT_OAUTH_USER.id);
    expect(claims?.aud).toBe(client.client_id);
    expect(claims?.iss).toBe(emu.issuer);
    const header = JSON.parse(Buffer.from(tokens.id_token?.split(".")[0] ?? "", "base64url").toString()) as {
      kid: string;
      alg: string;
    };
    const jwks = (await (await fetch(`${emu.issuer}/.well-known/jwks.json`)).json()) as {
      keys: Array<{ kid: string; d?: string }>;
    };
    expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, DEFAULT_OAUTH_USER.id);
    expect(info).toEqual({ sub: DEFAULT_OAUTH_USER.id });
    expect(await profile(emu, tokens.access_token)).toEqual({
      status: 200,
      result: { id: DEFAULT_OAUTH_USER.id, email: DEFAULT_OAUTH_USER.email },
    });

    // Refresh rotates: a new pair, the old refresh token spent.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token ?? "");
    expect(refreshed.refresh_token).toBeDefined();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()?.sub).toBe(DEFAULT_OAUTH_USER.id);
    expect((await profile(emu, refreshed.access_token)).status).toBe(200);

    // Revoking the refresh token revokes its grant: the refresh token and the access token.
    await oidc.tokenRevocation(config, refreshed.refresh_token ?? "");
    expect(await oauthError(oidc.refreshTokenGrant(config, refreshed.refresh_token ?? ""))).toBe(
      "invalid_grant",
    );
    await expect(oidc.fetchUserInfo(config, refreshed.access_token, DEFAULT_OAUTH_USER.id)).rejects.toThrow();
    // RFC 7009 §2.2: an unknown token is answered 200 too.
    await expect(oidc.tokenRevocation(config, "not-a-token")).resolves.toBeUndefined();

    // Revoking an access token ends that token.
    const second = await login(config);
    expect((await profile(emu, second.tokens.access_token)).status).toBe(200);
    await oidc.tokenRevocation(config, second.tokens.access_token);
    expect((await profile(emu, second.tokens.access_token)).status).toBeGreaterThanOrEqual(401);

    const logout = oidc.buildEndSessionUrl(config, {
      id_token_hint: second.tokens.id_token ?? "",
      post_logout_redirect_uri: LOGOUT_URI,
      state: "bye-1",
    });
    const back = await authorize(logout);
    expect(back.status).toBe(302);
    expect(`${back.location?.origin}${back.location?.pathname}`).toBe(LOGOUT_URI);
    expect(back.location?.searchParams.get("state")).toBe("bye-1");
  });
});

describe("what the client and the grant allow", () => {
  it("issues no refresh token without offline_access, and no id_token without openid", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "client_secret_basic");
    const config = await relyingParty(emu, client.client_id, "client_secret_basic", client.client_secret);
    const { tokens } = await login(config, "openid user-details.read");
    expect(tokens.id_token).toBeDefined();
    expect(tokens.refresh_token).toBeUndefined();
    const plain = await login(config, "user-details.read");
    expect(plain.tokens.id_token).toBeUndefined();
    expect(plain.tokens.scope).toBe("user-details.read");
    // userinfo is OpenID Connect's: without openid it refuses the token.
    await expect(
      oidc.fetchUserInfo(config, plain.tokens.access_token, oidc.skipSubjectCheck),
    ).rejects.toThrow();
    expect((await profile(emu, plain.tokens.access_token)).status).toBe(200);
  });

  it("refuses /client/v4/user to an access token without user-details.read", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "client_secret_post");
    const config = await relyingParty(emu, client.client_id, "client_secret_post", client.client_secret);
    const { tokens } = await login(config, "openid account-settings.read");
    const reply = await profile(emu, tokens.access_token);
    expect(reply.status).toBe(403);
    expect((await oidc.fetchUserInfo(config, tokens.access_token, DEFAULT_OAUTH_USER.id)).sub).toBe(
      DEFAULT_OAUTH_USER.id,
    );
  });

  it("gives no refresh token to a client without the refresh_token grant, even for offline_access", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "client_secret_basic", {
      grant_types: ["authorization_code"],
    });
    expect(client.scopes).not.toContain("offline_access");
    const config = await relyingParty(emu, client.client_id, "client_secret_basic", client.client_secret);
    // offline_access is not among its scopes (the API's rule): asking for it is invalid_scope.
    expect(await oauthError(login(config))).toBe("invalid_scope");
    const { tokens } = await login(config, "openid user-details.read");
    expect(tokens.refresh_token).toBeUndefined();
  });
});

import * as oidc from "openid-client";
import { describe, expect, it } from "vitest";
import { DEFAULT_OAUTH_USER } from "../../src/emulator/behaviour.js";
import { useEmulator } from "../helpers/emulator.js";
import { api, codeFor, createLoginClient, exchange, login, profile, relyingParty, basic } from "./support.js";

/**
 * Secrets and tokens across the reconciler's operations on a client: after rotate_secret both the old
 * and the new secret authenticate at the token endpoint and no token is revoked; after DELETE
 * rotate_secret the old secret is `invalid_client`; deleting the client revokes every token issued to
 * it, and only to it.
 */

const emulator = useEmulator();

/** The raw token-endpoint answer for a fresh code, authenticating with `secret` by `method`. */
async function exchangeWith(
  emu: ReturnType<typeof emulator>,
  clientId: string,
  method: "client_secret_basic" | "client_secret_post",
  secret: string,
) {
  const code = await codeFor(emu, clientId);
  return method === "client_secret_basic"
    ? exchange(emu, { code }, basic(clientId, secret))
    : exchange(emu, { code, client_id: clientId, client_secret: secret });
}

describe.each(["client_secret_basic", "client_secret_post"] as const)("%s", (method) => {
  it("rotate_secret: both secrets exchange and nothing is revoked; DELETE of the rotated secret ends the old one", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, method);
    const oldSecret = client.client_secret ?? "";
    const before = await login(await relyingParty(emu, client.client_id, method, oldSecret));

    const rotated = await api.rotate(emu, client.client_id);
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.result.client_secret;
    expect(newSecret).not.toBe(oldSecret);

    const withOld = await relyingParty(emu, client.client_id, method, oldSecret);
    const withNew = await relyingParty(emu, client.client_id, method, newSecret);
    expect((await login(withOld)).tokens.access_token).toBeDefined();
    expect((await login(withNew)).tokens.access_token).toBeDefined();
    // Rotation revokes none: the tokens from before still work, refreshed with the new secret.
    expect((await profile(emu, before.tokens.access_token)).status).toBe(200);
    const refreshed = await oidc.refreshTokenGrant(withNew, before.tokens.refresh_token ?? "");
    expect(refreshed.claims()?.sub).toBe(DEFAULT_OAUTH_USER.id);

    expect((await api.deleteRotated(emu, client.client_id)).status).toBe(200);
    const refused = await exchangeWith(emu, client.client_id, method, oldSecret);
    expect(refused.status).toBe(401);
    expect(refused.json["error"]).toBe("invalid_client");
    if (method === "client_secret_basic") expect(refused.headers.get("www-authenticate")).toMatch(/^Basic/);
    const accepted = await exchangeWith(emu, client.client_id, method, newSecret);
    expect(accepted.status).toBe(200);
    expect(accepted.json["access_token"]).toEqual(expect.any(String));
    // Deleting the rotated secret revokes no token either.
    expect((await profile(emu, refreshed.access_token)).status).toBe(200);
  });
});

describe("deleting a client", () => {
  it("revokes every access and refresh token issued to it, and only to it", async () => {
    const emu = emulator();
    const doomed = await createLoginClient(emu, "client_secret_basic");
    const other = await createLoginClient(emu, "none");
    const config = await relyingParty(emu, doomed.client_id, "client_secret_basic", doomed.client_secret);
    const otherConfig = await relyingParty(emu, other.client_id, "none", undefined);
    const first = await login(config);
    const second = await login(config);
    const kept = await login(otherConfig);
    for (const l of [first, second, kept])
      expect((await profile(emu, l.tokens.access_token)).status).toBe(200);

    expect((await api.delete(emu, doomed.client_id)).status).toBe(200);

    for (const l of [first, second]) {
      const reply = await profile(emu, l.tokens.access_token);
      expect(reply.status).toBeGreaterThanOrEqual(401);
      expect(reply.status).toBeLessThan(404);
      const info = await fetch(`${emu.issuer}/oauth2/userinfo`, {
        headers: { authorization: `Bearer ${l.tokens.access_token}` },
      });
      expect(info.status).toBe(401);
      // 401 with a Basic challenge: openid-client reports it as a WWW-Authenticate challenge.
      await expect(oidc.refreshTokenGrant(config, l.tokens.refresh_token ?? "")).rejects.toMatchObject({
        status: 401,
      });
    }
    // Its secret authenticates nothing any more.
    const code = await codeFor(emu, other.client_id);
    const refused = await exchange(emu, { code }, basic(doomed.client_id, doomed.client_secret ?? ""));
    expect(refused.status).toBe(401);
    expect(refused.json["error"]).toBe("invalid_client");
    // The other client's tokens are untouched.
    expect((await profile(emu, kept.tokens.access_token)).status).toBe(200);
    expect((await oidc.refreshTokenGrant(otherConfig, kept.tokens.refresh_token ?? "")).access_token).toEqual(
      expect.any(String),
    );
  });
});

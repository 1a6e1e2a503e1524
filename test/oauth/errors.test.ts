import * as oidc from "openid-client";
import { describe, expect, it } from "vitest";
import { startTestEmulator, useEmulator } from "../helpers/emulator.js";
import { manualClock } from "../emulator/support.js";
import {
  api,
  authorize,
  authorizeUrl,
  basic,
  codeFor,
  createLoginClient,
  exchange,
  login,
  PKCE,
  postForm,
  profile,
  REDIRECT_URI,
  relyingParty,
} from "./support.js";

/**
 * The authorization server's refusals, over real HTTP: what is never redirected (an unknown client, a
 * redirect_uri the client does not hold), what is redirected as RFC 6749 §4.1.2.1 says, and the token
 * endpoint's `invalid_grant` and `invalid_client` cases (code reuse, PKCE, auth method, expiry).
 */

const emulator = useEmulator();

describe("/oauth2/auth", () => {
  it("answers a redirect_uri the client does not hold, or an unknown client, with a 400 page and no redirect", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "client_secret_basic");
    const cases: Array<Record<string, string | null>> = [
      { redirect_uri: "https://evil.example/callback" },
      { redirect_uri: `${REDIRECT_URI}/` },
      { redirect_uri: null },
      { client_id: "0123456789abcdef0123456789abcdef" },
      { client_id: null },
    ];
    for (const params of cases) {
      const answer = await authorize(authorizeUrl(emu, client.client_id, params));
      expect(answer.status, JSON.stringify(params)).toBe(400);
      expect(answer.location).toBeUndefined();
      expect(answer.body).toContain("OAuth request refused");
    }
  });

  it.each([
    ["an unknown scope", { scope: "user-details.read workers-scripts.write" }, "invalid_scope"],
    ["no scope", { scope: null }, "invalid_scope"],
    ["response_type token", { response_type: "token" }, "unsupported_response_type"],
    ["no response_type", { response_type: null }, "invalid_request"],
    ["PKCE plain", { code_challenge_method: "plain", code_challenge: PKCE.verifier }, "invalid_request"],
    ["a challenge without its method", { code_challenge_method: null }, "invalid_request"],
  ])("redirects %s back with the error and the state", async (_what, params, error) => {
    const emu = emulator();
    const client = await createLoginClient(emu, "client_secret_basic");
    const answer = await authorize(authorizeUrl(emu, client.client_id, { ...params, state: "keep-me" }));
    expect(answer.status).toBe(302);
    expect(`${answer.location?.origin}${answer.location?.pathname}`).toBe(REDIRECT_URI);
    expect(answer.location?.searchParams.get("error")).toBe(error);
    expect(answer.location?.searchParams.get("error_description")).toEqual(expect.any(String));
    expect(answer.location?.searchParams.get("state")).toBe("keep-me");
    expect(answer.location?.searchParams.get("code")).toBeNull();
  });

  it("takes the protocol scopes by the API's rule: openid needs id_token, and PKCE is required for none", async () => {
    const emu = emulator();
    const codeOnly = await createLoginClient(emu, "client_secret_post", { response_types: ["code"] });
    const noOpenid = await authorize(authorizeUrl(emu, codeOnly.client_id, { scope: "openid" }));
    expect(noOpenid.location?.searchParams.get("error")).toBe("invalid_scope");
    const pub = await createLoginClient(emu, "none");
    const noPkce = await authorize(
      authorizeUrl(emu, pub.client_id, { code_challenge: null, code_challenge_method: null }),
    );
    expect(noPkce.location?.searchParams.get("error")).toBe("invalid_request");
    // A confidential client may leave PKCE out.
    const code = await codeFor(emu, codeOnly.client_id, {
      code_challenge: null,
      code_challenge_method: null,
    });
    const ok = await exchange(emu, {
      code,
      client_id: codeOnly.client_id,
      client_secret: codeOnly.client_secret ?? "",
      code_verifier: "",
    });
    expect(ok.status).toBe(200);
  });
});

describe("/oauth2/token", () => {
  it("refuses a second use of a code with invalid_grant and revokes what the first use issued", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "client_secret_basic");
    const config = await relyingParty(emu, client.client_id, "client_secret_basic", client.client_secret);
    const first = await login(config);
    expect((await profile(emu, first.tokens.access_token)).status).toBe(200);
    const code = first.callback.searchParams.get("code") ?? "";
    const again = await exchange(
      emu,
      { code, code_verifier: first.verifier },
      basic(client.client_id, client.client_secret ?? ""),
    );
    expect(again.status).toBe(400);
    expect(again.json["error"]).toBe("invalid_grant");
    expect((await profile(emu, first.tokens.access_token)).status).toBeGreaterThanOrEqual(401);
    await expect(oidc.refreshTokenGrant(config, first.tokens.refresh_token ?? "")).rejects.toMatchObject({
      error: "invalid_grant",
    });
  });

  it("checks the PKCE verifier: a wrong or missing one is invalid_grant and leaves the code usable", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "none");
    const code = await codeFor(emu, client.client_id);
    const wrong = await exchange(emu, { code, client_id: client.client_id, code_verifier: "x".repeat(43) });
    expect(wrong.status).toBe(400);
    expect(wrong.json["error"]).toBe("invalid_grant");
    const missing = await exchange(emu, { code, client_id: client.client_id, code_verifier: "" });
    expect(missing.json["error"]).toBe("invalid_grant");
    const otherRedirect = await exchange(emu, {
      code,
      client_id: client.client_id,
      redirect_uri: "https://app.example.com/other",
    });
    expect(otherRedirect.json["error"]).toBe("invalid_grant");
    const right = await exchange(emu, { code, client_id: client.client_id });
    expect(right.status).toBe(200);
    expect(right.json["token_type"]).toBe("Bearer");
  });

  it("refuses every method other than the client's with invalid_client (401)", async () => {
    const emu = emulator();
    const basicClient = await createLoginClient(emu, "client_secret_basic");
    const postClient = await createLoginClient(emu, "client_secret_post");
    const pub = await createLoginClient(emu, "none");
    const b = { id: basicClient.client_id, secret: basicClient.client_secret ?? "" };
    const p = { id: postClient.client_id, secret: postClient.client_secret ?? "" };
    const cases: Array<[string, string, Record<string, string>, Record<string, string>]> = [
      ["basic client, secret in the body", b.id, { client_id: b.id, client_secret: b.secret }, {}],
      ["basic client, no secret", b.id, { client_id: b.id }, {}],
      ["post client, Basic header", p.id, {}, basic(p.id, p.secret)],
      ["post client, no secret", p.id, { client_id: p.id }, {}],
      [
        "none client, a secret in the body",
        pub.client_id,
        { client_id: pub.client_id, client_secret: "x" },
        {},
      ],
      ["none client, Basic header", pub.client_id, {}, basic(pub.client_id, "x")],
      ["basic client, wrong secret", b.id, {}, basic(b.id, `${b.secret}0`)],
      ["post client, wrong secret", p.id, { client_id: p.id, client_secret: `${p.secret}0` }, {}],
    ];
    for (const [what, clientId, form, headers] of cases) {
      const code = await codeFor(emu, clientId);
      const reply = await exchange(emu, { code, ...form }, headers);
      expect(reply.status, what).toBe(401);
      expect(reply.json["error"], what).toBe("invalid_client");
      expect(reply.headers.get("www-authenticate") !== null, what).toBe(
        headers["authorization"] !== undefined,
      );
      // The code was not spent: the right method still exchanges it.
      const right =
        clientId === b.id
          ? await exchange(emu, { code }, basic(b.id, b.secret))
          : clientId === p.id
            ? await exchange(emu, { code, client_id: p.id, client_secret: p.secret })
            : await exchange(emu, { code, client_id: clientId });
      expect(right.status, `${what}: then the right method`).toBe(200);
    }
  });

  it("lets a code expire after its lifetime on the emulator's clock", async () => {
    const clock = manualClock();
    const emu = await startTestEmulator({ now: clock.now });
    const client = await createLoginClient(emu, "none");
    const code = await codeFor(emu, client.client_id);
    clock.advance(601_000);
    const late = await exchange(emu, { code, client_id: client.client_id });
    expect(late.json["error"]).toBe("invalid_grant");
    const fresh = await codeFor(emu, client.client_id);
    clock.advance(599_000);
    expect((await exchange(emu, { code: fresh, client_id: client.client_id })).status).toBe(200);
  });

  it("rotates refresh tokens: replaying a spent one is invalid_grant and revokes the grant", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "none");
    const config = await relyingParty(emu, client.client_id, "none", undefined);
    const { tokens } = await login(config);
    const next = await oidc.refreshTokenGrant(config, tokens.refresh_token ?? "");
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token ?? "")).rejects.toMatchObject({
      error: "invalid_grant",
    });
    await expect(oidc.refreshTokenGrant(config, next.refresh_token ?? "")).rejects.toMatchObject({
      error: "invalid_grant",
    });
    expect((await profile(emu, next.access_token)).status).toBeGreaterThanOrEqual(401);
  });

  it("refuses a refresh once the client lost the refresh_token grant, and an unknown grant_type", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "client_secret_post");
    const config = await relyingParty(emu, client.client_id, "client_secret_post", client.client_secret);
    const { tokens } = await login(config);
    const creds = { client_id: client.client_id, client_secret: client.client_secret ?? "" };
    const token = `${emu.issuer}/oauth2/token`;
    const unknown = await postForm(token, { grant_type: "password", ...creds });
    expect(unknown.json["error"]).toBe("unsupported_grant_type");
    expect((await api.patch(emu, client.client_id, { grant_types: ["authorization_code"] })).status).toBe(
      200,
    );
    const refused = await postForm(token, {
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token ?? "",
      ...creds,
    });
    expect(refused.json["error"]).toBe("unauthorized_client");
  });
});

describe("refresh scope and revocation across clients", () => {
  it("lets a refresh narrow the scope, refuses a wider one, and keeps the grant's scope for the next refresh", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "none");
    const config = await relyingParty(emu, client.client_id, "none", undefined);
    const { tokens } = await login(config, "offline_access user-details.read");
    const wider = await oidc
      .refreshTokenGrant(config, tokens.refresh_token ?? "", {
        scope: "offline_access account-settings.read",
      })
      .catch((error: unknown) => error as { error?: string });
    expect((wider as { error?: string }).error).toBe("invalid_scope");
    const narrow = await oidc.refreshTokenGrant(config, tokens.refresh_token ?? "", {
      scope: "offline_access",
    });
    expect(narrow.scope).toBe("offline_access");
    expect((await profile(emu, narrow.access_token)).status).toBe(403);
    const full = await oidc.refreshTokenGrant(config, narrow.refresh_token ?? "");
    expect(full.scope).toBe("offline_access user-details.read");
    expect((await profile(emu, full.access_token)).status).toBe(200);
  });

  it("answers 200 to a revocation of another client's token and leaves it alone", async () => {
    const emu = emulator();
    const owner = await createLoginClient(emu, "none");
    const other = await createLoginClient(emu, "none");
    const ownerConfig = await relyingParty(emu, owner.client_id, "none", undefined);
    const otherConfig = await relyingParty(emu, other.client_id, "none", undefined);
    const { tokens } = await login(ownerConfig);
    await oidc.tokenRevocation(otherConfig, tokens.access_token);
    await oidc.tokenRevocation(otherConfig, tokens.refresh_token ?? "");
    expect((await profile(emu, tokens.access_token)).status).toBe(200);
    expect((await oidc.refreshTokenGrant(ownerConfig, tokens.refresh_token ?? "")).access_token).toEqual(
      expect.any(String),
    );
  });
});

describe("/oauth2/logout", () => {
  it("redirects only to one of the client's post_logout_redirect_uris", async () => {
    const emu = emulator();
    const client = await createLoginClient(emu, "none");
    const url = (target: string) =>
      `${emu.issuer}/oauth2/logout?${new URLSearchParams({
        client_id: client.client_id,
        post_logout_redirect_uri: target,
        state: "s-9",
      }).toString()}`;
    const bad = await authorize(url("https://evil.example/bye"));
    expect(bad.status).toBe(400);
    expect(bad.location).toBeUndefined();
    const good = await authorize(url("https://app.example.com/signed-out"));
    expect(good.status).toBe(302);
    expect(good.location?.searchParams.get("state")).toBe("s-9");
  });
});

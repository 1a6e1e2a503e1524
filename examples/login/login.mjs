// Log in with Cloudflare against the emulator, as an application's backend would, using
// openid-client (your application's own dependency; this checkout has it as a devDependency).
// The emulator's test user consents at once, so the browser's part (visiting the authorization
// URL, coming back with a code) is one fetch here.
//
//   cf-oauth-gitops emulator --port 8787            # prints the API URL and the issuer
//   ISSUER=http://127.0.0.1:8787 CLIENT_ID=... CLIENT_SECRET=... node examples/login/login.mjs
//
// CLIENT_ID and CLIENT_SECRET are those of a client created through the emulator's API (by the
// reconciler, or by hand); leave CLIENT_SECRET out for a `none` (PKCE-only) client. Against
// Cloudflare, ISSUER is https://dash.cloudflare.com and API is https://api.cloudflare.com/client/v4.
// It prints who logged in, never a token or a secret.
import * as oidc from "openid-client";

const env = process.env;
const issuer = new URL(env.ISSUER ?? "http://127.0.0.1:8787");
const api = env.API ?? `${issuer.origin}/client/v4`;
const redirectUri = env.REDIRECT_URI ?? "https://app.example.com/callback";
const method = env.AUTH_METHOD ?? (env.CLIENT_SECRET ? "client_secret_basic" : "none");
if (!env.CLIENT_ID) throw new Error("CLIENT_ID is required");

const auth = {
  none: () => oidc.None(),
  client_secret_basic: () => oidc.ClientSecretBasic(env.CLIENT_SECRET),
  client_secret_post: () => oidc.ClientSecretPost(env.CLIENT_SECRET),
}[method];
if (!auth) throw new Error(`AUTH_METHOD ${method} is not none, client_secret_basic or client_secret_post`);

// 1. Discovery; plain http is allowed only for a local issuer.
const local = ["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname);
const config = await oidc.discovery(issuer, env.CLIENT_ID, undefined, auth(), {
  execute: local ? [oidc.allowInsecureRequests] : [],
});

// 2. The authorization request, with PKCE, state and nonce.
const verifier = oidc.randomPKCECodeVerifier();
const state = oidc.randomState();
const nonce = oidc.randomNonce();
const authorizationUrl = oidc.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: env.SCOPE ?? "openid offline_access user-details.read",
  code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
  code_challenge_method: "S256",
  state,
  nonce,
});

// 3. The browser's part: the emulator's user consents at once and redirects back with a code.
const answer = await fetch(authorizationUrl, { redirect: "manual" });
const location = answer.headers.get("location");
if (answer.status !== 302 || location === null) {
  throw new Error(`the authorization endpoint answered ${answer.status}: ${await answer.text()}`);
}

// 4. The callback: openid-client checks state, exchanges the code and validates the id_token.
const tokens = await oidc.authorizationCodeGrant(config, new URL(location), {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
});
const sub = tokens.claims()?.sub;

// 5. The profile, where Cloudflare keeps it: userinfo holds only `sub`, /user the email.
const info = await oidc.fetchUserInfo(config, tokens.access_token, sub ?? oidc.skipSubjectCheck);
const profile = await fetch(`${api}/user`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
const user = profile.ok ? (await profile.json()).result : undefined;

console.log(
  JSON.stringify({
    sub: info.sub,
    email: user?.email ?? null,
    scope: tokens.scope,
    refresh_token: tokens.refresh_token !== undefined,
  }),
);

// An application that uses a Cloudflare OAuth client whose secret cf-oauth-gitops rotates, written the
// way an application should be: it reads its client credentials from the sink every time it needs
// them, never caches a secret across exchanges, and so keeps working through every rotation. It logs
// in once (authorization code with PKCE; the emulator's test user consents at once), then refreshes
// its tokens in a loop with openid-client (the application's own dependency), counting successes and
// failures.
//
//   ISSUER=http://127.0.0.1:8787 SINK=file SECRET_FILE=secrets/<account_id>/<name>.json \
//     node examples/consumer/consumer.mjs
//
// SINK picks where the credentials are read from, with what the reconciler wrote there:
//   file        SECRET_FILE: the file sink's JSON record (format: json).
//   exec        SINK_COMMAND: a JSON array, the sink's read command (e.g. ["examples/sinks/pass-sink.sh"]),
//               sent {"action":"read","account_id":ACCOUNT_ID,"key":KEY} on stdin, as the reconciler does;
//               the environment is passed on (GNUPGHOME, PASSWORD_STORE_DIR for pass).
//   vault       VAULT_ADDR, VAULT_TOKEN, VAULT_PATH (KV v2: `<mount>/data/<path>`), VAULT_NAMESPACE optional.
//   kubernetes  KUBE_API, KUBE_TOKEN, KUBE_NAMESPACE, KUBE_SECRET (the Secret's data holds client_id and
//               client_secret, base64).
// CREDENTIALS=cached models a replica that lags behind its sink (one that reads its configuration at
// start, or a Kubernetes volume not yet refreshed): it reads the sink once and again only on SIGHUP,
// so it goes on using the old secret after a rotation, which the grace period must keep valid.
// Other settings: REDIRECT_URI (default https://app.example.com/callback), SCOPE (default
// "offline_access account-settings.read"), INTERVAL_MS between exchanges (default 500), COUNT
// (stop after this many exchanges; default: run until SIGTERM or SIGINT).
//
// It prints one JSON line per exchange ({"event":"exchange","ok":true,"at":...,"ms":...,
// "issued_at":...}: `issued_at` is the sink record's, which tells the secrets apart without showing
// one), then {"event":"summary",...} on exit. It never prints a secret or a token: a failure is
// reported by its OAuth error code and HTTP status only.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import * as oidc from "openid-client";

const env = process.env;
const issuer = new URL(env.ISSUER ?? "http://127.0.0.1:8787");
const redirectUri = env.REDIRECT_URI ?? "https://app.example.com/callback";
const scope = env.SCOPE ?? "offline_access account-settings.read";
const interval = Number(env.INTERVAL_MS ?? "500");
const count = env.COUNT === undefined ? Infinity : Number(env.COUNT);
const local = ["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname);
const insecure = local ? [oidc.allowInsecureRequests] : [];

/** The credentials as the sink holds them now: `{ client_id, client_secret, issued_at }`. */
const readers = {
  async file() {
    return JSON.parse(await readFile(required("SECRET_FILE"), "utf8"));
  },
  async exec() {
    const [command, ...args] = JSON.parse(required("SINK_COMMAND"));
    const request = JSON.stringify({
      action: "read",
      account_id: required("ACCOUNT_ID"),
      key: required("KEY"),
    });
    const stdout = await new Promise((resolve, reject) => {
      const child = execFile(command, args, { env, maxBuffer: 1 << 20 }, (error, out) =>
        error ? reject(new Error(`the read command failed (exit ${error.code})`)) : resolve(out),
      );
      child.stdin.end(request);
    });
    if (stdout.trim() === "") throw new Error("the sink holds no record");
    return JSON.parse(stdout);
  },
  async vault() {
    const headers = { "X-Vault-Token": required("VAULT_TOKEN") };
    if (env.VAULT_NAMESPACE) headers["X-Vault-Namespace"] = env.VAULT_NAMESPACE;
    const res = await fetch(`${required("VAULT_ADDR")}/v1/${required("VAULT_PATH")}`, { headers });
    if (!res.ok) throw new Error(`vault answered ${res.status}`);
    return (await res.json()).data.data;
  },
  async kubernetes() {
    const path = `/api/v1/namespaces/${required("KUBE_NAMESPACE")}/secrets/${required("KUBE_SECRET")}`;
    const res = await fetch(`${required("KUBE_API")}${path}`, {
      headers: { authorization: `Bearer ${required("KUBE_TOKEN")}` },
    });
    if (!res.ok) throw new Error(`kubernetes answered ${res.status}`);
    const data = (await res.json()).data ?? {};
    const field = (name) =>
      data[name] === undefined ? undefined : Buffer.from(data[name], "base64").toString("utf8");
    return {
      client_id: field("client_id"),
      client_secret: field("client_secret"),
      issued_at: field("issued_at"),
    };
  },
};
const readSink = readers[env.SINK ?? "file"];
if (!readSink) throw new Error(`SINK ${env.SINK} is not file, exec, vault or kubernetes`);
const cached = env.CREDENTIALS === "cached";
let generation = 0;
let held;
process.on("SIGHUP", () => {
  generation += 1;
});
/** Fresh from the sink for every exchange (the default), or the copy read since the last SIGHUP. */
async function readCredentials() {
  if (!cached) return readSink();
  if (held?.generation !== generation) {
    const asked = generation;
    held = { generation: asked, credentials: await readSink() };
  }
  return held.credentials;
}

function required(name) {
  const value = env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

/** An openid-client configuration for the credentials read just now (the server metadata is kept). */
let metadata;
async function configure(credentials) {
  const auth =
    env.AUTH_METHOD === "client_secret_post"
      ? oidc.ClientSecretPost(credentials.client_secret)
      : oidc.ClientSecretBasic(credentials.client_secret);
  if (metadata === undefined) {
    const found = await oidc.discovery(issuer, credentials.client_id, undefined, auth, { execute: insecure });
    metadata = found.serverMetadata();
    return found;
  }
  const config = new oidc.Configuration(metadata, credentials.client_id, undefined, auth);
  for (const enable of insecure) enable(config);
  return config;
}

/** The login: authorization code with PKCE; the browser's part is one fetch against the emulator. */
async function login(config) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
  });
  const answer = await fetch(url, { redirect: "manual" });
  const location = answer.headers.get("location");
  if (answer.status !== 302 || location === null) {
    throw new Error(`the authorization endpoint answered ${answer.status}`);
  }
  return oidc.authorizationCodeGrant(config, new URL(location), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
}

/** What may be printed about a failure: codes and statuses, never a message that could echo input. */
function describe(error) {
  return {
    error: typeof error?.error === "string" ? error.error : (error?.code ?? error?.name ?? "Error"),
    status: typeof error?.status === "number" ? error.status : null,
  };
}

const summary = {
  event: "summary",
  exchanges: 0,
  successes: 0,
  failures: 0,
  read_errors: 0,
  first_failure_at: null,
  last_failure_at: null,
};
let refreshToken;
let stopping = false;
const stop = () => {
  stopping = true;
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

while (!stopping && summary.exchanges < count) {
  let credentials;
  try {
    credentials = await readCredentials();
  } catch (error) {
    summary.read_errors += 1;
    print({ event: "read_error", at: new Date().toISOString(), ...describe(error) });
    await sleep(interval);
    continue;
  }
  const started = Date.now();
  summary.exchanges += 1;
  const grant = refreshToken === undefined ? "authorization_code" : "refresh_token";
  try {
    const config = await configure(credentials);
    const tokens =
      refreshToken === undefined ? await login(config) : await oidc.refreshTokenGrant(config, refreshToken);
    // Refresh tokens rotate: each answer carries the next one.
    refreshToken = tokens.refresh_token ?? refreshToken;
    summary.successes += 1;
    print({
      event: "exchange",
      ok: true,
      grant,
      at: new Date(started).toISOString(),
      ms: Date.now() - started,
      issued_at: credentials.issued_at ?? null,
    });
  } catch (error) {
    const at = new Date(started).toISOString();
    summary.failures += 1;
    summary.first_failure_at ??= at;
    summary.last_failure_at = at;
    print({
      event: "exchange",
      ok: false,
      grant,
      at,
      ms: Date.now() - started,
      issued_at: credentials.issued_at ?? null,
      ...describe(error),
    });
  }
  if (!stopping) await sleep(interval);
}
print(summary);

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { readFile } from "node:fs/promises";
import type { Dispatcher } from "undici";
import { SinkError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { requestJson, type JsonResponse } from "./http.js";
import { vaultSecretPath, vaultSegments } from "./naming.js";
import { plainRecordSchema, revealRecord, storedRecord } from "./record.js";
import { excerpt } from "./redact.js";
import type { SecretRecord, SecretSink, SinkAddress, StoredRecord } from "./types.js";

/** Where Kubernetes mounts a pod's service-account token. */
export const DEFAULT_KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Value of the `managed-by` custom metadata key on every secret this sink writes. */
export const VAULT_MANAGED_BY = "cf-oauth-gitops";

export interface VaultSinkOptions {
  /** Base URL of Vault, e.g. `https://vault.example.com:8200` (a path prefix is kept). */
  address: string;
  /** Mount path of a KV version 2 engine, e.g. `secret`. */
  mount: string;
  /** Prefix inside the mount; records go to `<path_prefix>/<account_id>/<key>`. */
  path_prefix: string;
  /** Environment variable holding the token (default `VAULT_TOKEN`). */
  token_env?: string;
  /** File holding the token (read on every request, so an agent may rotate it); wins over `token_env`. */
  token_file?: string;
  /** Log in with Kubernetes auth as this role instead of using a token; wins over both above. */
  kubernetes_role?: string;
  /** Service-account token used for the Kubernetes login. */
  kubernetes_token_file?: string;
  /** Mount of the Kubernetes auth method (default `kubernetes`). */
  auth_mount?: string;
  /** Vault Enterprise / HCP namespace, sent as `X-Vault-Namespace` on every request. */
  namespace?: string;
  env?: NodeJS.ProcessEnv;
  /** Clock for the cached login's expiry; `Date.now` by default. */
  now?: () => number;
  name?: string;
  logger?: Logger;
  dispatcher?: Dispatcher;
}

const CAS_MISMATCH = "check-and-set parameter did not match the current version";

/** A cached login token is renewed once this share of its lease has passed. */
const LEASE_USE = 0.8;

interface CurrentVersion {
  /** Vault's current version number for the key, 0 when it was never written. */
  version: number;
  /** Whether that version can be read (false when it was deleted or destroyed). */
  live: boolean;
}

/**
 * HashiCorp Vault, KV version 2, over its HTTP API.
 *
 * Each record is one secret at `<mount>/data/<path_prefix>/<account_id>/<key>` holding the five
 * record fields; its custom metadata carries `managed-by: cf-oauth-gitops`, `client_id` and
 * `account_id` so that an operator browsing Vault sees who writes it (existing custom metadata keys
 * are kept).
 *
 * Writes always use check-and-set (`options.cas`), which Vault applies atomically: cas 0 means "only
 * if the key was never written", cas N means "only if the current version is N", and a mismatch is
 * a 400 `check-and-set parameter did not match the current version`, reported as `E_SINK_CONFLICT`.
 * With an `expectedVersion` the sink uses it (`null`: the caller read nothing); without one it reads
 * the current version first, so a write racing another one still never clobbers it silently. Works
 * with `cas_required` mounts.
 *
 * Preflight: `auth/token/lookup-self` (the token is valid), then `sys/capabilities-self`: `create`,
 * `update` and `read` on the data path and `update` on the metadata path (or `root`), then a read
 * of that exact data path (a KV v2 engine serves it, and the key reads back). Nothing is written:
 * a probe version at the key would be what consumers read until the real one replaced it.
 *
 * Authentication: a token from `token_file` or the `token_env` variable, or Kubernetes auth
 * (`POST /v1/auth/<auth_mount>/login` with the pod's service-account JWT) with the client token
 * cached until 80% of its lease has passed, and renewed once on a 403.
 */
export class VaultSink implements SecretSink {
  readonly type = "vault";
  readonly #options: VaultSinkOptions;
  readonly #address: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #now: () => number;
  readonly #logger: Logger;
  #login: { token: string; renewAt: number } | null = null;

  constructor(options: VaultSinkOptions) {
    let url: URL;
    try {
      url = new URL(options.address);
    } catch {
      throw new SinkError("E_SINK_CONFIG", `sink=vault: address '${options.address}' is not a URL`, {
        disposition: "terminal",
        context: { sink: "vault" },
      });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new SinkError("E_SINK_CONFIG", `sink=vault: address must be http(s), got ${url.protocol}`, {
        disposition: "terminal",
        context: { sink: "vault" },
      });
    }
    this.#options = options;
    this.#address = options.address.replace(/\/+$/, "");
    this.#env = options.env ?? process.env;
    this.#now = options.now ?? Date.now;
    this.#logger = (options.logger ?? silentLogger).child({
      component: "sink",
      sink: "vault",
      sink_name: options.name,
    });
  }

  /** The secret's path inside the mount: `<path_prefix>/<account_id>/<key>`. */
  secretPath(address: SinkAddress): string {
    return vaultSecretPath(this.#options.path_prefix, address);
  }

  describe(address: SinkAddress): string {
    return `vault:${this.#address}/v1/${this.#dataPath(address)}`;
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    const lookup = await this.#call("GET", "auth/token/lookup-self");
    if (lookup.status !== 200)
      throw vaultError("check", "GET", "auth/token/lookup-self", lookup, this.#secrets());
    const dataPath = this.#dataPath(address);
    const metadataPath = this.#metadataPath(address);
    const response = await this.#call("POST", "sys/capabilities-self", { paths: [dataPath, metadataPath] });
    if (response.status !== 200) {
      throw vaultError("check", "POST", "sys/capabilities-self", response, this.#secrets());
    }
    const missing = [
      // read: a write without an expected version reads the current one first (and read-back verifies).
      ...missingCapabilities(response.body, dataPath, ["create", "update", "read"]),
      ...missingCapabilities(response.body, metadataPath, ["update"]),
    ];
    if (missing.length > 0) {
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=vault: the token lacks ${missing.join(", ")} (policy capabilities needed to write ${this.describe(address)})`,
        { disposition: "terminal", context: { sink: "vault", path: dataPath, missing } },
      );
    }
    // Capabilities say what a policy allows, not that the path exists: a root token has every
    // capability on a mount that is not there. Reading the exact key proves it can be read back.
    const current = await this.#call("GET", dataPath);
    if (current.status === 200 || (current.status === 404 && !noRoute(current.body))) return;
    if (current.status === 404) {
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=vault: no KV version 2 engine serves ${dataPath} (is \`mount\` right?)`,
        { disposition: "terminal", context: { sink: "vault", path: dataPath } },
      );
    }
    throw vaultError("check", "GET", dataPath, current, this.#secrets());
  }

  async write(
    address: SinkAddress,
    record: SecretRecord,
    expectedVersion?: string | null,
  ): Promise<{ version: string | null }> {
    const dataPath = this.#dataPath(address);
    const cas = await this.#casFor(dataPath, expectedVersion);
    const plain = revealRecord(record);
    const secrets = this.#secrets(plain.client_secret);
    const response = await this.#call("POST", dataPath, { options: { cas }, data: plain });
    if (response.status !== 200 && response.status !== 204) {
      throw vaultError("write", "POST", dataPath, response, secrets, { expected_version: cas });
    }
    const written = (response.body as { data?: { version?: unknown; custom_metadata?: unknown } } | undefined)
      ?.data;
    const version = typeof written?.version === "number" ? written.version : cas + 1;
    await this.#tagMetadata(address, record, written?.custom_metadata);
    this.#logger.debug({ path: dataPath, version }, "secret written");
    return { version: String(version) };
  }

  async read(address: SinkAddress): Promise<StoredRecord | null> {
    const dataPath = this.#dataPath(address);
    const response = await this.#call("GET", dataPath);
    if (response.status === 404) return null;
    if (response.status !== 200) throw vaultError("read", "GET", dataPath, response, this.#secrets());
    const data = (
      response.body as { data?: { data?: unknown; metadata?: { version?: unknown } } } | undefined
    )?.data;
    const parsed = plainRecordSchema.safeParse(data?.data);
    if (!parsed.success) {
      throw new SinkError("E_SINK_CORRUPT", `sink=vault: ${dataPath} does not hold a client record`, {
        context: { sink: "vault", path: dataPath },
      });
    }
    const version = data?.metadata?.version;
    return storedRecord(parsed.data, typeof version === "number" ? String(version) : null);
  }

  /** Drops a cached Kubernetes login (for tests and for a daemon that wants a fresh one). */
  forgetLogin(): void {
    this.#login = null;
  }

  #dataPath(address: SinkAddress): string {
    return `${vaultSegments(this.#options.mount).join("/")}/data/${this.secretPath(address)}`;
  }

  #metadataPath(address: SinkAddress): string {
    return `${vaultSegments(this.#options.mount).join("/")}/metadata/${this.secretPath(address)}`;
  }

  async #casFor(dataPath: string, expectedVersion: string | null | undefined): Promise<number> {
    if (typeof expectedVersion === "string") {
      const n = Number(expectedVersion);
      if (!Number.isSafeInteger(n) || n < 1) {
        throw new SinkError("E_SINK_CONFLICT", `sink=vault: '${expectedVersion}' is not a Vault version`, {
          context: { sink: "vault", path: dataPath, expected_version: expectedVersion },
        });
      }
      return n;
    }
    const current = await this.#currentVersion(dataPath);
    if (expectedVersion === null && current.live) {
      throw new SinkError(
        "E_SINK_CONFLICT",
        `sink=vault: ${dataPath} was written (version ${current.version}) since it was read as absent`,
        { context: { sink: "vault", path: dataPath, current_version: current.version } },
      );
    }
    // A deleted latest version still counts for cas: Vault compares with the key's current version.
    return current.version;
  }

  async #currentVersion(dataPath: string): Promise<CurrentVersion> {
    const response = await this.#call("GET", dataPath);
    const version = (response.body as { data?: { metadata?: { version?: unknown } } } | undefined)?.data
      ?.metadata?.version;
    if (response.status === 200) return { version: typeof version === "number" ? version : 0, live: true };
    if (response.status === 404) return { version: typeof version === "number" ? version : 0, live: false };
    throw vaultError("read", "GET", dataPath, response, this.#secrets());
  }

  async #tagMetadata(address: SinkAddress, record: SecretRecord, existing: unknown): Promise<void> {
    const current = isStringMap(existing) ? existing : {};
    const wanted = {
      ...current,
      "managed-by": VAULT_MANAGED_BY,
      client_id: record.client_id,
      account_id: record.account_id,
    };
    if (Object.entries(wanted).every(([k, v]) => current[k] === v)) return;
    const metadataPath = this.#metadataPath(address);
    const response = await this.#call("POST", metadataPath, { custom_metadata: wanted });
    if (response.status !== 200 && response.status !== 204) {
      // The secret itself is stored; failing the write now would make the caller retry a write that
      // happened. The preflight checks this capability, so this is rare: say it loudly.
      const error = vaultError("write", "POST", metadataPath, response, this.#secrets());
      this.#logger.warn(
        { path: metadataPath, code: error.code, reason: error.message },
        "custom metadata not written",
      );
    }
  }

  async #call(method: "GET" | "POST", path: string, body?: unknown): Promise<JsonResponse> {
    const url = new URL(`${this.#address}/v1/${path}`);
    const send = async (token: string) =>
      requestJson("vault", url, {
        method,
        headers: { "x-vault-token": token, ...this.#namespaceHeader() },
        body,
        dispatcher: this.#options.dispatcher,
      });
    const response = await send(await this.#token());
    if (response.status === 403 && this.#options.kubernetes_role !== undefined && this.#login !== null) {
      // The cached login may have been revoked or expired early: log in again, once.
      this.#login = null;
      return send(await this.#token());
    }
    return response;
  }

  async #token(): Promise<string> {
    if (this.#options.kubernetes_role !== undefined)
      return this.#kubernetesLogin(this.#options.kubernetes_role);
    if (this.#options.token_file !== undefined) {
      const token = (await readSecretFile(this.#options.token_file, "token_file")).trim();
      if (token === "") throw authMissing(`token_file ${this.#options.token_file} is empty`);
      return token;
    }
    const variable = this.#options.token_env ?? "VAULT_TOKEN";
    const token = this.#env[variable]?.trim();
    if (!token)
      throw authMissing(`no Vault token: ${variable} is not set (or set token_file or kubernetes_role)`);
    return token;
  }

  async #kubernetesLogin(role: string): Promise<string> {
    if (this.#login && this.#now() < this.#login.renewAt) return this.#login.token;
    const file = this.#options.kubernetes_token_file ?? DEFAULT_KUBERNETES_TOKEN_FILE;
    const jwt = (await readSecretFile(file, "kubernetes_token_file")).trim();
    const mount = vaultSegments(this.#options.auth_mount ?? "kubernetes").join("/");
    const path = `auth/${mount}/login`;
    const response = await requestJson("vault", new URL(`${this.#address}/v1/${path}`), {
      method: "POST",
      headers: this.#namespaceHeader(),
      body: { role, jwt },
      dispatcher: this.#options.dispatcher,
    });
    const auth = (
      response.body as { auth?: { client_token?: unknown; lease_duration?: unknown } } | undefined
    )?.auth;
    if (response.status !== 200 || typeof auth?.client_token !== "string") {
      const error = vaultError("login", "POST", path, response, [jwt]);
      throw new SinkError("E_SINK_AUTH", `${error.message} (Kubernetes login as role '${role}')`, {
        disposition: "terminal",
        context: { ...error.context, role },
      });
    }
    const lease = typeof auth.lease_duration === "number" ? auth.lease_duration : 0;
    const renewAt = lease > 0 ? this.#now() + lease * 1000 * LEASE_USE : Number.POSITIVE_INFINITY;
    this.#login = { token: auth.client_token, renewAt };
    this.#logger.debug({ role, lease_seconds: lease }, "logged in to Vault with Kubernetes auth");
    return auth.client_token;
  }

  #namespaceHeader(): Record<string, string> {
    return this.#options.namespace ? { "x-vault-namespace": this.#options.namespace } : {};
  }

  /** Values to scrub from server text: the record's secret and whatever token is in use. */
  #secrets(...extra: string[]): string[] {
    return this.#login ? [...extra, this.#login.token] : extra;
  }
}

/** Vault's 404 for a path no engine is mounted at (a missing KV record is a 404 with no such error). */
function noRoute(body: unknown): boolean {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  return (
    Array.isArray(errors) && errors.some((e) => typeof e === "string" && e.includes("no handler for route"))
  );
}

function isStringMap(value: unknown): value is Record<string, string> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === "string")
  );
}

/** Capabilities in a `sys/capabilities-self` answer for one path (top level, or under `data`). */
function capabilitiesOf(body: unknown, path: string): string[] {
  const top = body as Record<string, unknown> | undefined;
  const data = top?.["data"] as Record<string, unknown> | undefined;
  const list = top?.[path] ?? data?.[path];
  return Array.isArray(list) ? list.filter((c): c is string => typeof c === "string") : [];
}

function missingCapabilities(body: unknown, path: string, needed: readonly string[]): string[] {
  const capabilities = capabilitiesOf(body, path);
  if (capabilities.includes("deny")) return needed.map((c) => `${c} on ${path}`);
  if (capabilities.includes("root")) return [];
  return needed.filter((c) => !capabilities.includes(c)).map((c) => `${c} on ${path}`);
}

function authMissing(message: string): SinkError {
  return new SinkError("E_SINK_AUTH", `sink=vault: ${message}`, {
    disposition: "terminal",
    context: { sink: "vault" },
  });
}

async function readSecretFile(file: string, option: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw authMissing(`cannot read ${option} ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/**
 * A Vault error answer as a SinkError. Vault reports failures as `{"errors": ["..."]}`; the strings
 * are quoted (scrubbed of the secret and the token, shortened) so the operator sees Vault's reason.
 */
function vaultError(
  operation: "read" | "write" | "check" | "login",
  method: string,
  path: string,
  response: JsonResponse,
  secrets: readonly string[],
  context: Record<string, unknown> = {},
): SinkError {
  const raw = (response.body as { errors?: unknown } | undefined)?.errors;
  const errors = Array.isArray(raw) ? raw.filter((e): e is string => typeof e === "string") : [];
  const reason = excerpt(errors.join("; "), secrets) || "no error message";
  const message = `sink=vault: ${method} /v1/${path} failed with HTTP ${response.status}: ${reason}`;
  const ctx = { sink: "vault", path, status: response.status, ...context };
  if (response.status === 400 && errors.some((e) => e.includes(CAS_MISMATCH))) {
    return new SinkError("E_SINK_CONFLICT", message, { context: ctx });
  }
  const code =
    operation === "check"
      ? "E_SINK_NOT_WRITABLE"
      : response.status === 401 || response.status === 403
        ? "E_SINK_AUTH"
        : operation === "read"
          ? "E_SINK_READ"
          : "E_SINK_WRITE";
  const transient = response.status >= 500 || response.status === 429;
  return new SinkError(code, message, { disposition: transient ? "transient" : "terminal", context: ctx });
}

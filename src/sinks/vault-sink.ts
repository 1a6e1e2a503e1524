import { readFile } from "node:fs/promises";
import type { Dispatcher } from "../undici.js";
import { SinkError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { proxyAwareDispatcher, proxySettings } from "../proxy.js";
import { requestJson, type JsonResponse } from "./http.js";
import { describeVaultRecord, vaultBase, vaultDataPath, vaultSecretPath, vaultSegments } from "./naming.js";
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
  /** PEM CA bundle trusted for an https address instead of the system's; `VAULT_CACERT` when unset. */
  ca_file?: string;
  /** Name the server certificate must carry (and the SNI sent); `VAULT_TLS_SERVER_NAME` when unset. */
  tls_server_name?: string;
  /** Token variables, `VAULT_CACERT`, `VAULT_TLS_SERVER_NAME` and the proxy variables; `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /** Clock for the cached login's expiry and the token's renewal; `Date.now` by default. */
  now?: () => number;
  name?: string;
  logger?: Logger;
  /** Replaces the TLS and proxy handling above (tests only). */
  dispatcher?: Dispatcher;
}

const CAS_MISMATCH = "check-and-set parameter did not match the current version";

/** A cached login token, or a renewable static token, is renewed once this share of its TTL has passed. */
const LEASE_USE = 0.8;

/** What Vault says of the key a write is about to replace. */
interface CurrentVersion {
  /** Vault's current version number for the key, 0 when it was never written. */
  version: number;
  /** Whether that version can be read (false when it was deleted or destroyed). */
  live: boolean;
  /** The key's custom metadata, as the data read reports it (null when there is none). */
  custom: Record<string, string> | null;
}

/** A static token as `lookup-self` described it, and when to renew it. */
interface StaticLease {
  token: string;
  renewable: boolean;
  renewAt: number;
}

/**
 * HashiCorp Vault, KV version 2, over its HTTP API.
 *
 * Each record is one secret at `<mount>/data/<path_prefix>/<account_id>/<key>` holding the five
 * record fields; its custom metadata carries `managed-by: cf-oauth-gitops`, `client_id` and
 * `account_id` so that an operator browsing Vault sees who writes it (existing custom metadata keys
 * are kept). A key that already holds versions without `managed-by: cf-oauth-gitops` was not
 * written by this tool and is never overwritten (`E_SINK_UNMANAGED`), as the Kubernetes sink
 * refuses a Secret without its label; custom metadata set on a key before its first version is not
 * such a claim.
 *
 * KV version 2 only: the mount's version is read from `sys/internal/ui/mounts/<mount>` (what the
 * Vault CLI's KV preflight reads) before the first read or write and in every preflight. A version 1
 * mount is refused with `E_SINK_KV_VERSION`: it has no versions and no check-and-set, and a write to
 * `<mount>/data/...` there would silently store a key called `data/...`.
 *
 * Writes always use check-and-set (`options.cas`), which Vault applies atomically: cas 0 means "only
 * if the key was never written", cas N means "only if the current version is N", and a mismatch is
 * a 400 `check-and-set parameter did not match the current version`, reported as `E_SINK_CONFLICT`.
 * The current version is read first (for ownership, and as the cas when the caller gave no
 * `expectedVersion`), so a write racing another one never clobbers it silently. Works with
 * `cas_required` mounts.
 *
 * Read-after-write on performance standbys (Vault Enterprise, HCP): a standby serves reads from
 * storage the active node may not have shipped to it yet. Every answer's `X-Vault-Index` is kept and
 * sent back on the next requests with `X-Vault-Inconsistent: forward-active-node`, so a standby that
 * has not caught up with this sink's last write forwards the request to the active node instead of
 * answering from stale storage (Vault's "conditional forwarding"); a 412 (that state is not there,
 * and the request was not forwarded) is transient.
 *
 * Preflight: `auth/token/lookup-self` (the token is valid), then `sys/capabilities-self`: `create`,
 * `update` and `read` on the data path and `update` on the metadata path (or `root`), then the
 * mount's KV version, then a read of that exact data path (the key reads back, and if it exists it
 * is ours). Nothing is written: a probe version at the key would be what consumers read until the
 * real one replaced it.
 *
 * Authentication: a token from `token_file` or the `token_env` variable, or Kubernetes auth
 * (`POST /v1/auth/<auth_mount>/login` with the pod's service-account JWT) with the client token
 * cached until 80% of its lease has passed, and renewed once on a 403. A static token that
 * `lookup-self` reports renewable with a TTL is renewed (`renew-self`) once 80% of that TTL has
 * passed, so a long-running daemon does not outlive it. A login answered 5xx (sealed, standby
 * without forwarding) or 429 (a rate limit quota) is transient (`E_SINK_UNAVAILABLE`), not an
 * authentication failure.
 *
 * TLS and proxies: `ca_file` (or `VAULT_CACERT`) replaces the trusted CAs and `tls_server_name` (or
 * `VAULT_TLS_SERVER_NAME`) the name checked on the certificate, as the Vault CLI's variables do;
 * `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` from the environment route requests through a proxy
 * (see src/proxy.ts).
 */
export class VaultSink implements SecretSink {
  readonly type = "vault";
  readonly #options: VaultSinkOptions;
  readonly #address: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #now: () => number;
  readonly #logger: Logger;
  #login: { token: string; renewAt: number } | null = null;
  #lease: StaticLease | null = null;
  /** The newest `X-Vault-Index` seen: the storage state this sink has caused or observed. */
  #index: string | null = null;
  #mountChecked: Promise<void> | null = null;
  #dispatcher: Promise<Dispatcher> | null = null;
  #ownDispatcher: Dispatcher | null = null;

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
    this.#address = vaultBase(options.address);
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
    return describeVaultRecord(this.#options, address);
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    const lookup =
      this.#options.kubernetes_role === undefined
        ? await this.#lookupStatic(await this.#staticToken())
        : await this.#call("GET", "auth/token/lookup-self");
    if (lookup.status !== 200)
      throw vaultError("check", "GET", "auth/token/lookup-self", lookup, this.#secrets());
    const dataPath = this.#dataPath(address);
    const metadataPath = this.#metadataPath(address);
    const response = await this.#call("POST", "sys/capabilities-self", { paths: [dataPath, metadataPath] });
    if (response.status !== 200) {
      throw vaultError("check", "POST", "sys/capabilities-self", response, this.#secrets());
    }
    const missing = [
      // read: a write reads the current version first (and read-back verifies).
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
    // capability on a mount that is not there. The mount must be KV v2, and the exact key must read.
    this.#mountChecked = null;
    await this.#checkMount("check");
    const current = await this.#currentVersion(dataPath, "check");
    if (current.version > 0) this.#checkOwned(address, current);
  }

  async write(
    address: SinkAddress,
    record: SecretRecord,
    expectedVersion?: string | null,
  ): Promise<{ version: string | null }> {
    const dataPath = this.#dataPath(address);
    await this.#checkMount("write");
    const expected = parseExpected(dataPath, expectedVersion);
    const current = await this.#currentVersion(dataPath, "read");
    if (expected === null && current.live) {
      throw new SinkError(
        "E_SINK_CONFLICT",
        `sink=vault: ${dataPath} was written (version ${current.version}) since it was read as absent`,
        { context: { sink: "vault", path: dataPath, current_version: current.version } },
      );
    }
    if (typeof expected === "number" && expected !== current.version) {
      throw new SinkError(
        "E_SINK_CONFLICT",
        `sink=vault: ${dataPath} is at version ${current.version}, not the version ${expected} that was read`,
        {
          context: {
            sink: "vault",
            path: dataPath,
            expected_version: expected,
            current_version: current.version,
          },
        },
      );
    }
    if (current.version > 0) this.#checkOwned(address, current);
    // A deleted latest version still counts for cas: Vault compares with the key's current version.
    const cas = current.version;
    const plain = revealRecord(record);
    const secrets = this.#secrets(plain.client_secret);
    const response = await this.#call("POST", dataPath, { options: { cas }, data: plain });
    if (response.status !== 200) {
      throw vaultError("write", "POST", dataPath, response, secrets, { expected_version: cas });
    }
    const written = (response.body as { data?: { version?: unknown; custom_metadata?: unknown } } | undefined)
      ?.data;
    if (typeof written?.version !== "number") {
      throw new SinkError(
        "E_SINK_WRITE",
        `sink=vault: POST /v1/${dataPath} answered without a version, as no KV version 2 engine does`,
        { disposition: "terminal", context: { sink: "vault", path: dataPath, status: response.status } },
      );
    }
    await this.#tagMetadata(address, record, written.custom_metadata);
    this.#logger.debug({ path: dataPath, version: written.version }, "secret written");
    return { version: String(written.version) };
  }

  async read(address: SinkAddress): Promise<StoredRecord | null> {
    const dataPath = this.#dataPath(address);
    await this.#checkMount("read");
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

  /** Closes the connection pool this sink opened (the daemon calls this on shutdown). */
  async close(): Promise<void> {
    await this.#ownDispatcher?.close();
  }

  #mountPath(): string {
    return vaultSegments(this.#options.mount).join("/");
  }

  #dataPath(address: SinkAddress): string {
    return vaultDataPath(this.#options, address);
  }

  #metadataPath(address: SinkAddress): string {
    return `${this.#mountPath()}/metadata/${this.secretPath(address)}`;
  }

  /** Reads the mount's type and KV version once (again on every preflight); refuses all but KV v2. */
  #checkMount(operation: "check" | "read" | "write"): Promise<void> {
    this.#mountChecked ??= this.#readMount(operation).catch((error: unknown) => {
      this.#mountChecked = null;
      throw error;
    });
    return this.#mountChecked;
  }

  async #readMount(operation: "check" | "read" | "write"): Promise<void> {
    const mount = this.#mountPath();
    const path = `sys/internal/ui/mounts/${mount}`;
    const response = await this.#call("GET", path);
    const context = { sink: "vault", mount };
    const errors = errorsOf(response.body);
    if (
      response.status === 403 &&
      errors.some((e) => e.startsWith("preflight capability check returned 403"))
    ) {
      // Vault answers alike for "no such mount" and "nothing granted under it", so that mounts
      // cannot be probed; the capabilities were checked already, so the mount is the likely cause.
      const where = [mount, "data", ...vaultSegments(this.#options.path_prefix)].join("/");
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=vault: no KV version 2 engine serves ${where}/ (is \`mount\` right? Vault has no mount at '${mount}' that this token may use)`,
        { disposition: "terminal", context },
      );
    }
    if (response.status !== 200) throw vaultError(operation, "GET", path, response, this.#secrets());
    const data = (
      response.body as { data?: { type?: unknown; path?: unknown; options?: unknown } } | undefined
    )?.data;
    const servedBy = typeof data?.path === "string" ? data.path.replace(/\/+$/, "") : "";
    if (servedBy !== mount) {
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=vault: '${mount}' is not a mount: it lies inside the ${String(data?.type)} engine mounted at '${servedBy}' (set mount to '${servedBy}' and put the rest in path_prefix)`,
        { disposition: "terminal", context: { ...context, served_by: servedBy } },
      );
    }
    if (data?.type !== "kv" && data?.type !== "generic") {
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=vault: the engine mounted at '${mount}' is ${String(data?.type)}, not KV version 2`,
        { disposition: "terminal", context: { ...context, type: data?.type } },
      );
    }
    // As the Vault CLI reads it: no options, or no version in them, means version 1.
    const version = (data.options as { version?: unknown } | null | undefined)?.version;
    if (version !== "2") {
      throw new SinkError(
        "E_SINK_KV_VERSION",
        `sink=vault: the KV engine at '${mount}' is version ${typeof version === "string" && version !== "" ? version : "1"}, which keeps no versions: no check-and-set, no read-back by version. Use a KV version 2 mount (vault secrets enable -path=<path> kv-v2), or upgrade this one (vault kv enable-versioning ${mount})`,
        { disposition: "terminal", context: { ...context, kv_version: version ?? null } },
      );
    }
  }

  async #currentVersion(dataPath: string, operation: "check" | "read"): Promise<CurrentVersion> {
    const response = await this.#call("GET", dataPath);
    const metadata = (
      response.body as { data?: { metadata?: { version?: unknown; custom_metadata?: unknown } } } | undefined
    )?.data?.metadata;
    const version = typeof metadata?.version === "number" ? metadata.version : 0;
    const custom = isStringMap(metadata?.custom_metadata) ? metadata.custom_metadata : null;
    if (response.status === 200) return { version, live: true, custom };
    if (response.status === 404 && !noRoute(response.body)) return { version, live: false, custom };
    if (response.status === 404) {
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=vault: no KV version 2 engine serves ${dataPath} (is \`mount\` right?)`,
        { disposition: "terminal", context: { sink: "vault", path: dataPath } },
      );
    }
    throw vaultError(operation, "GET", dataPath, response, this.#secrets());
  }

  /** Refuses a key that holds versions but was not written by this tool. */
  #checkOwned(address: SinkAddress, current: CurrentVersion): void {
    if (current.custom?.["managed-by"] === VAULT_MANAGED_BY) return;
    const dataPath = this.#dataPath(address);
    const mount = vaultSegments(this.#options.mount).join("/");
    throw new SinkError(
      "E_SINK_UNMANAGED",
      `sink=vault: ${dataPath} exists (version ${current.version}) but its custom metadata has no managed-by=${VAULT_MANAGED_BY}, so this tool did not write it; refusing to overwrite it (choose another key or path_prefix, or hand it over: vault kv metadata patch -mount=${mount} -custom-metadata=managed-by=${VAULT_MANAGED_BY} ${this.secretPath(address)})`,
      { disposition: "terminal", context: { sink: "vault", path: dataPath, version: current.version } },
    );
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
      // happened. The preflight checks this capability, so this is rare: say it loudly, and what
      // follows (the next write refuses the key as not this tool's until it carries the tag).
      const error = vaultError("write", "POST", metadataPath, response, this.#secrets());
      this.#logger.warn(
        { path: metadataPath, code: error.code, reason: error.message },
        `custom metadata not written: later writes refuse this key until its custom metadata has managed-by=${VAULT_MANAGED_BY}`,
      );
    }
  }

  async #call(method: "GET" | "POST", path: string, body?: unknown): Promise<JsonResponse> {
    const response = await this.#send(method, path, await this.#token(), body);
    if (response.status === 403 && this.#options.kubernetes_role !== undefined && this.#login !== null) {
      // The cached login may have been revoked or expired early: log in again, once.
      this.#login = null;
      return this.#send(method, path, await this.#token(), body);
    }
    return response;
  }

  /**
   * One request with the headers every request carries: the token (none for a login), the
   * namespace, and the consistency headers once an index is known.
   */
  async #send(
    method: "GET" | "POST",
    path: string,
    token: string | null,
    body?: unknown,
  ): Promise<JsonResponse> {
    const headers: Record<string, string> = {};
    if (token !== null) headers["x-vault-token"] = token;
    if (this.#options.namespace) headers["x-vault-namespace"] = this.#options.namespace;
    if (this.#index !== null) {
      headers["x-vault-index"] = this.#index;
      headers["x-vault-inconsistent"] = "forward-active-node";
    }
    const response = await requestJson("vault", new URL(`${this.#address}/v1/${path}`), {
      method,
      headers,
      body,
      dispatcher: await this.#transport(),
    });
    const index = response.headers["x-vault-index"];
    const value = Array.isArray(index) ? index.at(-1) : index;
    if (typeof value === "string" && value !== "") this.#index = value;
    return response;
  }

  async #token(): Promise<string> {
    if (this.#options.kubernetes_role !== undefined)
      return this.#kubernetesLogin(this.#options.kubernetes_role);
    const token = await this.#staticToken();
    if (this.#lease?.token !== token) await this.#lookupStatic(token);
    else if (this.#lease.renewable && this.#now() >= this.#lease.renewAt)
      await this.#renewStatic(this.#lease);
    return token;
  }

  async #staticToken(): Promise<string> {
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

  /** `lookup-self` for a static token: records whether and when to renew it. The body holds the token: never logged. */
  async #lookupStatic(token: string): Promise<JsonResponse> {
    const response = await this.#send("GET", "auth/token/lookup-self", token);
    const data = (response.body as { data?: { renewable?: unknown; ttl?: unknown } } | undefined)?.data;
    const ttl = typeof data?.ttl === "number" ? data.ttl : 0;
    const renewable = response.status === 200 && data?.renewable === true && ttl > 0;
    this.#lease = {
      token,
      renewable,
      renewAt: renewable ? this.#now() + ttl * 1000 * LEASE_USE : Number.POSITIVE_INFINITY,
    };
    if (renewable)
      this.#logger.debug({ ttl_seconds: ttl }, "the Vault token is renewable; renewing it before it expires");
    if (response.status === 200 && this.#lease.renewable === false && ttl > 0) {
      this.#logger.warn(
        { ttl_seconds: ttl },
        "the Vault token expires and cannot be renewed; replace it before then",
      );
    }
    return response;
  }

  /** `renew-self`; a refusal is logged, never thrown: the token keeps working until it expires. */
  async #renewStatic(lease: StaticLease): Promise<void> {
    const path = "auth/token/renew-self";
    const response = await this.#send("POST", path, lease.token, {});
    const auth = (response.body as { auth?: { lease_duration?: unknown; renewable?: unknown } } | undefined)
      ?.auth;
    if (response.status === 200 && typeof auth?.lease_duration === "number" && auth.lease_duration > 0) {
      const renewable = auth.renewable !== false;
      this.#lease = {
        token: lease.token,
        renewable,
        renewAt: this.#now() + auth.lease_duration * 1000 * LEASE_USE,
      };
      this.#logger.debug({ ttl_seconds: auth.lease_duration }, "renewed the Vault token");
      return;
    }
    const error = vaultError("login", "POST", path, response, [lease.token]);
    if (error.disposition !== "transient") {
      // Not renewable any more (max TTL reached, revoked): stop trying; it works until it expires.
      this.#lease = { ...lease, renewable: false };
    }
    this.#logger.warn({ path, code: error.code, reason: error.message }, "the Vault token was not renewed");
  }

  async #kubernetesLogin(role: string): Promise<string> {
    if (this.#login && this.#now() < this.#login.renewAt) return this.#login.token;
    const file = this.#options.kubernetes_token_file ?? DEFAULT_KUBERNETES_TOKEN_FILE;
    const jwt = (await readSecretFile(file, "kubernetes_token_file")).trim();
    const mount = vaultSegments(this.#options.auth_mount ?? "kubernetes").join("/");
    const path = `auth/${mount}/login`;
    const response = await this.#send("POST", path, null, { role, jwt });
    const auth = (
      response.body as { auth?: { client_token?: unknown; lease_duration?: unknown } } | undefined
    )?.auth;
    if (response.status !== 200 || typeof auth?.client_token !== "string") {
      const error = vaultError("login", "POST", path, response, [jwt]);
      // Sealed, a standby that cannot serve it, a rate limit quota: try again later. Anything else
      // is a refusal of this role or this service account.
      const unavailable = error.disposition === "transient";
      throw new SinkError(
        unavailable ? "E_SINK_UNAVAILABLE" : "E_SINK_AUTH",
        `${error.message} (Kubernetes login as role '${role}')`,
        { disposition: unavailable ? "transient" : "terminal", context: { ...error.context, role } },
      );
    }
    const lease = typeof auth.lease_duration === "number" ? auth.lease_duration : 0;
    const renewAt = lease > 0 ? this.#now() + lease * 1000 * LEASE_USE : Number.POSITIVE_INFINITY;
    this.#login = { token: auth.client_token, renewAt };
    this.#logger.debug({ role, lease_seconds: lease }, "logged in to Vault with Kubernetes auth");
    return auth.client_token;
  }

  /** The dispatcher: the caller's, or one with this sink's CA, server name and proxy settings. */
  #transport(): Promise<Dispatcher> {
    this.#dispatcher ??= (async () => {
      if (this.#options.dispatcher) return this.#options.dispatcher;
      const caFile = this.#options.ca_file ?? nonEmpty(this.#env["VAULT_CACERT"]);
      let ca: string | undefined;
      if (caFile !== undefined) {
        try {
          ca = await readFile(caFile, "utf8");
        } catch (error) {
          this.#dispatcher = null;
          const option = this.#options.ca_file !== undefined ? "ca_file" : "VAULT_CACERT";
          throw new SinkError(
            "E_SINK_CONFIG",
            `sink=vault: cannot read ${option} ${caFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
            { disposition: "terminal", context: { sink: "vault" } },
          );
        }
      }
      const servername = this.#options.tls_server_name ?? nonEmpty(this.#env["VAULT_TLS_SERVER_NAME"]);
      this.#ownDispatcher = proxyAwareDispatcher(proxySettings(this.#env), {
        ca,
        servername,
        timeout: 10_000,
      });
      return this.#ownDispatcher;
    })();
    return this.#dispatcher;
  }

  /** Values to scrub from server text: the record's secret and whatever token is in use. */
  #secrets(...extra: string[]): string[] {
    const tokens = [this.#login?.token, this.#lease?.token].filter((t): t is string => t !== undefined);
    return [...extra, ...tokens];
  }
}

/** The caller's expected version: a Vault version number, null (nothing stored) or undefined. */
function parseExpected(
  dataPath: string,
  expectedVersion: string | null | undefined,
): number | null | undefined {
  if (typeof expectedVersion !== "string") return expectedVersion;
  const n = Number(expectedVersion);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new SinkError("E_SINK_CONFLICT", `sink=vault: '${expectedVersion}' is not a Vault version`, {
      context: { sink: "vault", path: dataPath, expected_version: expectedVersion },
    });
  }
  return n;
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function errorsOf(body: unknown): string[] {
  const raw = (body as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(raw) ? raw.filter((e): e is string => typeof e === "string") : [];
}

/** Vault's 404 for a path no engine is mounted at (a missing KV record is a 404 with no such error). */
function noRoute(body: unknown): boolean {
  return errorsOf(body).some((e) => e.includes("no handler for route"));
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
 * 5xx (sealed, standby trouble), 429 (a rate limit quota) and 412 (a standby without the state this
 * sink wrote) are transient.
 */
function vaultError(
  operation: "read" | "write" | "check" | "login",
  method: string,
  path: string,
  response: JsonResponse,
  secrets: readonly string[],
  context: Record<string, unknown> = {},
): SinkError {
  const errors = errorsOf(response.body);
  const reason = excerpt(errors.join("; "), secrets) || "no error message";
  const message = `sink=vault: ${method} /v1/${path} failed with HTTP ${response.status}: ${reason}`;
  const ctx = { sink: "vault", path, status: response.status, ...context };
  if (response.status === 400 && errors.some((e) => e.includes(CAS_MISMATCH))) {
    return new SinkError("E_SINK_CONFLICT", message, { context: ctx });
  }
  const code =
    operation === "check"
      ? "E_SINK_NOT_WRITABLE"
      : response.status === 401 || response.status === 403 || operation === "login"
        ? "E_SINK_AUTH"
        : operation === "read"
          ? "E_SINK_READ"
          : "E_SINK_WRITE";
  const transient = response.status >= 500 || response.status === 429 || response.status === 412;
  return new SinkError(code, message, { disposition: transient ? "transient" : "terminal", context: ctx });
}

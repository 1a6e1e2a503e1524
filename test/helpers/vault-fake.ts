/**
 * A fake HashiCorp Vault for the vault sink's tests.
 *
 * It is a fake because no Vault server can run here. It speaks the HTTP protocol of the pieces the
 * sink uses, and it ENFORCES their rules rather than echoing whatever arrives, so a sink that gets the
 * protocol wrong fails against it:
 * - a token on every request (`X-Vault-Token`), valid and unexpired, else 403 `permission denied`;
 *   policy capabilities per path (`create` vs `update` decided by whether the key exists, as Vault's
 *   existence check does), else 403;
 * - namespaces (Enterprise, HCP): `X-Vault-Namespace` picks the namespace a request runs in. Each
 *   namespace has its own mounts, so `kv` in `team-a` and `kv` at the root are separate trees; a
 *   token belongs to the namespace it was made in and works there and in the namespaces below it
 *   (its policy paths are relative to its own namespace, so a root token reaches `team-a/kv/...`),
 *   never above or beside it. The namespace given as a path prefix (`/v1/team-a/kv/...`) is not
 *   supported here;
 * - KV version 2 at `/v1/<mount>/data/<path>` and `/v1/<mount>/metadata/<path>`: versions count up
 *   from 1; `options.cas` is checked as vault-plugin-secrets-kv does (`cas` must equal the key's
 *   current version, so 0 only while no version exists; mismatch is 400
 *   `check-and-set parameter did not match the current version`); `cas_required` on the mount or
 *   the key makes `cas` mandatory; soft delete; custom_metadata validated (at most 64 keys, key
 *   length 1..128, value length 1..512, printable);
 * - KV version 1 mounts (`{ path, version: 1 }`) at `/v1/<mount>/<path>`, as Vault serves them: no
 *   versions, no `/data/` segment (a write to `<mount>/data/x` simply stores a key named `data/x`),
 *   no check-and-set (a body's `options` is stored as one more field), and a write answers 204;
 * - `GET /v1/sys/internal/ui/mounts/<path>` (what the Vault CLI's KV preflight reads): the mount
 *   serving the path, with `type` and `options.version`, for a token with any capability under the
 *   mount; 403 `preflight capability check returned 403 ...` when no mount serves the path or the
 *   token has nothing under it (Vault answers both alike so that mounts cannot be probed);
 * - `/v1/sys/capabilities-self`, `/v1/auth/token/lookup-self` (with `ttl`, `renewable`,
 *   `expire_time`), `POST /v1/auth/token/renew-self` (400 for a token that is not renewable; the new
 *   TTL is capped by the token's max TTL);
 * - Kubernetes auth: `POST /v1/auth/<mount>/login {role, jwt}` returning a client token with a TTL;
 * - a performance standby (Enterprise; as Vault's documentation on eventual consistency describes),
 *   when `performanceStandby` is on: every write returns `X-Vault-Index`, and reads are served from
 *   what the standby has received, which is the state when `performanceStandby` was turned on or
 *   `replicate()` last ran; a read that sends an `X-Vault-Index` the standby has not reached is
 *   forwarded to the active node (fresh) when it also sends `X-Vault-Inconsistent:
 *   forward-active-node`, and refused with 412 otherwise, as the docs describe. Stale reads apply to
 *   KV v2 versions; custom metadata is always current [chosen: enough to show a stale read];
 * - `sealed` answers every request 503 `Vault is sealed`; `rateLimitNext(n)` answers the next n
 *   requests 429 `rate limit quota exceeded`, as a rate limit quota does.
 * Error bodies are Vault's `{"errors": [...]}`.
 *
 * Policies are simplified: a rule's path is exact, or ends in `*` (prefix), and may use `+` for
 * one segment; the capabilities of every matching rule are united and `deny` wins.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { randomBytes, randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";

export type VaultCapability =
  "create" | "read" | "update" | "delete" | "list" | "patch" | "sudo" | "deny" | "root";

/** Path rule -> capabilities, e.g. `{ "secret/data/cf/*": ["create", "update", "read"] }`. */
export type VaultPolicy = Record<string, VaultCapability[]>;

/** A policy granting everything, the way a root token does. */
export const ROOT_POLICY: VaultPolicy = { "*": ["root"] };

export interface VaultKubernetesRole {
  /** Service-account JWTs accepted for this role. */
  jwts: string[];
  policy: VaultPolicy;
  ttl_seconds: number;
}

/** A KV mount: its path inside its namespace, its KV version (2 by default) and its namespace. */
export interface VaultMount {
  path: string;
  version?: 1 | 2;
  /** Namespace path, e.g. `team-a` or `team-a/child`; the root namespace when left out. */
  namespace?: string;
}

export interface VaultTokenOptions {
  /** Seconds until it expires; 0 (the default) never expires. */
  ttlSeconds?: number;
  /** Whether renew-self may extend it (default: when it has a TTL, as for service tokens). */
  renewable?: boolean;
  /** Renewals never take it past this many seconds after its creation (default: no cap). */
  maxTtlSeconds?: number;
  /** The namespace it was made in (default: the root namespace). */
  namespace?: string;
}

export interface VaultFakeOptions {
  /** Static tokens (root namespace, no expiry) and their policies. */
  tokens?: Record<string, VaultPolicy>;
  /** KV mounts: names are KV version 2 mounts at the root (default `["secret"]`). */
  mounts?: (string | VaultMount)[];
  /** Kubernetes auth method, mounted at `auth/<mount>` (default `kubernetes`) in `namespace`. */
  kubernetes?: { mount?: string; namespace?: string; roles: Record<string, VaultKubernetesRole> };
  /** Clock for token expiry (ms). */
  now?: () => number;
  /** Serve https with this key and certificate instead of http. */
  tls?: { key: string; cert: string };
}

interface VersionEntry {
  data: Record<string, unknown>;
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
  /** Replication index of the write that made it. */
  index: number;
}

interface KeyMetadata {
  current_version: number;
  oldest_version: number;
  versions: Map<number, VersionEntry>;
  custom_metadata: Record<string, string> | null;
  cas_required: boolean;
  max_versions: number;
  created_time: string;
  updated_time: string;
}

interface MountEntry {
  namespace: string;
  path: string;
  version: 1 | 2;
  accessor: string;
  uuid: string;
  cas_required: boolean;
  store: Map<string, KeyMetadata>;
  /** KV version 1 entries. */
  plain: Map<string, Record<string, unknown>>;
}

interface TokenEntry {
  token: string;
  policy: VaultPolicy;
  namespace: string;
  createdAt: number;
  expiresAt: number;
  creationTtl: number;
  renewable: boolean;
  maxExpiresAt: number;
  accessor: string;
  policies: string[];
}

/** What the sink tests look at: one request as the fake saw it (no bodies: they hold secrets). */
export interface VaultRequestLog {
  method: string;
  path: string;
  status: number;
  namespace?: string;
  /** Whether the request carried `X-Vault-Index`, and its `X-Vault-Inconsistent` value. */
  index?: true;
  inconsistent?: string;
}

export const CAS_MISMATCH = "check-and-set parameter did not match the current version";

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly extra: Record<string, unknown> = {},
  ) {
    super(errors.join("; "));
  }
}

/** What one request sees: its namespace, and which replication index its reads are served at. */
interface RequestContext {
  namespace: string;
  /** Reads see versions written at or below this index. */
  readIndex: number;
}

interface RouteResult {
  status: number;
  body?: unknown;
  /** The request changed storage: answer with `X-Vault-Index` (on a standby). */
  wrote?: boolean;
}

export class VaultFake {
  readonly #server: Server;
  readonly #tokens = new Map<string, TokenEntry>();
  /** Keyed by the mount's full path: `<namespace>/<path>`, or `<path>` at the root. */
  readonly #mounts = new Map<string, MountEntry>();
  readonly #kubernetes: VaultFakeOptions["kubernetes"];
  readonly #now: () => number;
  readonly #clusterId = randomBytes(6).toString("hex");
  readonly #tls: boolean;
  /** Replication index of the latest write (the active node's). */
  #index = 0;
  /** What the performance standby has received. */
  #replicated = 0;
  #standby = false;
  #rateLimited = 0;
  /** Every request, in order. */
  readonly requests: VaultRequestLog[] = [];
  /** Successful Kubernetes logins so far. */
  logins = 0;
  /** Successful renew-self calls so far. */
  renewals = 0;
  /** While set, every request is answered 503 `Vault is sealed`. */
  sealed = false;
  address = "";

  private constructor(options: VaultFakeOptions) {
    this.#now = options.now ?? Date.now;
    this.#tls = options.tls !== undefined;
    for (const [token, policy] of Object.entries(options.tokens ?? {})) this.addToken(token, policy);
    for (const mount of options.mounts ?? ["secret"]) {
      const spec = typeof mount === "string" ? { path: mount } : mount;
      const namespace = normalise(spec.namespace ?? "");
      this.#mounts.set(fullPath(namespace, spec.path), {
        namespace,
        path: spec.path,
        version: spec.version ?? 2,
        accessor: `kv_${randomBytes(4).toString("hex")}`,
        uuid: randomUUID(),
        cas_required: false,
        store: new Map(),
        plain: new Map(),
      });
    }
    this.#kubernetes = options.kubernetes;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    this.#server = options.tls
      ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler)
      : createServer(handler);
  }

  /** Starts a fake on 127.0.0.1 with an ephemeral port. */
  static async start(options: VaultFakeOptions = {}): Promise<VaultFake> {
    const fake = new VaultFake(options);
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve));
    const port = (fake.#server.address() as AddressInfo).port;
    fake.address = `${fake.#tls ? "https" : "http"}://127.0.0.1:${port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  addToken(token: string, policy: VaultPolicy, ttlSeconds = 0, options: VaultTokenOptions = {}): void {
    const ttl = options.ttlSeconds ?? ttlSeconds;
    const now = this.#now();
    this.#tokens.set(token, {
      token,
      policy,
      namespace: normalise(options.namespace ?? ""),
      createdAt: now,
      expiresAt: ttl > 0 ? now + ttl * 1000 : Number.POSITIVE_INFINITY,
      creationTtl: ttl,
      renewable: options.renewable ?? ttl > 0,
      maxExpiresAt:
        options.maxTtlSeconds !== undefined ? now + options.maxTtlSeconds * 1000 : Number.POSITIVE_INFINITY,
      accessor: randomBytes(12).toString("hex"),
      policies: ["default"],
    });
  }

  revokeToken(token: string): void {
    this.#tokens.delete(token);
  }

  /** Revokes every token issued by Kubernetes logins (as a Vault restart with a lost lease would). */
  revokeLoginTokens(): void {
    for (const [token, entry] of this.#tokens)
      if (entry.policies.includes("kubernetes-login")) this.#tokens.delete(token);
  }

  /** Answers the next `count` requests 429, as a Vault rate limit quota does. */
  rateLimitNext(count: number): void {
    this.#rateLimited = count;
  }

  /**
   * Turns the performance standby on or off. On, reads are served from what the standby has
   * received (everything written so far) until `replicate()`; off, every read is fresh.
   */
  set performanceStandby(on: boolean) {
    this.#standby = on;
    this.#replicated = this.#index;
  }

  get performanceStandby(): boolean {
    return this.#standby;
  }

  /** The standby catches up with the active node. */
  replicate(): void {
    this.#replicated = this.#index;
  }

  setCasRequired(mount: string, required: boolean): void {
    this.#mount(mount).cas_required = required;
  }

  /** A write by someone else (a human, another tool): a new version, no checks. */
  writeDirect(mount: string, path: string, data: Record<string, unknown>): number {
    const entry = this.#mount(mount);
    if (entry.version === 1) {
      entry.plain.set(path, structuredClone(data));
      this.#index += 1;
      return 0;
    }
    const meta = this.#meta(mount, path, true) as KeyMetadata;
    return this.#addVersion(meta, data);
  }

  /** Soft-deletes the latest version, as `vault kv delete` does. */
  deleteLatest(mount: string, path: string): void {
    const meta = this.#meta(mount, path, false);
    const entry = meta?.versions.get(meta.current_version);
    if (entry) entry.deletion_time = this.#iso();
  }

  /**
   * The latest version as stored, for assertions; null when absent. `mount` is the mount's full
   * path (`team-a/kv` for `kv` in namespace `team-a`). A KV v1 entry has version 0.
   */
  inspect(
    mount: string,
    path: string,
  ): {
    data: Record<string, unknown>;
    version: number;
    custom_metadata: Record<string, string> | null;
  } | null {
    const entry = this.#mount(mount);
    if (entry.version === 1) {
      const data = entry.plain.get(path);
      return data ? { data: structuredClone(data), version: 0, custom_metadata: null } : null;
    }
    const meta = this.#meta(mount, path, false);
    const version = meta?.versions.get(meta.current_version);
    if (!meta || !version) return null;
    return {
      data: structuredClone(version.data),
      version: meta.current_version,
      custom_metadata: meta.custom_metadata,
    };
  }

  /** Every key stored in a mount (KV v1 or v2), for assertions. */
  keys(mount: string): string[] {
    const entry = this.#mount(mount);
    return [...(entry.version === 1 ? entry.plain.keys() : entry.store.keys())].sort();
  }

  setCustomMetadata(mount: string, path: string, custom: Record<string, string>): void {
    (this.#meta(mount, path, true) as KeyMetadata).custom_metadata = { ...custom };
    this.#index += 1;
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  #mount(mount: string): MountEntry {
    const found = this.#mounts.get(mount);
    if (!found) throw new Error(`no mount ${mount}`);
    return found;
  }

  #meta(mount: string, path: string, create: boolean): KeyMetadata | undefined {
    const store = this.#mount(mount).store;
    let meta = store.get(path);
    if (!meta && create) {
      meta = {
        current_version: 0,
        oldest_version: 0,
        versions: new Map(),
        custom_metadata: null,
        cas_required: false,
        max_versions: 0,
        created_time: this.#iso(),
        updated_time: this.#iso(),
      };
      store.set(path, meta);
    }
    return meta;
  }

  #addVersion(meta: KeyMetadata, data: Record<string, unknown>): number {
    this.#index += 1;
    const now = this.#iso();
    meta.current_version += 1;
    if (meta.oldest_version === 0) meta.oldest_version = 1;
    meta.versions.set(meta.current_version, {
      data: structuredClone(data),
      created_time: now,
      deletion_time: "",
      destroyed: false,
      index: this.#index,
    });
    meta.updated_time = now;
    return meta.current_version;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const namespace = normalise(headerOf(req, "x-vault-namespace") ?? "");
    const index = headerOf(req, "x-vault-index");
    const inconsistent = headerOf(req, "x-vault-inconsistent");
    let status = 500;
    try {
      const body = await readBody(req);
      if (this.sealed) throw new HttpError(503, ["Vault is sealed"]);
      if (this.#rateLimited > 0) {
        this.#rateLimited -= 1;
        throw new HttpError(429, [
          `request path "${url.pathname.slice("/v1/".length)}": rate limit quota exceeded`,
        ]);
      }
      const context = { namespace, readIndex: this.#readIndex(index, inconsistent) };
      const result = this.#route(method, url, req, body, context);
      status = result.status;
      const headers: Record<string, string> =
        this.#standby && result.wrote ? { "x-vault-index": this.#encodeIndex(this.#index) } : {};
      send(res, result.status, result.body, headers);
    } catch (error) {
      if (error instanceof HttpError) {
        status = error.status;
        send(res, error.status, { errors: error.errors, ...error.extra });
      } else {
        status = 500;
        send(res, 500, { errors: [String((error as Error).message)] });
      }
    } finally {
      this.requests.push({
        method,
        path: url.pathname,
        status,
        ...(namespace !== "" ? { namespace } : {}),
        ...(index !== undefined ? { index: true as const } : {}),
        ...(inconsistent !== undefined ? { inconsistent } : {}),
      });
    }
  }

  /**
   * The index reads are served at. Off standby: the latest. On a standby: what it has received,
   * unless the client asks for a newer state: then forwarded (fresh) or refused with 412.
   */
  #readIndex(header: string | undefined, inconsistent: string | undefined): number {
    if (!this.#standby) return this.#index;
    if (header === undefined) return this.#replicated;
    const wanted = this.#decodeIndex(header);
    if (wanted <= this.#replicated) return this.#replicated;
    if (inconsistent === "forward-active-node") return this.#index;
    throw new HttpError(412, ["required index state not present"]);
  }

  #encodeIndex(index: number): string {
    return Buffer.from(`fake-wal:${this.#clusterId}:${index}`).toString("base64");
  }

  #decodeIndex(header: string): number {
    const match = /^fake-wal:([0-9a-f]+):(\d+)$/.exec(Buffer.from(header, "base64").toString("utf8"));
    if (!match || match[1] !== this.#clusterId) throw new HttpError(400, ["invalid X-Vault-Index header"]);
    return Number(match[2]);
  }

  #route(
    method: string,
    url: URL,
    req: IncomingMessage,
    body: unknown,
    context: RequestContext,
  ): RouteResult {
    if (!url.pathname.startsWith("/v1/")) throw new HttpError(404, ["not found"]);
    const path = url.pathname.slice("/v1/".length);
    const k8sMount = this.#kubernetes?.mount ?? "kubernetes";
    if (
      path === `auth/${k8sMount}/login` &&
      this.#kubernetes &&
      normalise(this.#kubernetes.namespace ?? "") === context.namespace &&
      (method === "POST" || method === "PUT")
    ) {
      return this.#login(body, context.namespace);
    }
    const token = this.#authenticate(req, context.namespace);
    const acl = (p: string) => aclPath(token, context.namespace, p);
    if (path === "auth/token/lookup-self" && method === "GET") {
      return ok(this.#lookup(token));
    }
    if (path === "auth/token/renew-self" && (method === "POST" || method === "PUT")) {
      return this.#renew(token, body);
    }
    if (path === "sys/capabilities-self" && (method === "POST" || method === "PUT")) {
      const paths = (body as { paths?: unknown } | undefined)?.paths;
      if (!Array.isArray(paths) || !paths.every((p) => typeof p === "string")) {
        throw new HttpError(400, ["missing paths"]);
      }
      const answer: Record<string, string[]> = {};
      for (const p of paths as string[]) answer[p] = capabilitiesFor(token.policy, acl(p));
      const single = paths.length === 1 ? { capabilities: answer[paths[0] as string] } : {};
      return { status: 200, body: { ...answer, ...single, data: { ...answer, ...single } } };
    }
    if (path.startsWith("sys/internal/ui/mounts/") && method === "GET") {
      return this.#mountInfo(token, path.slice("sys/internal/ui/mounts/".length), context.namespace);
    }
    const mount = this.#mountFor(context.namespace, path);
    if (!mount) {
      this.#require(token, acl(path), method === "GET" ? "read" : "update");
      throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
    }
    const inner = path.slice(mount.path.length + 1);
    const key = fullPath(mount.namespace, mount.path);
    if (mount.version === 1) return this.#plain(method, token, acl(path), mount, inner, body);
    const [kind, ...rest] = inner.split("/");
    const keyPath = rest.join("/");
    if (kind === "config") {
      this.#require(token, acl(path), method === "GET" ? "read" : "update");
      if (method === "GET")
        return ok({ cas_required: mount.cas_required, max_versions: 0, delete_version_after: "0s" });
      const casRequired = (body as { cas_required?: unknown } | undefined)?.cas_required;
      if (typeof casRequired === "boolean") mount.cas_required = casRequired;
      this.#index += 1;
      return { status: 204, wrote: true };
    }
    if (keyPath === "" || (kind !== "data" && kind !== "metadata")) {
      this.#require(token, acl(path), "read");
      throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
    }
    const meta = mount.store.get(keyPath);
    if (kind === "data")
      return this.#data(method, url, token, acl(path), key, keyPath, meta, mount.cas_required, body, context);
    return this.#metadata(method, token, acl(path), key, keyPath, meta, body, context);
  }

  /** The mount serving `path` in `namespace`: the longest mount path that is a prefix of it. */
  #mountFor(namespace: string, path: string): MountEntry | undefined {
    let best: MountEntry | undefined;
    for (const mount of this.#mounts.values()) {
      if (mount.namespace !== namespace) continue;
      if (`${path}/`.startsWith(`${mount.path}/`) && (!best || mount.path.length > best.path.length))
        best = mount;
    }
    return best;
  }

  #mountInfo(token: TokenEntry, path: string, namespace: string): RouteResult {
    const clean = path.replace(/^\/+|\/+$/g, "");
    const refused = new HttpError(403, [
      `preflight capability check returned 403, please ensure client's policies grant access to path "${clean}/"`,
    ]);
    const mount = clean === "" ? undefined : this.#mountFor(namespace, clean);
    if (!mount) throw refused;
    if (!hasMountAccess(token.policy, aclPath(token, namespace, mount.path))) throw refused;
    return ok({
      accessor: mount.accessor,
      config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
      description: "",
      external_entropy_access: false,
      local: false,
      options: { version: String(mount.version) },
      path: `${mount.path}/`,
      plugin_version: "",
      running_plugin_version: "v0.20.0+builtin",
      running_sha256: "",
      seal_wrap: false,
      type: "kv",
      uuid: mount.uuid,
    });
  }

  #authenticate(req: IncomingMessage, namespace: string): TokenEntry {
    const header = req.headers["x-vault-token"];
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const value = typeof header === "string" ? header : bearer;
    const token = value ? this.#tokens.get(value) : undefined;
    if (!token || token.expiresAt <= this.#now()) throw new HttpError(403, ["permission denied"]);
    // A token works in its own namespace and the ones below it.
    if (!(
      token.namespace === "" ||
      namespace === token.namespace ||
      namespace.startsWith(`${token.namespace}/`)
    ))
      throw new HttpError(403, ["permission denied"]);
    return token;
  }

  #require(token: TokenEntry, path: string, capability: VaultCapability): void {
    const capabilities = capabilitiesFor(token.policy, path);
    if (capabilities.includes("root")) return;
    if (!capabilities.includes(capability)) throw new HttpError(403, ["permission denied"]);
  }

  #lookup(token: TokenEntry): Record<string, unknown> {
    const expires = Number.isFinite(token.expiresAt);
    return {
      accessor: token.accessor,
      creation_time: Math.floor(token.createdAt / 1000),
      creation_ttl: token.creationTtl,
      display_name: "token",
      entity_id: "",
      expire_time: expires ? new Date(token.expiresAt).toISOString() : null,
      explicit_max_ttl: 0,
      id: token.token,
      issue_time: new Date(token.createdAt).toISOString(),
      meta: null,
      namespace_path: token.namespace === "" ? "" : `${token.namespace}/`,
      num_uses: 0,
      orphan: false,
      path: "auth/token/create",
      policies: token.policies,
      renewable: token.renewable,
      ttl: expires ? Math.max(0, Math.floor((token.expiresAt - this.#now()) / 1000)) : 0,
      type: "service",
    };
  }

  #renew(token: TokenEntry, body: unknown): RouteResult {
    if (!token.renewable || !Number.isFinite(token.expiresAt))
      throw new HttpError(400, ["lease is not renewable"]);
    const increment = parseSeconds((body as { increment?: unknown } | undefined)?.increment);
    const wanted = increment ?? token.creationTtl;
    const now = this.#now();
    const ttl = Math.max(0, Math.min(wanted, Math.floor((token.maxExpiresAt - now) / 1000)));
    token.expiresAt = now + ttl * 1000;
    this.renewals += 1;
    this.#index += 1;
    return {
      status: 200,
      wrote: true,
      body: {
        request_id: randomUUID(),
        lease_id: "",
        renewable: false,
        lease_duration: 0,
        data: null,
        wrap_info: null,
        warnings:
          ttl < wanted
            ? [
                `TTL of "${wanted}s" exceeded the effective max_ttl of "${ttl}s"; TTL value is capped accordingly`,
              ]
            : null,
        auth: {
          client_token: token.token,
          accessor: token.accessor,
          policies: token.policies,
          token_policies: token.policies,
          metadata: null,
          lease_duration: ttl,
          renewable: token.renewable,
        },
      },
    };
  }

  #plain(
    method: string,
    token: TokenEntry,
    acl: string,
    mount: MountEntry,
    key: string,
    body: unknown,
  ): RouteResult {
    if (key === "") {
      this.#require(token, acl, "read");
      throw new HttpError(405, ["unsupported operation"]);
    }
    const existing = mount.plain.get(key);
    if (method === "GET") {
      this.#require(token, acl, "read");
      if (!existing) throw new HttpError(404, []);
      return ok(structuredClone(existing));
    }
    if (method === "POST" || method === "PUT") {
      this.#require(token, acl, existing ? "update" : "create");
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new HttpError(400, ["missing data fields"]);
      }
      mount.plain.set(key, structuredClone(body as Record<string, unknown>));
      this.#index += 1;
      return { status: 204, wrote: true };
    }
    if (method === "DELETE") {
      this.#require(token, acl, "delete");
      mount.plain.delete(key);
      this.#index += 1;
      return { status: 204, wrote: true };
    }
    throw new HttpError(405, ["unsupported operation"]);
  }

  #data(
    method: string,
    url: URL,
    token: TokenEntry,
    aclPath: string,
    mount: string,
    keyPath: string,
    meta: KeyMetadata | undefined,
    mountCasRequired: boolean,
    body: unknown,
    context: RequestContext,
  ): RouteResult {
    if (method === "GET") {
      this.#require(token, aclPath, "read");
      const current = meta ? visibleVersion(meta, context.readIndex) : 0;
      if (!meta || current === 0) throw new HttpError(404, []);
      const asked = Number(url.searchParams.get("version") ?? "0");
      const number = asked > 0 ? asked : current;
      const entry = meta.versions.get(number);
      if (!entry || entry.index > context.readIndex) throw new HttpError(404, []);
      const metadata = versionMetadata(number, entry, meta);
      if (entry.destroyed || (entry.deletion_time !== "" && entry.deletion_time <= this.#iso())) {
        throw new HttpError(404, [], { data: { data: null, metadata } });
      }
      return ok({ data: structuredClone(entry.data), metadata });
    }
    if (method === "POST" || method === "PUT") {
      this.#require(token, aclPath, meta ? "update" : "create");
      const input = body as { data?: unknown; options?: { cas?: unknown } } | undefined;
      if (typeof input?.data !== "object" || input.data === null || Array.isArray(input.data)) {
        throw new HttpError(400, ["no data provided"]);
      }
      const current = meta ?? this.#meta(mount, keyPath, true);
      const target = current as KeyMetadata;
      const options = input.options;
      if (options !== undefined && (typeof options !== "object" || options === null)) {
        throw new HttpError(400, ["error parsing options"]);
      }
      if (options && "cas" in options) {
        const cas = parseCas(options.cas);
        if (cas === null) throw new HttpError(400, ["error parsing check-and-set parameter"]);
        if (cas !== target.current_version) {
          if (!meta) this.#mount(mount).store.delete(keyPath);
          throw new HttpError(400, [CAS_MISMATCH]);
        }
      } else if (mountCasRequired || target.cas_required) {
        if (!meta) this.#mount(mount).store.delete(keyPath);
        throw new HttpError(400, ["check-and-set parameter required for this call"]);
      }
      const version = this.#addVersion(target, input.data as Record<string, unknown>);
      const entry = target.versions.get(version) as VersionEntry;
      return { ...ok({ ...versionMetadata(version, entry, target) }), wrote: true };
    }
    if (method === "DELETE") {
      this.#require(token, aclPath, "delete");
      const entry = meta?.versions.get(meta.current_version);
      if (entry) entry.deletion_time = this.#iso();
      this.#index += 1;
      return { status: 204, wrote: true };
    }
    throw new HttpError(405, ["unsupported operation"]);
  }

  #metadata(
    method: string,
    token: TokenEntry,
    aclPath: string,
    mount: string,
    keyPath: string,
    meta: KeyMetadata | undefined,
    body: unknown,
    context: RequestContext,
  ): RouteResult {
    if (method === "GET") {
      this.#require(token, aclPath, "read");
      if (!meta) throw new HttpError(404, []);
      const versions: Record<string, unknown> = {};
      for (const [n, entry] of meta.versions) {
        if (entry.index > context.readIndex) continue;
        versions[String(n)] = {
          created_time: entry.created_time,
          deletion_time: entry.deletion_time,
          destroyed: entry.destroyed,
        };
      }
      return ok({
        versions,
        current_version: visibleVersion(meta, context.readIndex),
        oldest_version: meta.oldest_version,
        created_time: meta.created_time,
        updated_time: meta.updated_time,
        max_versions: meta.max_versions,
        cas_required: meta.cas_required,
        delete_version_after: "0s",
        custom_metadata: meta.custom_metadata,
      });
    }
    if (method === "POST" || method === "PUT") {
      this.#require(token, aclPath, meta ? "update" : "create");
      const input = (body ?? {}) as {
        custom_metadata?: unknown;
        cas_required?: unknown;
        max_versions?: unknown;
      };
      let custom: Record<string, string> | undefined;
      if (input.custom_metadata !== undefined) custom = validateCustomMetadata(input.custom_metadata);
      const target = this.#meta(mount, keyPath, true) as KeyMetadata;
      if (custom) target.custom_metadata = custom;
      if (typeof input.cas_required === "boolean") target.cas_required = input.cas_required;
      if (typeof input.max_versions === "number") target.max_versions = input.max_versions;
      target.updated_time = this.#iso();
      this.#index += 1;
      return { status: 204, wrote: true };
    }
    if (method === "DELETE") {
      this.#require(token, aclPath, "delete");
      this.#mount(mount).store.delete(keyPath);
      this.#index += 1;
      return { status: 204, wrote: true };
    }
    throw new HttpError(405, ["unsupported operation"]);
  }

  #login(body: unknown, namespace: string): RouteResult {
    const input = body as { role?: unknown; jwt?: unknown } | undefined;
    if (typeof input?.role !== "string" || input.role === "") throw new HttpError(400, ["missing role"]);
    if (typeof input.jwt !== "string" || input.jwt === "") throw new HttpError(400, ["missing jwt"]);
    const role = this.#kubernetes?.roles[input.role];
    if (!role) throw new HttpError(400, [`invalid role name "${input.role}"`]);
    if (!role.jwts.includes(input.jwt)) throw new HttpError(403, ["permission denied"]);
    const token = `hvs.${randomBytes(18).toString("base64url")}`;
    const accessor = randomBytes(12).toString("hex");
    const now = this.#now();
    this.#tokens.set(token, {
      token,
      policy: role.policy,
      namespace,
      createdAt: now,
      expiresAt: now + role.ttl_seconds * 1000,
      creationTtl: role.ttl_seconds,
      renewable: true,
      maxExpiresAt: Number.POSITIVE_INFINITY,
      accessor,
      policies: ["default", "kubernetes-login", input.role],
    });
    this.logins += 1;
    return {
      status: 200,
      body: {
        request_id: randomUUID(),
        lease_id: "",
        renewable: false,
        lease_duration: 0,
        data: null,
        wrap_info: null,
        warnings: null,
        auth: {
          client_token: token,
          accessor,
          policies: ["default", input.role],
          token_policies: ["default", input.role],
          metadata: {
            role: input.role,
            service_account_name: "cf-oauth-gitops",
            service_account_namespace: "default",
          },
          lease_duration: role.ttl_seconds,
          renewable: true,
        },
      },
    };
  }
}

/** A namespace path without leading or trailing slashes (`""` is the root namespace). */
function normalise(namespace: string): string {
  return namespace.replace(/^\/+|\/+$/g, "");
}

function fullPath(namespace: string, path: string): string {
  return namespace === "" ? path : `${namespace}/${path}`;
}

/** The path a token's policy is checked against: relative to the token's own namespace. */
function aclPath(token: TokenEntry, namespace: string, path: string): string {
  if (namespace === token.namespace) return path;
  const below = token.namespace === "" ? namespace : namespace.slice(token.namespace.length + 1);
  return `${below}/${path}`;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The key's latest version among those written at or below `index`; 0 when none. */
function visibleVersion(meta: KeyMetadata, index: number): number {
  let latest = 0;
  for (const [n, entry] of meta.versions) if (entry.index <= index && n > latest) latest = n;
  return latest;
}

function versionMetadata(version: number, entry: VersionEntry, meta: KeyMetadata): Record<string, unknown> {
  return {
    version,
    created_time: entry.created_time,
    deletion_time: entry.deletion_time,
    destroyed: entry.destroyed,
    custom_metadata: meta.custom_metadata,
  };
}

/** `cas` as Vault's weak decoding reads it: an integer, or a string of one. */
function parseCas(raw: unknown): number | null {
  if (typeof raw === "number" && Number.isInteger(raw)) return raw;
  if (typeof raw === "string" && /^-?\d+$/.test(raw)) return Number(raw);
  return null;
}

/** A renew `increment`: seconds as a number, or a duration string such as `90s`, `15m`, `1h`. */
function parseSeconds(raw: unknown): number | undefined {
  if (typeof raw === "number" && raw > 0) return Math.floor(raw);
  if (typeof raw !== "string") return undefined;
  const match = /^(\d+)([smh]?)$/.exec(raw);
  if (!match) return undefined;
  const unit = match[2] === "h" ? 3600 : match[2] === "m" ? 60 : 1;
  return Number(match[1]) * unit;
}

function validateCustomMetadata(raw: unknown): Record<string, string> {
  const prefix = "custom_metadata validation failed";
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new HttpError(400, [`${prefix}: not a map`]);
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > 64) {
    throw new HttpError(400, [`${prefix}: payload must contain at most 64 keys, provided ${entries.length}`]);
  }
  const errors: string[] = [];
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    const text =
      typeof value === "string"
        ? value
        : typeof value === "number" || typeof value === "boolean"
          ? String(value)
          : null;
    if (text === null) {
      errors.push(`${prefix}: value for key "${key}" is not a string`);
      continue;
    }
    if (key.length === 0 || key.length > 128)
      errors.push(`${prefix}: length of key "${key}" is ${key.length}`);
    if (text.length === 0 || text.length > 512)
      errors.push(`${prefix}: length of value for key "${key}" is ${text.length}`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(key))
      errors.push(`${prefix}: key "${key}" contains unprintable characters`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(text))
      errors.push(`${prefix}: value for key "${key}" contains unprintable characters`);
    out[key] = text;
  }
  if (errors.length > 0) throw new HttpError(400, errors);
  return out;
}

/** Capabilities a policy grants on a path: the union over matching rules; `deny` wins. */
export function capabilitiesFor(policy: VaultPolicy, path: string): string[] {
  const granted = new Set<string>();
  for (const [rule, capabilities] of Object.entries(policy)) {
    if (!ruleMatches(rule, path)) continue;
    for (const capability of capabilities) granted.add(capability);
  }
  if (granted.has("deny") || granted.size === 0) return ["deny"];
  return [...granted].sort();
}

/**
 * Whether a policy grants anything under a mount, as Vault decides it for
 * `sys/internal/ui/mounts`: a rule inside the mount, or a prefix rule covering it.
 */
function hasMountAccess(policy: VaultPolicy, mountPath: string): boolean {
  const mount = `${mountPath}/`;
  return Object.entries(policy).some(([rule, capabilities]) => {
    if (capabilities.length === 0 || capabilities.includes("deny")) return false;
    // The rule's fixed part: up to its first `+` segment, without a trailing `*`.
    const literal = (rule.split("+")[0] as string).replace(/\*$/, "");
    const inside = literal.startsWith(mount);
    const covering = rule.endsWith("*") && !rule.includes("+") && mount.startsWith(literal);
    return inside || covering;
  });
}

function ruleMatches(rule: string, path: string): boolean {
  const prefix = rule.endsWith("*");
  const pattern = (prefix ? rule.slice(0, -1) : rule)
    .split("+")
    .map((part) => part.replace(/[.*?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]+");
  return new RegExp(`^${pattern}${prefix ? "" : "$"}`).test(path);
}

function ok(data: unknown): RouteResult {
  return {
    status: 200,
    body: {
      request_id: randomUUID(),
      lease_id: "",
      renewable: false,
      lease_duration: 0,
      data,
      wrap_info: null,
      warnings: null,
      auth: null,
    },
  };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, ["failed to parse JSON input"]);
  }
}

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status === 200 ? 204 : status, headers).end();
    return;
  }
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

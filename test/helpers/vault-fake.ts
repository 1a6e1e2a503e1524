/**
 * A fake HashiCorp Vault for the vault sink's tests.
 *
 * It is a fake because no Vault server can run here. It speaks the HTTP protocol of the pieces the
 * sink uses, and it ENFORCES their rules rather than echoing whatever arrives, so a sink that gets the
 * protocol wrong fails against it:
 * - a token on every request (`X-Vault-Token`), valid and unexpired, else 403 `permission denied`;
 *   policy capabilities per path (`create` vs `update` decided by whether the key exists, as Vault's
 *   existence check does), else 403;
 * - KV version 2 at `/v1/<mount>/data/<path>` and `/v1/<mount>/metadata/<path>`: versions count up
 *   from 1; `options.cas` is checked as vault-plugin-secrets-kv does (`cas` must equal the key's
 *   current version, so 0 only while no version exists; mismatch is 400
 *   `check-and-set parameter did not match the current version`); `cas_required` on the mount or
 *   the key makes `cas` mandatory; soft delete; custom_metadata validated (at most 64 keys, key
 *   length 1..128, value length 1..512, printable);
 * - `/v1/sys/capabilities-self`, `/v1/auth/token/lookup-self`;
 * - Kubernetes auth: `POST /v1/auth/<mount>/login {role, jwt}` returning a client token with a TTL.
 * Error bodies are Vault's `{"errors": [...]}`.
 *
 * Policies are simplified: a rule's path is exact, or ends in `*` (prefix), and may use `+` for
 * one segment; the capabilities of every matching rule are united and `deny` wins.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
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

export interface VaultFakeOptions {
  /** Static tokens and their policies. */
  tokens?: Record<string, VaultPolicy>;
  /** KV version 2 mounts (default `["secret"]`). */
  mounts?: string[];
  /** Kubernetes auth method, mounted at `auth/<mount>` (default `kubernetes`). */
  kubernetes?: { mount?: string; roles: Record<string, VaultKubernetesRole> };
  /** Clock for token expiry (ms). */
  now?: () => number;
}

interface VersionEntry {
  data: Record<string, unknown>;
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
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

interface TokenEntry {
  policy: VaultPolicy;
  expiresAt: number;
  accessor: string;
  policies: string[];
}

/** What the sink tests look at: one request as the fake saw it (no bodies: they hold secrets). */
export interface VaultRequestLog {
  method: string;
  path: string;
  status: number;
  namespace?: string;
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

export class VaultFake {
  readonly #server: Server;
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #mounts = new Map<string, { cas_required: boolean; store: Map<string, KeyMetadata> }>();
  readonly #kubernetes: VaultFakeOptions["kubernetes"];
  readonly #now: () => number;
  /** Every request, in order. */
  readonly requests: VaultRequestLog[] = [];
  /** Successful Kubernetes logins so far. */
  logins = 0;
  address = "";

  private constructor(options: VaultFakeOptions) {
    this.#now = options.now ?? Date.now;
    for (const [token, policy] of Object.entries(options.tokens ?? {})) this.addToken(token, policy);
    for (const mount of options.mounts ?? ["secret"])
      this.#mounts.set(mount, { cas_required: false, store: new Map() });
    this.#kubernetes = options.kubernetes;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  /** Starts a fake on 127.0.0.1 with an ephemeral port. */
  static async start(options: VaultFakeOptions = {}): Promise<VaultFake> {
    const fake = new VaultFake(options);
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve));
    fake.address = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  addToken(token: string, policy: VaultPolicy, ttlSeconds = 0): void {
    this.#tokens.set(token, {
      policy,
      expiresAt: ttlSeconds > 0 ? this.#now() + ttlSeconds * 1000 : Number.POSITIVE_INFINITY,
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

  setCasRequired(mount: string, required: boolean): void {
    this.#mount(mount).cas_required = required;
  }

  /** A write by someone else (a human, another tool): a new version, no checks. */
  writeDirect(mount: string, path: string, data: Record<string, unknown>): number {
    const meta = this.#meta(mount, path, true) as KeyMetadata;
    return addVersion(meta, data, this.#iso());
  }

  /** Soft-deletes the latest version, as `vault kv delete` does. */
  deleteLatest(mount: string, path: string): void {
    const meta = this.#meta(mount, path, false);
    const entry = meta?.versions.get(meta.current_version);
    if (entry) entry.deletion_time = this.#iso();
  }

  /** The latest version as stored, for assertions; null when absent. */
  inspect(
    mount: string,
    path: string,
  ): {
    data: Record<string, unknown>;
    version: number;
    custom_metadata: Record<string, string> | null;
  } | null {
    const meta = this.#meta(mount, path, false);
    const entry = meta?.versions.get(meta.current_version);
    if (!meta || !entry) return null;
    return {
      data: structuredClone(entry.data),
      version: meta.current_version,
      custom_metadata: meta.custom_metadata,
    };
  }

  setCustomMetadata(mount: string, path: string, custom: Record<string, string>): void {
    (this.#meta(mount, path, true) as KeyMetadata).custom_metadata = { ...custom };
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  #mount(mount: string): { cas_required: boolean; store: Map<string, KeyMetadata> } {
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

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    let status = 500;
    try {
      const body = await readBody(req);
      const result = this.#route(method, url, req, body);
      status = result.status;
      send(res, result.status, result.body);
    } catch (error) {
      if (error instanceof HttpError) {
        status = error.status;
        send(res, error.status, { errors: error.errors, ...error.extra });
      } else {
        status = 500;
        send(res, 500, { errors: [String((error as Error).message)] });
      }
    } finally {
      const namespace = req.headers["x-vault-namespace"];
      this.requests.push({
        method,
        path: url.pathname,
        status,
        ...(typeof namespace === "string" ? { namespace } : {}),
      });
    }
  }

  #route(method: string, url: URL, req: IncomingMessage, body: unknown): { status: number; body?: unknown } {
    if (!url.pathname.startsWith("/v1/")) throw new HttpError(404, ["not found"]);
    const path = url.pathname.slice("/v1/".length);
    const k8sMount = this.#kubernetes?.mount ?? "kubernetes";
    if (path === `auth/${k8sMount}/login` && this.#kubernetes && (method === "POST" || method === "PUT")) {
      return this.#login(body);
    }
    const token = this.#authenticate(req);
    if (path === "auth/token/lookup-self" && method === "GET") {
      const ttl = Number.isFinite(token.expiresAt)
        ? Math.max(0, Math.floor((token.expiresAt - this.#now()) / 1000))
        : 0;
      return ok({ accessor: token.accessor, policies: token.policies, ttl, display_name: "token" });
    }
    if (path === "sys/capabilities-self" && (method === "POST" || method === "PUT")) {
      const paths = (body as { paths?: unknown } | undefined)?.paths;
      if (!Array.isArray(paths) || !paths.every((p) => typeof p === "string")) {
        throw new HttpError(400, ["missing paths"]);
      }
      const answer: Record<string, string[]> = {};
      for (const p of paths as string[]) answer[p] = capabilitiesFor(token.policy, p);
      const single = paths.length === 1 ? { capabilities: answer[paths[0] as string] } : {};
      return { status: 200, body: { ...answer, ...single, data: { ...answer, ...single } } };
    }
    const [mountName, kind, ...rest] = path.split("/");
    const mount = mountName ? this.#mounts.get(mountName) : undefined;
    const keyPath = rest.join("/");
    const aclPath = path;
    if (!mount || !mountName) {
      this.#require(token, aclPath, method === "GET" ? "read" : "update");
      throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
    }
    if (kind === "config") {
      this.#require(token, aclPath, method === "GET" ? "read" : "update");
      if (method === "GET")
        return ok({ cas_required: mount.cas_required, max_versions: 0, delete_version_after: "0s" });
      const casRequired = (body as { cas_required?: unknown } | undefined)?.cas_required;
      if (typeof casRequired === "boolean") mount.cas_required = casRequired;
      return { status: 204 };
    }
    if (keyPath === "" || (kind !== "data" && kind !== "metadata")) {
      this.#require(token, aclPath, "read");
      throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
    }
    const meta = mount.store.get(keyPath);
    if (kind === "data")
      return this.#data(method, url, token, aclPath, mountName, keyPath, meta, mount.cas_required, body);
    return this.#metadata(method, token, aclPath, mountName, keyPath, meta, body);
  }

  #authenticate(req: IncomingMessage): TokenEntry {
    const header = req.headers["x-vault-token"];
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const value = typeof header === "string" ? header : bearer;
    const token = value ? this.#tokens.get(value) : undefined;
    if (!token || token.expiresAt <= this.#now()) throw new HttpError(403, ["permission denied"]);
    return token;
  }

  #require(token: TokenEntry, path: string, capability: VaultCapability): void {
    const capabilities = capabilitiesFor(token.policy, path);
    if (capabilities.includes("root")) return;
    if (!capabilities.includes(capability)) throw new HttpError(403, ["permission denied"]);
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
  ): { status: number; body?: unknown } {
    if (method === "GET") {
      this.#require(token, aclPath, "read");
      if (!meta) throw new HttpError(404, []);
      const asked = Number(url.searchParams.get("version") ?? "0");
      const number = asked > 0 ? asked : meta.current_version;
      const entry = meta.versions.get(number);
      if (!entry) throw new HttpError(404, []);
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
      const version = addVersion(target, input.data as Record<string, unknown>, this.#iso());
      const entry = target.versions.get(version) as VersionEntry;
      return ok({ ...versionMetadata(version, entry, target) });
    }
    if (method === "DELETE") {
      this.#require(token, aclPath, "delete");
      const entry = meta?.versions.get(meta.current_version);
      if (entry) entry.deletion_time = this.#iso();
      return { status: 204 };
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
  ): { status: number; body?: unknown } {
    if (method === "GET") {
      this.#require(token, aclPath, "read");
      if (!meta) throw new HttpError(404, []);
      const versions: Record<string, unknown> = {};
      for (const [n, entry] of meta.versions) {
        versions[String(n)] = {
          created_time: entry.created_time,
          deletion_time: entry.deletion_time,
          destroyed: entry.destroyed,
        };
      }
      return ok({
        versions,
        current_version: meta.current_version,
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
      return { status: 204 };
    }
    if (method === "DELETE") {
      this.#require(token, aclPath, "delete");
      this.#mount(mount).store.delete(keyPath);
      return { status: 204 };
    }
    throw new HttpError(405, ["unsupported operation"]);
  }

  #login(body: unknown): { status: number; body: unknown } {
    const input = body as { role?: unknown; jwt?: unknown } | undefined;
    if (typeof input?.role !== "string" || input.role === "") throw new HttpError(400, ["missing role"]);
    if (typeof input.jwt !== "string" || input.jwt === "") throw new HttpError(400, ["missing jwt"]);
    const role = this.#kubernetes?.roles[input.role];
    if (!role) throw new HttpError(400, [`invalid role name "${input.role}"`]);
    if (!role.jwts.includes(input.jwt)) throw new HttpError(403, ["permission denied"]);
    const token = `hvs.${randomBytes(18).toString("base64url")}`;
    const accessor = randomBytes(12).toString("hex");
    this.#tokens.set(token, {
      policy: role.policy,
      expiresAt: this.#now() + role.ttl_seconds * 1000,
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

function addVersion(meta: KeyMetadata, data: Record<string, unknown>, now: string): number {
  meta.current_version += 1;
  if (meta.oldest_version === 0) meta.oldest_version = 1;
  meta.versions.set(meta.current_version, {
    data: structuredClone(data),
    created_time: now,
    deletion_time: "",
    destroyed: false,
  });
  meta.updated_time = now;
  return meta.current_version;
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

function ruleMatches(rule: string, path: string): boolean {
  const prefix = rule.endsWith("*");
  const pattern = (prefix ? rule.slice(0, -1) : rule)
    .split("+")
    .map((part) => part.replace(/[.*?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]+");
  return new RegExp(`^${pattern}${prefix ? "" : "$"}`).test(path);
}

function ok(data: unknown): { status: number; body: unknown } {
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

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status === 200 ? 204 : status).end();
    return;
  }
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

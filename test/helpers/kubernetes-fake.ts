/**
 * A fake Kubernetes API server for the kubernetes sink's tests: node:http (or https when given a
 * certificate), serving the few endpoints the sink uses, and ENFORCING their rules so that a sink
 * that gets them wrong fails:
 * - `Authorization: Bearer <token>` with a known token, else 401 `Unauthorized`; each token has an
 *   allow-list (RBAC-like rules) that both the secret endpoints (403 `Forbidden`) and
 *   SelfSubjectAccessReview answer from;
 * - Secrets in known namespaces only (404 for a namespace that does not exist);
 * - POST of an existing name: 409 `AlreadyExists`; PUT of a missing one: 404 `NotFound`;
 * - PUT with a stale `metadata.resourceVersion`: 409 `Conflict`. A PUT with none is also a 409 here:
 *   stricter than a real API server (which lets Secrets be updated unconditionally) so that a sink
 *   that forgets to send one is caught;
 * - names checked as DNS-1123 subdomains (422 `Invalid`), the body's name and namespace must match
 *   the URL (400 `BadRequest`), `data` values must be base64 (400), `type` is immutable (422);
 * - an `immutable: true` Secret keeps its `data` and stays immutable, as the API server validates a
 *   Secret update: an update that changes `data`, or that sets `immutable` back to
 *   false or drops it, is a 422 `Invalid` (`data: Forbidden: field is immutable when \`immutable\` is
 *   set`); labels and annotations may still change;
 * - with `pathPrefix` (a proxy in front of the API server, such as Rancher's
 *   `/k8s/clusters/<id>`), every endpoint lives under that prefix and nothing answers outside it;
 * - labels and annotations are stored exactly as sent: a PUT replaces them, so keeping someone
 *   else's labels is the client's job, and tests can see whether it does it;
 * - `?dryRun=All` on a POST or PUT runs every check above (authorisation, validation, conflicts) and
 *   answers as the write would, but stores nothing and uses no resourceVersion; any other `dryRun`
 *   value is a 400, as on a real API server. `refuseWrites` stands in for an admission webhook or a
 *   quota that refuses writes (dry runs included, as admission runs for them too).
 * Errors are `Status` objects: `{kind: "Status", apiVersion: "v1", status: "Failure", message,
 * reason, details, code}`. resourceVersion is one counter for the whole server, as in etcd.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";

/** One RBAC-like rule; `*` matches anything. Names empty or absent: every name. */
export interface AccessRule {
  verbs: string[];
  resources: string[];
  namespaces?: string[];
  names?: string[];
}

export interface KubernetesFakeOptions {
  /** Bearer tokens and what each may do (`"all"`: everything). */
  tokens: Record<string, AccessRule[] | "all">;
  /** Namespaces that exist. */
  namespaces: string[];
  /** Serve https with this key and certificate instead of http. */
  tls?: { key: string; cert: string };
  /** Serve every endpoint under this path (e.g. `/k8s/clusters/c-123`); 404 outside it. */
  pathPrefix?: string;
}

export interface SecretObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  type: string;
  data?: Record<string, string>;
  immutable?: boolean;
  [field: string]: unknown;
}

export interface KubernetesRequestLog {
  method: string;
  path: string;
  status: number;
  /** Set on `?dryRun=All` requests, which change nothing. */
  dry_run?: true;
}

/** Called before each request is handled; may change the store (a concurrent writer). */
export type RequestHook = (request: { method: string; path: string }) => void | Promise<void>;

class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export class KubernetesFake {
  readonly #server: Server;
  readonly #options: KubernetesFakeOptions;
  readonly #secrets = new Map<string, SecretObject>();
  #resourceVersion = 1000;
  readonly requests: KubernetesRequestLog[] = [];
  /** Runs before each request; tests set it to write concurrently at an exact moment. */
  onRequest: RequestHook | null = null;
  /** When set, every POST and PUT of a Secret is refused with this message (403, as admission does). */
  refuseWrites: string | null = null;
  url = "";

  private constructor(options: KubernetesFakeOptions) {
    this.#options = options;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    this.#server = options.tls
      ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler)
      : createServer(handler);
  }

  static async start(options: KubernetesFakeOptions): Promise<KubernetesFake> {
    const fake = new KubernetesFake(options);
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve));
    const port = (fake.#server.address() as AddressInfo).port;
    fake.url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** A stored Secret, copied; undefined when absent. */
  getSecret(namespace: string, name: string): SecretObject | undefined {
    const secret = this.#secrets.get(`${namespace}/${name}`);
    return secret ? structuredClone(secret) : undefined;
  }

  /**
   * A write by someone else (kubectl, another controller): creates or replaces the Secret with a new
   * resourceVersion, keeping uid and creationTimestamp. Data values are plain strings here.
   */
  writeDirect(
    namespace: string,
    name: string,
    change: {
      data?: Record<string, string>;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
      /** Marks the Secret immutable (what `kubectl apply` of a manifest with `immutable: true` does). */
      immutable?: boolean;
    },
  ): SecretObject {
    const existing = this.#secrets.get(`${namespace}/${name}`);
    const data: Record<string, string> = { ...existing?.data };
    for (const [key, value] of Object.entries(change.data ?? {}))
      data[key] = Buffer.from(value).toString("base64");
    const secret: SecretObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace,
        uid: existing?.metadata.uid ?? randomUUID(),
        resourceVersion: this.#nextVersion(),
        creationTimestamp: existing?.metadata.creationTimestamp ?? new Date().toISOString(),
        labels: { ...existing?.metadata.labels, ...change.labels },
        annotations: { ...existing?.metadata.annotations, ...change.annotations },
      },
      type: existing?.type ?? "Opaque",
      data,
      ...((change.immutable ?? existing?.immutable) !== undefined
        ? { immutable: change.immutable ?? existing?.immutable }
        : {}),
    };
    this.#secrets.set(`${namespace}/${name}`, secret);
    return structuredClone(secret);
  }

  #nextVersion(): string {
    this.#resourceVersion += 1;
    return String(this.#resourceVersion);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    let status = 500;
    try {
      const body = await readBody(req);
      if (this.onRequest) await this.onRequest({ method, path: url.pathname });
      const result = this.#route(method, url, req, body);
      status = result.status;
      send(res, result.status, result.body);
    } catch (error) {
      const failure =
        error instanceof StatusError
          ? error
          : new StatusError(500, "InternalError", String((error as Error).message));
      status = failure.code;
      send(res, failure.code, statusObject(failure));
    } finally {
      const dryRun = url.searchParams.has("dryRun") ? { dry_run: true as const } : {};
      this.requests.push({ method, path: url.pathname, status, ...dryRun });
    }
  }

  #route(method: string, url: URL, req: IncomingMessage, body: unknown): { status: number; body: unknown } {
    const prefix = (this.#options.pathPrefix ?? "").replace(/\/+$/, "");
    if (prefix !== "" && !url.pathname.startsWith(`${prefix}/`)) {
      throw new StatusError(404, "NotFound", "the server could not find the requested resource");
    }
    const path = url.pathname.slice(prefix.length);
    const rules = this.#authenticate(req);
    if (path === "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" && method === "POST") {
      return this.#review(rules, body);
    }
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(path);
    if (!match) throw new StatusError(404, "NotFound", "the server could not find the requested resource");
    const namespace = decodeURIComponent(match[1] as string);
    const name = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
    const verb = verbOf(method, name);
    if (!allowed(rules, verb, "secrets", namespace, name)) {
      throw new StatusError(
        403,
        "Forbidden",
        `secrets${name ? ` "${name}"` : ""} is forbidden: User "system:serviceaccount:test:cf-oauth-gitops" cannot ${verb} resource "secrets" in API group "" in the namespace "${namespace}"`,
        { name: name ?? "", kind: "secrets" },
      );
    }
    if (!this.#options.namespaces.includes(namespace)) {
      throw new StatusError(404, "NotFound", `namespaces "${namespace}" not found`, {
        name: namespace,
        kind: "namespaces",
      });
    }
    const dryRunValues = url.searchParams.getAll("dryRun");
    if (dryRunValues.some((value) => value !== "All")) {
      throw new StatusError(
        400,
        "BadRequest",
        `dryRun: Unsupported value: "${dryRunValues.join(",")}": supported values: "All"`,
      );
    }
    const dryRun = dryRunValues.length > 0;
    if ((verb === "create" || verb === "update") && this.refuseWrites !== null) {
      throw new StatusError(
        403,
        "Forbidden",
        `admission webhook "policy.example.com" denied the request: ${this.refuseWrites}`,
      );
    }
    switch (verb) {
      case "get":
        return { status: 200, body: this.#existing(namespace, name as string) };
      case "create":
        return { status: 201, body: this.#create(namespace, body, dryRun) };
      case "update":
        return { status: 200, body: this.#update(namespace, name as string, body, dryRun) };
      case "delete":
        this.#existing(namespace, name as string);
        this.#secrets.delete(`${namespace}/${name}`);
        return {
          status: 200,
          body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 200 },
        };
      default:
        throw new StatusError(
          405,
          "MethodNotAllowed",
          `the server does not allow this method on the requested resource`,
        );
    }
  }

  #authenticate(req: IncomingMessage): AccessRule[] | "all" {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const rules = token === undefined ? undefined : this.#options.tokens[token];
    if (rules === undefined) throw new StatusError(401, "Unauthorized", "Unauthorized");
    return rules;
  }

  #existing(namespace: string, name: string): SecretObject {
    const secret = this.#secrets.get(`${namespace}/${name}`);
    if (!secret)
      throw new StatusError(404, "NotFound", `secrets "${name}" not found`, { name, kind: "secrets" });
    return structuredClone(secret);
  }

  #create(namespace: string, body: unknown, dryRun: boolean): SecretObject {
    const input = checkSecretBody(body, namespace);
    const name = input.metadata.name;
    if (this.#secrets.has(`${namespace}/${name}`)) {
      throw new StatusError(409, "AlreadyExists", `secrets "${name}" already exists`, {
        name,
        kind: "secrets",
      });
    }
    const secret: SecretObject = {
      ...input.rest,
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        ...input.metadata.rest,
        name,
        namespace,
        uid: randomUUID(),
        resourceVersion: dryRun ? "" : this.#nextVersion(),
        creationTimestamp: new Date().toISOString(),
        ...(input.metadata.labels ? { labels: input.metadata.labels } : {}),
        ...(input.metadata.annotations ? { annotations: input.metadata.annotations } : {}),
      },
      type: input.type ?? "Opaque",
      data: input.data,
    };
    if (!dryRun) this.#secrets.set(`${namespace}/${name}`, secret);
    return structuredClone(secret);
  }

  #update(namespace: string, name: string, body: unknown, dryRun: boolean): SecretObject {
    const input = checkSecretBody(body, namespace);
    if (input.metadata.name !== name) {
      throw new StatusError(
        400,
        "BadRequest",
        `the name of the object (${input.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const current = this.#secrets.get(`${namespace}/${name}`);
    if (!current)
      throw new StatusError(404, "NotFound", `secrets "${name}" not found`, { name, kind: "secrets" });
    if (input.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new StatusError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, kind: "secrets" },
      );
    }
    const type = input.type ?? "Opaque";
    const invalid: string[] = [];
    if (type !== current.type) invalid.push(`type: Invalid value: "${type}": field is immutable`);
    if (current.immutable === true) {
      // Once immutable, `immutable` must stay true and `data` must not change.
      const forbidden = "Forbidden: field is immutable when `immutable` is set";
      if (input.rest["immutable"] !== true) invalid.push(`immutable: ${forbidden}`);
      if (!sameData(input.data, current.data ?? {})) invalid.push(`data: ${forbidden}`);
    }
    if (invalid.length > 0) {
      throw new StatusError(
        422,
        "Invalid",
        `Secret "${name}" is invalid: ${invalid.length === 1 ? invalid[0] : `[${invalid.join(", ")}]`}`,
        { name, kind: "Secret" },
      );
    }
    const secret: SecretObject = {
      ...input.rest,
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        ...input.metadata.rest,
        name,
        namespace,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        resourceVersion: dryRun ? current.metadata.resourceVersion : this.#nextVersion(),
        ...(input.metadata.labels ? { labels: input.metadata.labels } : {}),
        ...(input.metadata.annotations ? { annotations: input.metadata.annotations } : {}),
      },
      type,
      data: input.data,
    };
    if (!dryRun) this.#secrets.set(`${namespace}/${name}`, secret);
    return structuredClone(secret);
  }

  #review(rules: AccessRule[] | "all", body: unknown): { status: number; body: unknown } {
    const review = body as
      { kind?: unknown; spec?: { resourceAttributes?: Record<string, unknown> } } | undefined;
    const attributes = review?.spec?.resourceAttributes;
    if (review?.kind !== "SelfSubjectAccessReview" || !attributes) {
      throw new StatusError(
        400,
        "BadRequest",
        "expected a SelfSubjectAccessReview with spec.resourceAttributes",
      );
    }
    const text = (key: string) => (typeof attributes[key] === "string" ? (attributes[key] as string) : "");
    const verdict = allowed(
      rules,
      text("verb"),
      text("resource"),
      text("namespace"),
      text("name") || undefined,
    );
    return {
      status: 201,
      body: {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        metadata: { creationTimestamp: null },
        spec: review.spec,
        status: verdict ? { allowed: true, reason: "allowed by fake allow-list" } : { allowed: false },
      },
    };
  }
}

function sameData(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

function verbOf(method: string, name: string | undefined): string {
  if (method === "GET") return name ? "get" : "list";
  if (method === "POST" && !name) return "create";
  if (method === "PUT" && name) return "update";
  if (method === "DELETE" && name) return "delete";
  return "unsupported";
}

function allowed(
  rules: AccessRule[] | "all",
  verb: string,
  resource: string,
  namespace: string,
  name: string | undefined,
): boolean {
  if (rules === "all") return true;
  const has = (list: string[] | undefined, value: string | undefined) =>
    list === undefined ||
    list.length === 0 ||
    list.includes("*") ||
    (value !== undefined && list.includes(value));
  return rules.some(
    (rule) =>
      has(rule.verbs, verb) &&
      has(rule.resources, resource) &&
      has(rule.namespaces, namespace) &&
      // A rule limited to names cannot allow create or list (as in RBAC).
      (rule.names === undefined || rule.names.length === 0 || (name !== undefined && has(rule.names, name))),
  );
}

interface CheckedSecret {
  metadata: {
    name: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    rest: Record<string, unknown>;
  };
  type?: string;
  data: Record<string, string>;
  rest: Record<string, unknown>;
}

/** Validates a Secret body the way the API server's decoding and validation would. */
function checkSecretBody(body: unknown, namespace: string): CheckedSecret {
  if (typeof body !== "object" || body === null)
    throw new StatusError(400, "BadRequest", "the body of the request was not a Secret");
  const input = body as Record<string, unknown>;
  if (input["kind"] !== undefined && input["kind"] !== "Secret") {
    throw new StatusError(
      400,
      "BadRequest",
      `the kind of the object (${String(input["kind"])}) is not Secret`,
    );
  }
  if (input["apiVersion"] !== undefined && input["apiVersion"] !== "v1") {
    throw new StatusError(400, "BadRequest", `the apiVersion ${String(input["apiVersion"])} is not v1`);
  }
  const metadata = (input["metadata"] ?? {}) as Record<string, unknown>;
  const name = metadata["name"];
  if (typeof name !== "string" || name === "") {
    throw new StatusError(
      422,
      "Invalid",
      `Secret "" is invalid: metadata.name: Required value: name is required`,
    );
  }
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    throw new StatusError(
      422,
      "Invalid",
      `Secret "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      { name, kind: "Secret" },
    );
  }
  if (metadata["namespace"] !== undefined && metadata["namespace"] !== namespace) {
    throw new StatusError(
      400,
      "BadRequest",
      "the namespace of the provided object does not match the namespace sent on the request",
    );
  }
  const labels = stringMap(metadata["labels"], "metadata.labels", name);
  const annotations = stringMap(metadata["annotations"], "metadata.annotations", name);
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries((input["data"] ?? {}) as Record<string, unknown>)) {
    if (typeof value !== "string" || !BASE64.test(value)) {
      throw new StatusError(
        400,
        "BadRequest",
        `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0 (key ${key})`,
      );
    }
    data[key] = value;
  }
  for (const [key, value] of Object.entries((input["stringData"] ?? {}) as Record<string, unknown>)) {
    if (typeof value !== "string")
      throw new StatusError(400, "BadRequest", `stringData.${key} is not a string`);
    data[key] = Buffer.from(value, "utf8").toString("base64");
  }
  for (const key of Object.keys(data)) {
    if (!DATA_KEY.test(key)) {
      throw new StatusError(
        422,
        "Invalid",
        `Secret "${name}" is invalid: data[${key}]: Invalid value: "${key}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`,
      );
    }
  }
  const type = input["type"];
  if (type !== undefined && typeof type !== "string")
    throw new StatusError(400, "BadRequest", "type is not a string");
  const immutable = input["immutable"];
  if (immutable !== undefined && immutable !== null && typeof immutable !== "boolean") {
    throw new StatusError(
      400,
      "BadRequest",
      `Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal ${typeof immutable} into Go struct field Secret.immutable of type bool`,
    );
  }
  const {
    name: _n,
    namespace: _ns,
    resourceVersion,
    labels: _l,
    annotations: _a,
    uid: _u,
    creationTimestamp: _c,
    ...metaRest
  } = metadata;
  const { metadata: _m, data: _d, stringData: _s, type: _t, apiVersion: _v, kind: _k, ...rest } = input;
  return {
    metadata: {
      name,
      ...(typeof resourceVersion === "string" && resourceVersion !== "" ? { resourceVersion } : {}),
      ...(labels ? { labels } : {}),
      ...(annotations ? { annotations } : {}),
      rest: metaRest,
    },
    ...(typeof type === "string" ? { type } : {}),
    data,
    rest,
  };
}

function stringMap(value: unknown, field: string, name: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (
    typeof value !== "object" ||
    Array.isArray(value) ||
    !Object.values(value).every((v) => typeof v === "string")
  ) {
    throw new StatusError(400, "BadRequest", `Secret "${name}": ${field} must map strings to strings`);
  }
  return { ...(value as Record<string, string>) };
}

function statusObject(error: StatusError): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: error.message,
    reason: error.reason,
    ...(error.details ? { details: error.details } : {}),
    code: error.code,
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
    throw new StatusError(400, "BadRequest", "the body of the request is not valid JSON");
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Agent, type Dispatcher } from "../undici.js";
import { SinkError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { requestJson, type JsonResponse } from "./http.js";
import { describeKubernetesRecord, kubernetesName } from "./naming.js";
import { addressLabel, revealRecord, storedRecord, type PlainRecord } from "./record.js";
import { excerpt } from "./redact.js";
import type { SecretRecord, SecretSink, SinkAddress, StoredRecord } from "./types.js";

/** Where Kubernetes mounts a pod's service-account credentials. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The label that marks a Secret as this tool's; Secrets without it are never written. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "cf-oauth-gitops";

/** Annotations on every Secret the sink writes (safe to show: no secret). */
export const ANNOTATIONS = {
  clientId: "cf-oauth-gitops/client-id",
  accountId: "cf-oauth-gitops/account-id",
  issuedAt: "cf-oauth-gitops/issued-at",
  key: "cf-oauth-gitops/key",
} as const;

const DATA_KEYS: ReadonlyArray<keyof PlainRecord> = [
  "client_id",
  "client_secret",
  "account_id",
  "client_name",
  "issued_at",
];

export interface KubernetesSinkOptions {
  /** Namespace of the Secrets. */
  namespace: string;
  /** Secret name = DNS-1123 form of `<name_prefix><key>` (default prefix: none). */
  name_prefix?: string;
  /** API server URL; default `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`. */
  api_server?: string;
  /** Bearer token file (read on every request: kubelet rotates projected tokens). */
  token_file?: string;
  /** CA bundle that signs the API server's certificate; required for https. */
  ca_file?: string;
  env?: NodeJS.ProcessEnv;
  name?: string;
  logger?: Logger;
}

/** The parts of a v1 Secret the sink reads and writes; everything else is carried through untouched. */
interface SecretObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  type?: string;
  data?: Record<string, string>;
  immutable?: boolean | null;
  [field: string]: unknown;
}

/**
 * An Opaque Secret per client, `<name_prefix><key>` in one namespace, through the API server with the
 * pod's service account (in-cluster defaults, every path overridable).
 *
 * Data keys `client_id`, `client_secret`, `account_id`, `client_name`, `issued_at` (base64, as the
 * API wants); label `app.kubernetes.io/managed-by: cf-oauth-gitops`; annotations with the client
 * id, account id, issue time and the original key. Other labels, annotations and data keys that
 * someone added are kept.
 *
 * Create-or-replace with optimistic concurrency: GET, then POST when absent or PUT carrying the
 * `metadata.resourceVersion` that was read. A 409 (someone wrote in between) is retried once after
 * a fresh GET; with an `expectedVersion` from the caller there is no retry: a Secret that changed
 * since the caller's read fails with `E_SINK_CONFLICT` instead of being clobbered. A Secret of the
 * same name without the managed-by label is never touched (`E_SINK_UNMANAGED`), nor one made for
 * another key or account (`E_SINK_COLLISION`). An `immutable: true` Secret is refused with
 * `E_SINK_IMMUTABLE` before anything is sent: the API server rejects every change to its data (422
 * `Invalid`) and never lets it become mutable again, so only deleting it can make room.
 *
 * Preflight: SelfSubjectAccessReviews for get, create and update, a GET of the exact Secret (its
 * ownership checked), then the write itself as a server-side dry run (`?dryRun=All`) with a probe
 * record: nothing is stored, yet the API server validates the name and runs admission and quota.
 *
 * TLS: an https API server needs `ca_file` (the in-cluster `ca.crt` by default); plain http is
 * accepted only because the tests' fake API server speaks it. An `api_server` with a path (a proxy
 * such as Rancher's `https://rancher.example.com/k8s/clusters/c-m-abc`) keeps that path in front
 * of every API path.
 */
export class KubernetesSink implements SecretSink {
  readonly type = "kubernetes";
  readonly #namespace: string;
  readonly #prefix: string;
  readonly #server: URL;
  readonly #tokenFile: string;
  readonly #caFile: string;
  readonly #logger: Logger;
  #dispatcher: Promise<Dispatcher | undefined> | null = null;
  #agent: Agent | null = null;

  constructor(options: KubernetesSinkOptions) {
    const env = options.env ?? process.env;
    this.#namespace = options.namespace;
    this.#prefix = options.name_prefix ?? "";
    this.#server = apiServerUrl(options.api_server, env);
    this.#tokenFile = options.token_file ?? `${SERVICE_ACCOUNT_DIR}/token`;
    this.#caFile = options.ca_file ?? `${SERVICE_ACCOUNT_DIR}/ca.crt`;
    this.#logger = (options.logger ?? silentLogger).child({
      component: "sink",
      sink: "kubernetes",
      sink_name: options.name,
    });
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(this.#namespace)) {
      throw new SinkError("E_SINK_CONFIG", `sink=kubernetes: '${this.#namespace}' is not a namespace name`, {
        disposition: "terminal",
        context: { sink: "kubernetes" },
      });
    }
  }

  /** The Secret's name for an address. */
  nameOf(address: SinkAddress): string {
    return kubernetesName(this.#prefix, address.key);
  }

  describe(address: SinkAddress): string {
    return describeKubernetesRecord({ namespace: this.#namespace, name_prefix: this.#prefix }, address);
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    const name = this.nameOf(address);
    const denied: string[] = [];
    for (const [verb, withName] of [
      ["get", true],
      ["create", false],
      ["update", true],
    ] as const) {
      if (!(await this.#allowed(verb, withName ? name : undefined))) denied.push(verb);
    }
    if (denied.length > 0) {
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=kubernetes: the service account may not ${denied.join(", ")} secrets in namespace ${this.#namespace}`,
        {
          disposition: "terminal",
          context: { sink: "kubernetes", namespace: this.#namespace, name, denied },
        },
      );
    }
    const current = await this.#get(name, "check");
    if (current) this.#checkOwnership(current, address);
    if (current) this.#checkMutable(current);
    // A server-side dry run of the very write (`dryRun=All`: authorised, validated and admitted, never
    // stored) with a probe record, so a name, an admission policy or a quota that refuses it is
    // found before anything is minted.
    const probe: PlainRecord = {
      client_id: "",
      client_secret: `probe-${randomBytes(8).toString("hex")}`,
      account_id: address.account_id,
      client_name: "",
      issued_at: new Date(0).toISOString(),
    };
    const response = current
      ? await this.#send(
          "PUT",
          `${this.#collection()}/${name}?dryRun=All`,
          this.#updated(current, address, probe),
        )
      : await this.#send("POST", `${this.#collection()}?dryRun=All`, this.#created(name, address, probe));
    if (response.status !== 200 && response.status !== 201) {
      throw kubernetesError("check", current ? "PUT" : "POST", name, response, [probe.client_secret]);
    }
  }

  async write(
    address: SinkAddress,
    record: SecretRecord,
    expectedVersion?: string | null,
  ): Promise<{ version: string | null }> {
    const name = this.nameOf(address);
    const plain = revealRecord(record);
    for (let attempt = 1; ; attempt += 1) {
      const current = await this.#get(name, "write");
      this.#checkExpected(name, current, expectedVersion);
      if (current) this.#checkOwnership(current, address);
      if (current) this.#checkMutable(current);
      const response = current
        ? await this.#send("PUT", `${this.#collection()}/${name}`, this.#updated(current, address, plain))
        : await this.#send("POST", this.#collection(), this.#created(name, address, plain));
      if (response.status === 200 || response.status === 201) {
        const version = (response.body as SecretObject | undefined)?.metadata?.resourceVersion ?? null;
        this.#logger.debug({ secret: `${this.#namespace}/${name}`, version }, "secret written");
        return { version };
      }
      if (response.status === 409 && expectedVersion === undefined && attempt === 1) {
        this.#logger.info(
          { secret: `${this.#namespace}/${name}` },
          "secret changed while writing; reading it again",
        );
        continue;
      }
      throw kubernetesError("write", current ? "PUT" : "POST", name, response, [plain.client_secret]);
    }
  }

  async read(address: SinkAddress): Promise<StoredRecord | null> {
    const name = this.nameOf(address);
    const current = await this.#get(name, "read");
    if (!current) return null;
    this.#checkOwnership(current, address);
    const plain: Partial<PlainRecord> = {};
    for (const key of DATA_KEYS) {
      const value = current.data?.[key];
      if (typeof value !== "string" || !isBase64(value)) {
        throw new SinkError(
          "E_SINK_CORRUPT",
          `sink=kubernetes: ${this.describe(address)} has no valid '${key}'`,
          {
            context: { sink: "kubernetes", namespace: this.#namespace, name },
          },
        );
      }
      plain[key] = Buffer.from(value, "base64").toString("utf8");
    }
    return storedRecord(plain as PlainRecord, current.metadata.resourceVersion ?? null);
  }

  /** Closes the HTTPS connection pool (the daemon calls this on shutdown; tests after each suite). */
  async close(): Promise<void> {
    await this.#agent?.close();
  }

  #collection(): string {
    return `/api/v1/namespaces/${this.#namespace}/secrets`;
  }

  #checkExpected(name: string, current: SecretObject | null, expected: string | null | undefined): void {
    if (expected === undefined) return;
    const found = current?.metadata.resourceVersion ?? null;
    if (current === null && expected === null) return;
    if (current !== null && found === expected) return;
    throw new SinkError(
      "E_SINK_CONFLICT",
      `sink=kubernetes: secret ${this.#namespace}/${name} changed since it was read (expected resourceVersion ${expected ?? "none"}, found ${current ? found : "none"})`,
      {
        context: {
          sink: "kubernetes",
          namespace: this.#namespace,
          name,
          expected_version: expected,
          current_version: found,
        },
      },
    );
  }

  #checkOwnership(secret: SecretObject, address: SinkAddress): void {
    const name = secret.metadata.name ?? this.nameOf(address);
    if (secret.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
      throw new SinkError(
        "E_SINK_UNMANAGED",
        `sink=kubernetes: secret ${this.#namespace}/${name} exists but is not labelled ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}; refusing to overwrite it (rename it, or label it to hand it over)`,
        { disposition: "terminal", context: { sink: "kubernetes", namespace: this.#namespace, name } },
      );
    }
    const annotations = secret.metadata.annotations ?? {};
    const key = annotations[ANNOTATIONS.key];
    const account = annotations[ANNOTATIONS.accountId];
    if (
      (key !== undefined && key !== address.key) ||
      (account !== undefined && account !== address.account_id)
    ) {
      throw new SinkError(
        "E_SINK_COLLISION",
        `sink=kubernetes: secret ${this.#namespace}/${name} holds key '${key}' of account ${account}, not ${addressLabel(address)}; give one of them another key or name_prefix`,
        { disposition: "terminal", context: { sink: "kubernetes", namespace: this.#namespace, name } },
      );
    }
  }

  /** Refuses an immutable Secret: its data can never change (the API server answers 422). */
  #checkMutable(secret: SecretObject): void {
    if (secret.immutable !== true) return;
    const name = secret.metadata.name ?? "";
    throw new SinkError(
      "E_SINK_IMMUTABLE",
      `sink=kubernetes: secret ${this.#namespace}/${name} is immutable (immutable: true), so its data can never be replaced; delete it (kubectl -n ${this.#namespace} delete secret ${name}) to let a new one be written`,
      { disposition: "terminal", context: { sink: "kubernetes", namespace: this.#namespace, name } },
    );
  }

  #ourAnnotations(address: SinkAddress, plain: PlainRecord): Record<string, string> {
    return {
      [ANNOTATIONS.clientId]: plain.client_id,
      [ANNOTATIONS.accountId]: plain.account_id,
      [ANNOTATIONS.issuedAt]: plain.issued_at,
      [ANNOTATIONS.key]: address.key,
    };
  }

  #created(name: string, address: SinkAddress, plain: PlainRecord): SecretObject {
    return {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace: this.#namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: this.#ourAnnotations(address, plain),
      },
      type: "Opaque",
      data: encodeData(plain),
    };
  }

  #updated(current: SecretObject, address: SinkAddress, plain: PlainRecord): SecretObject {
    return {
      ...current,
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        ...current.metadata,
        labels: { ...current.metadata.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: { ...current.metadata.annotations, ...this.#ourAnnotations(address, plain) },
      },
      type: current.type ?? "Opaque",
      data: { ...current.data, ...encodeData(plain) },
    };
  }

  async #get(name: string, operation: Operation): Promise<SecretObject | null> {
    const response = await this.#send("GET", `${this.#collection()}/${name}`);
    if (response.status === 404) return null;
    if (response.status !== 200) throw kubernetesError(operation, "GET", name, response, []);
    const body = response.body as SecretObject | undefined;
    if (!body || typeof body.metadata !== "object" || body.metadata === null) {
      throw new SinkError(
        "E_SINK_CORRUPT",
        `sink=kubernetes: GET secret ${this.#namespace}/${name} returned no object`,
        {
          context: { sink: "kubernetes", namespace: this.#namespace, name },
        },
      );
    }
    return body;
  }

  async #allowed(verb: string, name: string | undefined): Promise<boolean> {
    const review = {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      spec: {
        resourceAttributes: {
          namespace: this.#namespace,
          verb,
          group: "",
          resource: "secrets",
          ...(name ? { name } : {}),
        },
      },
    };
    const response = await this.#send(
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      review,
    );
    if (response.status !== 200 && response.status !== 201) {
      throw kubernetesError("check", "POST", "selfsubjectaccessreviews", response, []);
    }
    return (response.body as { status?: { allowed?: unknown } } | undefined)?.status?.allowed === true;
  }

  async #send(method: "GET" | "POST" | "PUT", path: string, body?: unknown): Promise<JsonResponse> {
    const token = await this.#token();
    return requestJson("kubernetes", apiUrl(this.#server, path), {
      method,
      headers: { authorization: `Bearer ${token}` },
      body,
      dispatcher: await this.#tls(),
    });
  }

  async #token(): Promise<string> {
    let token: string;
    try {
      token = (await readFile(this.#tokenFile, "utf8")).trim();
    } catch (error) {
      throw new SinkError(
        "E_SINK_AUTH",
        `sink=kubernetes: cannot read token_file ${this.#tokenFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
        { disposition: "terminal", context: { sink: "kubernetes" } },
      );
    }
    if (token === "") {
      throw new SinkError("E_SINK_AUTH", `sink=kubernetes: token_file ${this.#tokenFile} is empty`, {
        disposition: "terminal",
        context: { sink: "kubernetes" },
      });
    }
    return token;
  }

  /** An undici Agent trusting the cluster CA for https; none (the default dispatcher) for http. */
  #tls(): Promise<Dispatcher | undefined> {
    this.#dispatcher ??= (async () => {
      if (this.#server.protocol !== "https:") return undefined;
      let ca: string;
      try {
        ca = await readFile(this.#caFile, "utf8");
      } catch (error) {
        this.#dispatcher = null;
        throw new SinkError(
          "E_SINK_CONFIG",
          `sink=kubernetes: the API server is https and ca_file ${this.#caFile} cannot be read: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
          { disposition: "terminal", context: { sink: "kubernetes" } },
        );
      }
      this.#agent = new Agent({ connect: { ca } });
      return this.#agent;
    })();
    return this.#dispatcher;
  }
}

type Operation = "read" | "write" | "check";

function apiServerUrl(option: string | undefined, env: NodeJS.ProcessEnv): URL {
  let raw = option;
  if (raw === undefined) {
    const host = env["KUBERNETES_SERVICE_HOST"];
    const port = env["KUBERNETES_SERVICE_PORT"] ?? "443";
    if (!host) {
      throw new SinkError(
        "E_SINK_CONFIG",
        "sink=kubernetes: no api_server configured and KUBERNETES_SERVICE_HOST is not set (not running in a pod?)",
        { disposition: "terminal", context: { sink: "kubernetes" } },
      );
    }
    raw = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  }
  try {
    const url = new URL(raw);
    if (url.protocol === "https:" || url.protocol === "http:") return url;
  } catch {
    // reported below
  }
  throw new SinkError("E_SINK_CONFIG", `sink=kubernetes: api_server '${raw}' is not an http(s) URL`, {
    disposition: "terminal",
    context: { sink: "kubernetes" },
  });
}

/**
 * `path` (absolute, with any query) under the API server URL, keeping the server URL's own path:
 * `new URL("/api/v1/...", "https://host/k8s/clusters/c-1")` would drop `/k8s/clusters/c-1`.
 */
function apiUrl(server: URL, path: string): URL {
  const url = new URL(server.href);
  const [pathname = "", query] = path.split("?", 2);
  url.pathname = `${server.pathname.replace(/\/+$/, "")}${pathname}`;
  url.search = query === undefined ? "" : `?${query}`;
  return url;
}

function encodeData(plain: PlainRecord): Record<string, string> {
  const data: Record<string, string> = {};
  for (const key of DATA_KEYS) data[key] = Buffer.from(plain[key], "utf8").toString("base64");
  return data;
}

function isBase64(value: string): boolean {
  return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value);
}

/**
 * A failed API call as a SinkError. The API server answers with a `Status` object
 * (`{kind: "Status", reason, message, code}`); its reason and message are quoted, scrubbed.
 */
function kubernetesError(
  operation: Operation,
  method: string,
  name: string,
  response: JsonResponse,
  secrets: readonly string[],
): SinkError {
  const status = response.body as { reason?: unknown; message?: unknown } | undefined;
  const reason = typeof status?.reason === "string" ? status.reason : "";
  const detail = excerpt(typeof status?.message === "string" ? status.message : "", secrets);
  const message = `sink=kubernetes: ${method} secret ${name} failed with HTTP ${response.status}${reason ? ` ${reason}` : ""}${detail ? `: ${detail}` : ""}`;
  const context = { sink: "kubernetes", name, status: response.status, reason };
  if (response.status === 409) return new SinkError("E_SINK_CONFLICT", message, { context });
  const code =
    operation === "check"
      ? "E_SINK_NOT_WRITABLE"
      : response.status === 401 || response.status === 403
        ? "E_SINK_AUTH"
        : operation === "read"
          ? "E_SINK_READ"
          : "E_SINK_WRITE";
  const transient = response.status >= 500 || response.status === 429;
  return new SinkError(code, message, { disposition: transient ? "transient" : "terminal", context });
}

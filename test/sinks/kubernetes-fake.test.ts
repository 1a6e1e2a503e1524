/**
 * The Kubernetes fake enforces the API server rules the sink relies on; these tests pin them with raw
 * HTTP so that a lenient fake cannot make a wrong sink pass.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesFake } from "../helpers/kubernetes-fake.js";

let fake: KubernetesFake;
const SECRETS = "/api/v1/namespaces/apps/secrets";

beforeAll(async () => {
  fake = await KubernetesFake.start({
    tokens: {
      admin: "all",
      getter: [{ verbs: ["get"], resources: ["secrets"], namespaces: ["apps"] }],
      named: [{ verbs: ["get", "update"], resources: ["secrets"], names: ["only-this"] }],
    },
    namespaces: ["apps"],
  });
});

afterAll(async () => {
  await fake.close();
});

async function call(method: string, path: string, body?: unknown, token: string | null = "admin") {
  const response = await fetch(`${fake.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw protocol checks
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

function secret(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name },
    type: "Opaque",
    data: { a: "YQ==" },
    ...extra,
  };
}

describe("kubernetes fake", () => {
  it("requires a known bearer token: 401 Unauthorized", async () => {
    expect(await call("GET", `${SECRETS}/x`, undefined, null)).toEqual({
      status: 401,
      body: {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "Unauthorized",
        reason: "Unauthorized",
        code: 401,
      },
    });
  });

  it("creates once: a second POST of the name is 409 AlreadyExists", async () => {
    const created = await call("POST", SECRETS, secret("dup"));
    expect(created.status).toBe(201);
    expect(created.body.metadata).toMatchObject({ name: "dup", namespace: "apps" });
    expect(created.body.metadata.resourceVersion).toMatch(/^\d+$/);
    const again = await call("POST", SECRETS, secret("dup"));
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      kind: "Status",
      reason: "AlreadyExists",
      code: 409,
      details: { name: "dup", kind: "secrets" },
    });
  });

  it("dryRun=All checks a write as a real one and stores nothing; another dryRun value is 400", async () => {
    const dry = await call("POST", `${SECRETS}?dryRun=All`, secret("dry-run"));
    expect(dry.status).toBe(201);
    expect(dry.body.metadata).toMatchObject({ name: "dry-run", resourceVersion: "" });
    expect(fake.getSecret("apps", "dry-run")).toBeUndefined();
    expect((await call("POST", `${SECRETS}?dryRun=All`, secret("Not_A_Name"))).status).toBe(422);
    expect((await call("POST", `${SECRETS}?dryRun=All`, secret("x"), "getter")).status).toBe(403);
    expect((await call("POST", `${SECRETS}?dryRun=yes`, secret("dry-run"))).body).toMatchObject({
      reason: "BadRequest",
      code: 400,
    });
    const created = (await call("POST", SECRETS, secret("dry-put"))).body;
    const put = await call(
      "PUT",
      `${SECRETS}/dry-put?dryRun=All`,
      secret("dry-put", { metadata: { name: "dry-put", resourceVersion: created.metadata.resourceVersion } }),
    );
    expect(put.status).toBe(200);
    expect(fake.getSecret("apps", "dry-put")?.metadata.resourceVersion).toBe(
      created.metadata.resourceVersion,
    );
    const stale = await call(
      "PUT",
      `${SECRETS}/dry-put?dryRun=All`,
      secret("dry-put", { metadata: { name: "dry-put", resourceVersion: "1" } }),
    );
    expect(stale.status).toBe(409);
  });

  it("updates only with the current resourceVersion: stale or missing is 409 Conflict", async () => {
    const created = (await call("POST", SECRETS, secret("rv"))).body;
    const rv = created.metadata.resourceVersion as string;
    const stale = await call(
      "PUT",
      `${SECRETS}/rv`,
      secret("rv", { metadata: { name: "rv", resourceVersion: "1" } }),
    );
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: "Status", status: "Failure", reason: "Conflict", code: 409 });
    expect(stale.body.message).toContain("the object has been modified");
    expect((await call("PUT", `${SECRETS}/rv`, secret("rv"))).body.reason).toBe("Conflict");
    const ok = await call(
      "PUT",
      `${SECRETS}/rv`,
      secret("rv", { metadata: { name: "rv", resourceVersion: rv, labels: { x: "y" } } }),
    );
    expect(ok.status).toBe(200);
    expect(ok.body.metadata.resourceVersion).not.toBe(rv);
    expect(ok.body.metadata.uid).toBe(created.metadata.uid);
    expect(ok.body.metadata.labels).toEqual({ x: "y" });
  });

  it("validates names, base64 data, the URL name and the immutable type", async () => {
    expect((await call("POST", SECRETS, secret("Not_Valid"))).body).toMatchObject({
      reason: "Invalid",
      code: 422,
    });
    expect((await call("POST", SECRETS, secret("b64", { data: { a: "not base64!" } }))).body).toMatchObject({
      reason: "BadRequest",
      code: 400,
    });
    const created = (await call("POST", SECRETS, secret("typed"))).body;
    const rv = created.metadata.resourceVersion as string;
    expect(
      (
        await call(
          "PUT",
          `${SECRETS}/typed`,
          secret("other", { metadata: { name: "other", resourceVersion: rv } }),
        )
      ).status,
    ).toBe(400);
    const retyped = secret("typed", {
      metadata: { name: "typed", resourceVersion: rv },
      type: "kubernetes.io/tls",
    });
    expect((await call("PUT", `${SECRETS}/typed`, retyped)).body).toMatchObject({
      reason: "Invalid",
      code: 422,
    });
    expect(
      (
        await call(
          "PUT",
          `${SECRETS}/missing`,
          secret("missing", { metadata: { name: "missing", resourceVersion: "5" } }),
        )
      ).status,
    ).toBe(404);
    expect((await call("POST", "/api/v1/namespaces/nowhere/secrets", secret("x"))).body).toMatchObject({
      reason: "NotFound",
    });
  });

  it("enforces the allow-list and answers SelfSubjectAccessReviews from it", async () => {
    expect((await call("POST", SECRETS, secret("forbidden"), "getter")).body).toMatchObject({
      reason: "Forbidden",
      code: 403,
    });
    const review = (verb: string, name?: string, token = "getter") =>
      call(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SelfSubjectAccessReview",
          spec: {
            resourceAttributes: {
              namespace: "apps",
              verb,
              group: "",
              resource: "secrets",
              ...(name ? { name } : {}),
            },
          },
        },
        token,
      );
    const allowed = await review("get", "x");
    expect(allowed.status).toBe(201);
    expect(allowed.body).toMatchObject({ kind: "SelfSubjectAccessReview", status: { allowed: true } });
    expect((await review("create")).body.status.allowed).toBe(false);
    // Rules limited to names never allow create (as in RBAC).
    expect((await review("update", "only-this", "named")).body.status.allowed).toBe(true);
    expect((await review("update", "another", "named")).body.status.allowed).toBe(false);
    expect((await review("create", undefined, "named")).body.status.allowed).toBe(false);
  });

  it("keeps an immutable Secret's data and immutability (422 Invalid), while its metadata may change", async () => {
    const created = (await call("POST", SECRETS, secret("frozen", { immutable: true }))).body;
    expect(created.immutable).toBe(true);
    const put = (rv: string, extra: Record<string, unknown>) =>
      call(
        "PUT",
        `${SECRETS}/frozen`,
        secret("frozen", { metadata: { name: "frozen", resourceVersion: rv }, ...extra }),
      );
    const rv = created.metadata.resourceVersion as string;
    const changed = await put(rv, { immutable: true, data: { a: "Yg==" } });
    expect(changed).toEqual({
      status: 422,
      body: {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: 'Secret "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set',
        reason: "Invalid",
        details: { name: "frozen", kind: "Secret" },
        code: 422,
      },
    });
    expect((await put(rv, { immutable: false })).body.message).toBe(
      'Secret "frozen" is invalid: immutable: Forbidden: field is immutable when `immutable` is set',
    );
    // Leaving the field out (as a client that does not know it would) also tries to make it mutable.
    expect((await put(rv, {})).status).toBe(422);
    expect((await put(rv, { data: { a: "Yg==" } })).body.message).toContain("[immutable: Forbidden");
    expect(fake.getSecret("apps", "frozen")?.data).toEqual({ a: "YQ==" });
    const relabelled = await put(rv, {
      immutable: true,
      metadata: { name: "frozen", resourceVersion: rv, labels: { x: "y" } },
    });
    expect(relabelled.status).toBe(200);
    expect(relabelled.body.metadata.labels).toEqual({ x: "y" });
    // A mutable Secret may become immutable.
    const open = (await call("POST", SECRETS, secret("freezable"))).body;
    const frozen = await call(
      "PUT",
      `${SECRETS}/freezable`,
      secret("freezable", {
        metadata: { name: "freezable", resourceVersion: open.metadata.resourceVersion },
        immutable: true,
      }),
    );
    expect(frozen.body.immutable).toBe(true);
  });

  it("serves under a path prefix only, the way a proxy in front of the API server does", async () => {
    const proxied = await KubernetesFake.start({
      tokens: { admin: "all" },
      namespaces: ["apps"],
      pathPrefix: "/k8s/clusters/c-123",
    });
    try {
      const at = (path: string) =>
        fetch(`${proxied.url}${path}`, { headers: { authorization: "Bearer admin" } }).then((r) => r.status);
      proxied.writeDirect("apps", "here", { data: { a: "1" } });
      expect(await at(`/k8s/clusters/c-123${SECRETS}/here`)).toBe(200);
      expect(await at(`${SECRETS}/here`)).toBe(404);
    } finally {
      await proxied.close();
    }
  });
});

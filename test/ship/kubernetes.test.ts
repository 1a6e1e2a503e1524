import { execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import { ACCOUNT_A, startTestEmulator } from "../helpers/emulator.js";
import { type AccessRule, KubernetesFake } from "../helpers/kubernetes-fake.js";
import { liveByName, type LogLine, ROOT, startDaemon } from "../daemon/support.js";

/**
 * The kustomize base (deploy/kubernetes) and the example overlay (deploy/overlays/example) render
 * with `kubectl kustomize` (kubectl ships on the project's machines) and every document parses. The
 * checks are the properties the manifests exist for: one replica replaced (never two reconcilers),
 * least privilege, a non-root read-only container, readiness that survives a failed run, and a
 * mounted config in which the daemon finds the files its config names. For that last one the
 * rendered ConfigMap is laid out as the kubelet lays out a ConfigMap volume, and the daemon runs
 * against it as a real process.
 */

type Doc = { kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

interface KeyToPath {
  key: string;
  path: string;
}
interface Container {
  args: string[];
  envFrom: { secretRef: { name: string } }[];
  securityContext: { readOnlyRootFilesystem: boolean; capabilities: { drop: string[] } };
  livenessProbe: { httpGet: { path: string } };
  readinessProbe: { httpGet: { path: string } };
  resources: { requests: { memory: string }; limits: { memory: string } };
  ports: { name: string; containerPort: number }[];
  volumeMounts: { name: string; mountPath: string }[];
}
interface Deployment {
  spec: {
    replicas: number;
    strategy: { type: string };
    template: {
      spec: {
        serviceAccountName: string;
        securityContext: { runAsNonRoot: boolean; runAsUser: number };
        containers: Container[];
        volumes: { name: string; configMap?: { name: string; items?: KeyToPath[] } }[];
      };
    };
  };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Renders a kustomization directory (relative to `root`). */
function render(dir: string, root = ROOT): Doc[] {
  const text = execFileSync("kubectl", ["kustomize", join(root, dir)], { encoding: "utf8" });
  return parseAllDocuments(text).map((doc) => {
    expect(doc.errors).toEqual([]);
    return doc.toJS() as Doc;
  });
}

/**
 * A copy of deploy/ with the example overlay's git-ignored `credentials.env` written (canary
 * values), as a user makes it from credentials.env.example, so the overlay renders.
 */
const workRoot = await mkdtemp(join(tmpdir(), "cf-oauth-gitops-k8s-"));
afterAll(() => rm(workRoot, { recursive: true, force: true }));
await cp(join(ROOT, "deploy"), join(workRoot, "deploy"), { recursive: true });
const CREDENTIALS = {
  CLOUDFLARE_API_TOKEN: "canary-cf-token-5d1e",
  WEBHOOK_SECRET: "canary-webhook-secret-8f03a1",
};
await writeFile(
  join(workRoot, "deploy/overlays/example/credentials.env"),
  Object.entries(CREDENTIALS)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n") + "\n",
);

const base = render("deploy/kubernetes");
const example = render("deploy/overlays/example", workRoot);
const byKind = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind);
const one = <T>(docs: Doc[], kind: string) => {
  const found = byKind(docs, kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as unknown as T;
};
const podOf = (docs: Doc[]) => one<Deployment>(docs, "Deployment").spec.template.spec;
const containerOf = (docs: Doc[]) => podOf(docs).containers[0] as Container;
const configMapOf = (docs: Doc[]) =>
  one<{ metadata: { name: string }; data: Record<string, string> }>(docs, "ConfigMap");

/** `160Mi` -> bytes. */
function bytesOf(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi)$/.exec(quantity);
  if (!match) throw new Error(`unexpected quantity ${quantity}`);
  return Number(match[1]) * 1024 ** { Ki: 1, Mi: 2, Gi: 3 }[match[2] as "Ki" | "Mi" | "Gi"];
}

/**
 * Lays out a ConfigMap volume as the kubelet does (its atomic writer): the files in a timestamped
 * `..<time>` directory, `..data` a symlink to it, and each top-level name a symlink through `..data`
 * (`desired -> ..data/desired`). With `items` only those keys appear, at their paths; a listed key
 * the ConfigMap lacks fails the mount, as it does for a ConfigMap that is not optional.
 */
async function mountConfigMap(
  root: string,
  data: Record<string, string>,
  items?: KeyToPath[],
): Promise<void> {
  const payload = items
    ? items.map((i): [string, string] => {
        const content = data[i.key];
        if (content === undefined) throw new Error(`configmap references non-existent config key: ${i.key}`);
        return [i.path, content];
      })
    : Object.entries(data);
  const stamp = "..2026_01_02_03_04_05.123456789";
  for (const [path, content] of payload) {
    await mkdir(dirname(join(root, stamp, path)), { recursive: true });
    await writeFile(join(root, stamp, path), content, { mode: 0o644 });
  }
  await symlink(stamp, join(root, "..data"));
  for (const top of new Set(payload.map(([path]) => path.split("/")[0] as string))) {
    await symlink(join("..data", top), join(root, top));
  }
}

/** The config volume of a rendered install, mounted under `root` at the container's mount path. */
async function mountConfigVolume(docs: Doc[], root: string, edit?: (config: string) => string) {
  const pod = podOf(docs);
  const mount = containerOf(docs).volumeMounts.find((m) => m.name === "config");
  const volume = pod.volumes.find((v) => v.name === "config");
  const configMap = configMapOf(docs);
  expect(volume?.configMap?.name).toBe(configMap.metadata.name);
  const data = { ...configMap.data };
  if (edit) data["cf-oauth-gitops.yaml"] = edit(data["cf-oauth-gitops.yaml"] as string);
  const dir = join(root, mount?.mountPath as string);
  await mkdir(dir, { recursive: true });
  await mountConfigMap(dir, data, volume?.configMap?.items);
  // The container runs `run -c <mount>/cf-oauth-gitops.yaml`: the file the args name is there.
  const args = containerOf(docs).args;
  const configArg = args[args.indexOf("-c") + 1] as string;
  expect(dirname(configArg)).toBe(mount?.mountPath);
  return { dir, configFile: join(root, configArg) };
}

async function scratch(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `cf-oauth-gitops-${prefix}-`));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The rendered Role as the fake API server's allow-list (one rule per RBAC rule, in its namespace). */
function accessRules(docs: Doc[]): AccessRule[] {
  const role = one<{ metadata: { namespace: string }; rules: Rule[] }>(docs, "Role");
  return role.rules.map((r) => ({
    verbs: r.verbs,
    resources: r.resources,
    namespaces: [role.metadata.namespace],
    ...(r.resourceNames ? { names: r.resourceNames } : {}),
  }));
}

/**
 * The example overlay's daemon on its mounted layout, the kubernetes sink talking to a fake API
 * server that allows what `rules` allow (the rendered Role, or a variant of it).
 */
async function runExample(rules: AccessRule[]) {
  const emu = await startTestEmulator();
  const root = await scratch("k8s-example-run");
  const namespace = one<{ metadata: { namespace: string } }>(example, "Role").metadata.namespace;
  const fake = await KubernetesFake.start({ tokens: { "sa-token": rules }, namespaces: [namespace] });
  onTestFinished(() => fake.close());
  // Someone else's Secret beside the sink's: the daemon's own credentials.
  fake.writeDirect(namespace, "cf-oauth-gitops-credentials", { data: CREDENTIALS });
  await mkdir(join(root, "serviceaccount"));
  await writeFile(join(root, "serviceaccount", "token"), "sa-token\n");
  // Only the sink's connection changes: the fake API server over http instead of the in-cluster
  // https endpoint, and its token file. Everything else is the rendered config, as mounted.
  const { dir } = await mountConfigVolume(example, root, (text) => {
    const config = parse(text) as { sinks: { default: Record<string, string> } };
    config.sinks.default["api_server"] = fake.url;
    config.sinks.default["token_file"] = join(root, "serviceaccount", "token");
    return stringify(config);
  });
  const state = join(root, "var/lib/cf-oauth-gitops");
  await mkdir(state, { recursive: true });
  const daemon = await startDaemon({
    cwd: dir,
    emulator: emu,
    args: ["--state-dir", state, "--listen", "127.0.0.1:0"],
    env: { ...CREDENTIALS, CLOUDFLARE_API_TOKEN: "emulator-write-token" },
  });
  return { daemon, emu, fake, namespace };
}

describe("deploy/kubernetes (the base)", () => {
  it("renders every resource the daemon needs, and no Secret", () => {
    expect(base.map((d) => d.kind).sort()).toEqual(
      [
        "ConfigMap",
        "Deployment",
        "Namespace",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ].sort(),
    );
    for (const doc of base.filter((d) => d.kind !== "Namespace")) {
      expect(doc.metadata.namespace, doc.kind).toBe("cf-oauth-gitops");
    }
    // Referenced by name only: `kubectl apply -k` never writes over the real one.
    expect(byKind(base, "Secret")).toEqual([]);
    expect(containerOf(base).envFrom).toEqual([{ secretRef: { name: "cf-oauth-gitops-credentials" } }]);
  });

  it("runs one replica with Recreate, non-root, read-only root, no capabilities, probes on /healthz and /readyz", () => {
    const deployment = one<Deployment>(base, "Deployment");
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe("Recreate");
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe("cf-oauth-gitops");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    const container = containerOf(base);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container.securityContext.capabilities.drop).toEqual(["ALL"]);
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    expect(bytesOf(container.resources.limits.memory)).toBeGreaterThan(
      bytesOf(container.resources.requests.memory),
    );
    expect(container.volumeMounts.map((m) => m.mountPath)).toContain("/var/lib/cf-oauth-gitops");
    expect(container.args).toEqual([
      "run",
      "-c",
      "/config/cf-oauth-gitops.yaml",
      "--state-dir",
      "/var/lib/cf-oauth-gitops",
      "--listen",
      "0.0.0.0:9090",
    ]);
  });

  it("mounts its config from a ConfigMap named by content hash, so an edit rolls the pod", async () => {
    const name = configMapOf(base).metadata.name;
    expect(name).toMatch(/^cf-oauth-gitops-config-[a-z0-9]{10}$/);
    expect(podOf(base).volumes.find((v) => v.name === "config")?.configMap?.name).toBe(name);
    const edited = await mkdtemp(join(workRoot, "edited-"));
    await cp(join(ROOT, "deploy"), join(edited, "deploy"), { recursive: true });
    const file = join(edited, "deploy/kubernetes/cf-oauth-gitops.yaml");
    await writeFile(file, (await readFile(file, "utf8")).replace("interval: 10m", "interval: 15m"));
    const after = render("deploy/kubernetes", edited);
    const renamed = configMapOf(after).metadata.name;
    expect(renamed).not.toBe(name);
    expect(podOf(after).volumes.find((v) => v.name === "config")?.configMap?.name).toBe(renamed);
  });

  it("lays the config out where the daemon reads it, with the git source's credentials from the Secret", async () => {
    const root = await scratch("k8s-base-mount");
    const { configFile } = await mountConfigVolume(base, root);
    const config = await loadConfig(configFile, { cwd: root });
    expect(config.source?.git).toMatchObject({ url: expect.stringMatching(/^https:\/\/[^@]+$/) });
    // The token is named, never written: the Secret's key reaches the pod through envFrom.
    expect(config.source?.git.token_env).toBe("GIT_TOKEN");
    expect(config.webhook?.secret_env).toBe("WEBHOOK_SECRET");
    expect(config.server.address).toBe("0.0.0.0:9090");
  });

  it("grants get and update on named Secrets only, create (which RBAC cannot limit by name), and nothing unused", () => {
    const role = one<{ rules: Rule[] }>(base, "Role");
    expect(role.rules).toHaveLength(2);
    const [create, named] = role.rules as [Rule, Rule];
    expect(create).toEqual({ apiGroups: [""], resources: ["secrets"], verbs: ["create"] });
    expect(named).toMatchObject({ apiGroups: [""], resources: ["secrets"], verbs: ["get", "update"] });
    // An empty list would mean every Secret.
    expect(named.resourceNames?.length).toBeGreaterThan(0);
    expect(named.resourceNames).not.toContain("cf-oauth-gitops-credentials");
    const verbs = role.rules.flatMap((r) => r.verbs);
    for (const unused of ["patch", "list", "watch", "delete", "*"]) expect(verbs).not.toContain(unused);
    expect(role.rules.flatMap((r) => r.resources)).not.toContain("selfsubjectaccessreviews");
    expect(byKind(base, "ClusterRole")).toEqual([]);
  });

  it("lets in only the ingress controller, to the daemon's port, and out only DNS and HTTPS", () => {
    const policy = one<{
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: { from: unknown[]; ports: { protocol: string; port: number }[] }[];
        egress: { to?: unknown[]; ports: { protocol: string; port: number }[] }[];
      };
    }>(base, "NetworkPolicy");
    expect(policy.spec.podSelector.matchLabels).toEqual({ "app.kubernetes.io/name": "cf-oauth-gitops" });
    expect(policy.spec.policyTypes.sort()).toEqual(["Egress", "Ingress"]);
    const port = containerOf(base).ports.find((p) => p.name === "http")?.containerPort;
    expect(policy.spec.ingress).toEqual([
      {
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } }],
        ports: [{ protocol: "TCP", port }],
      },
    ]);
    const egressPorts = policy.spec.egress.flatMap((e) => e.ports.map((p) => `${p.protocol}/${p.port}`));
    expect(egressPorts.sort()).toEqual(["TCP/443", "TCP/53", "TCP/6443", "UDP/53"].sort());
    const dns = policy.spec.egress.find((e) => e.ports.some((p) => p.port === 53));
    expect(dns?.to).toEqual([
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
        podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
      },
    ]);
  });
});

describe("deploy/overlays/example", () => {
  it("makes the credentials Secret from a git-ignored env file, under a content-hash name the Deployment follows", async () => {
    const secrets = byKind(example, "Secret") as unknown as {
      metadata: { name: string };
      data: Record<string, string>;
    }[];
    expect(secrets).toHaveLength(1);
    const secret = secrets[0] as (typeof secrets)[0];
    expect(secret.metadata.name).toMatch(/^cf-oauth-gitops-credentials-[a-z0-9]{10}$/);
    expect(containerOf(example).envFrom).toEqual([{ secretRef: { name: secret.metadata.name } }]);
    expect(Object.keys(secret.data).sort()).toEqual(Object.keys(CREDENTIALS).sort());
    const overlay = join(ROOT, "deploy/overlays/example");
    expect((await readFile(join(overlay, ".gitignore"), "utf8")).split("\n")).toContain("credentials.env");
    const template = await readFile(join(overlay, "credentials.env.example"), "utf8");
    for (const key of Object.keys(CREDENTIALS)) expect(template).toMatch(new RegExp(`^${key}=$`, "m"));
  });

  it("routes only POST-able /hooks/git through the Ingress, to the port the NetworkPolicy admits", () => {
    const ingress = one<{
      spec: {
        rules: {
          http: {
            paths: {
              path: string;
              pathType: string;
              backend: { service: { name: string; port: { name: string } } };
            }[];
          };
        }[];
      };
    }>(example, "Ingress");
    const paths = ingress.spec.rules.flatMap((r) => r.http.paths);
    expect(paths).toEqual([
      {
        path: "/hooks/git",
        pathType: "Exact",
        backend: { service: { name: "cf-oauth-gitops", port: { name: "http" } } },
      },
    ]);
    const service = one<{ spec: { ports: { name: string; targetPort: string }[] } }>(example, "Service");
    expect(service.spec.ports.find((p) => p.name === "http")?.targetPort).toBe("http");
  });

  it("mounts every desired-state file under /config/desired, where the config's `desired:` points", async () => {
    const root = await scratch("k8s-example-mount");
    const { dir, configFile } = await mountConfigVolume(example, root);
    const config = await loadConfig(configFile, { cwd: root });
    expect(config.source).toBeUndefined();
    expect(config.desired).toBe(join(dir, "desired"));
    const desired = await loadDesiredState(config);
    expect([...desired.accounts.values()].flatMap((cs) => cs.map((c) => c.client_name)).sort()).toEqual(
      ["Acme Dashboard", "acme-cli", "dns-bot", "legacy-reporting", "workers-deployer"].sort(),
    );
    // Every key of the ConfigMap is mounted: a key without an `items` entry would be invisible.
    const items = podOf(example).volumes.find((v) => v.name === "config")?.configMap?.items ?? [];
    expect(items.map((i) => i.key).sort()).toEqual(Object.keys(configMapOf(example).data).sort());
  });

  it("runs as a real daemon on that layout: applies, writes the Secrets the Role names, stays ready, fits its memory request", async () => {
    const { daemon, emu, fake, namespace } = await runExample(accessRules(example));
    const finished = await daemon.waitForLine(
      (l: LogLine) =>
        l.component === "daemon" && typeof l.msg === "string" && l.msg.startsWith("run finished"),
      30_000,
    );
    expect(finished["result"], daemon.output().slice(-3000)).toBe("ok");
    const live = await liveByName(emu);
    expect([...live.keys()].sort()).toEqual(["Acme Dashboard", "acme-cli", "dns-bot", "workers-deployer"]);
    for (const name of ["oauth-dashboard", "oauth-dns-bot", "oauth-workers-deployer"]) {
      const secret = fake.getSecret(namespace, name);
      expect(secret?.metadata.labels?.["app.kubernetes.io/managed-by"], name).toBe("cf-oauth-gitops");
      expect(Buffer.from(secret?.data?.["account_id"] ?? "", "base64").toString()).toBe(ACCOUNT_A);
    }
    // The Role lets the service account read no other Secret.
    const read = await fetch(
      `${fake.url}/api/v1/namespaces/${namespace}/secrets/cf-oauth-gitops-credentials`,
      {
        headers: { authorization: "Bearer sa-token" },
      },
    );
    expect(read.status).toBe(403);
    expect((await daemon.get("/readyz")).status).toBe(200);

    // Idle, the process stays well inside the memory request the Deployment declares.
    const rss =
      Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${daemon.child.pid}/status`, "utf8"))?.[1]) *
      1024;
    expect(rss).toBeGreaterThan(0);
    expect(bytesOf(containerOf(example).resources.requests.memory)).toBeGreaterThan(rss * 1.25);
    expect(await daemon.stop()).toBe(0);
    expect(daemon.output()).not.toContain(CREDENTIALS.WEBHOOK_SECRET);
  });

  it("refuses, before creating it, a confidential client whose Secret the Role does not name", async () => {
    const rules = accessRules(example).map((r) =>
      r.names ? { ...r, names: r.names.filter((n) => n !== "oauth-dns-bot") } : r,
    );
    const { daemon, emu, fake, namespace } = await runExample(rules);
    const finished = await daemon.waitForLine(
      (l: LogLine) =>
        l.component === "daemon" && typeof l.msg === "string" && l.msg.startsWith("run finished"),
      30_000,
    );
    expect(finished["result"]).toBe("partial");
    const status = await daemon.get<{
      last_run: { apply: { failures: { client_name: string; code: string }[] } };
    }>("/status");
    expect(status.body.last_run.apply.failures).toEqual([
      expect.objectContaining({ client_name: "dns-bot", code: "E_SINK_NOT_WRITABLE" }),
    ]);
    // Nothing was minted for it: no client, no Secret; the others went ahead.
    const live = await liveByName(emu);
    expect(live.has("dns-bot")).toBe(false);
    expect(live.has("workers-deployer")).toBe(true);
    expect(fake.getSecret(namespace, "oauth-dns-bot")).toBeUndefined();
    expect(fake.getSecret(namespace, "oauth-workers-deployer")).toBeDefined();
    expect(await daemon.stop()).toBe(0);
  });
});

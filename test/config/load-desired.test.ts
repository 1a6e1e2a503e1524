import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import type { DesiredClient } from "../../src/core/model.js";
import { ACCOUNT, FIXTURES, ROOT, clientYaml, configErrorOf, loadAll, tempTree } from "./support.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function tree(files: Record<string, string>) {
  const made = await tempTree(files);
  cleanups.push(made.cleanup);
  return made.dir;
}

const CONFIG = `account_id: ${ACCOUNT}\ndesired: ./desired\n`;

function byName(clients: DesiredClient[] | undefined): Map<string, DesiredClient> {
  return new Map((clients ?? []).map((c) => [c.client_name, c]));
}

describe("loadDesiredState: config/examples", () => {
  it("loads the example files as written", async () => {
    const config = await loadConfig("config/examples/cf-oauth-gitops.yaml", { cwd: ROOT });
    const state = await loadDesiredState(config);
    expect(state.files).toEqual([
      "config/examples/desired/automation.yaml",
      "config/examples/desired/cli.yaml",
      "config/examples/desired/dashboard.yaml",
    ]);
    expect([...state.accounts.keys()]).toEqual([ACCOUNT]);
    expect(state.warnings).toEqual([]);
    const clients = byName(state.accounts.get(ACCOUNT));
    expect([...clients.keys()]).toEqual([
      "dns-bot",
      "workers-deployer",
      "legacy-reporting",
      "acme-cli",
      "Acme Dashboard",
    ]);

    expect(clients.get("dns-bot")).toEqual({
      account_id: ACCOUNT,
      ensure: "present",
      client_name: "dns-bot",
      fields: {
        client_name: "dns-bot",
        token_endpoint_auth_method: "client_secret_post",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: ["https://bots.acme.example/dns/callback"],
        scopes: ["zone.read", "dns-records.read", "dns-records.write"],
        optional_scopes: ["dns-records.write"],
      },
      visibility: "private",
      secret: { sink: "default", key: "dns-bot" },
      rotation: { every: 2_592_000, grace: 43_200 },
      source: { file: "config/examples/desired/automation.yaml", line: 7, col: 5, path: "clients[0]" },
    });
    expect(clients.get("workers-deployer")?.rotation).toBeNull();
    expect(clients.get("legacy-reporting")).toMatchObject({
      ensure: "absent",
      fields: { client_name: "legacy-reporting" },
      secret: null,
      rotation: null,
    });
    expect(clients.get("acme-cli")).toMatchObject({ secret: null, rotation: null, visibility: "private" });
    expect(clients.get("Acme Dashboard")).toMatchObject({
      secret: { sink: "default", key: "acme-dashboard" },
      rotation: { every: 7_776_000, grace: 86_400 },
    });
  });
});

describe("loadDesiredState", () => {
  it("reads *.yaml and *.yml recursively in sorted order, skipping hidden and other files", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/b.yaml": `clients:\n${clientYaml("b")}`,
      "desired/a/z.yml": `clients:\n${clientYaml("az")}`,
      "desired/a.yaml": `clients:\n${clientYaml("a")}`,
      "desired/.hidden/x.yaml": "not: [valid",
      "desired/.draft.yaml": "not: [valid",
      "desired/README.md": "# not yaml",
      "desired/c.YAML": `clients:\n${clientYaml("c")}`,
    });
    const { state } = await loadAll(dir);
    expect(state.files).toEqual(["desired/a.yaml", "desired/a/z.yml", "desired/b.yaml", "desired/c.YAML"]);
    expect(state.accounts.get(ACCOUNT)?.map((c) => c.client_name)).toEqual(["a", "az", "b", "c"]);
  });

  it("accepts a single file as `desired`", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": `account_id: ${ACCOUNT}\ndesired: clients.yml\n`,
      "clients.yml": `clients:\n${clientYaml("only")}`,
    });
    const { state } = await loadAll(dir);
    expect(state.files).toEqual(["clients.yml"]);
    expect(state.accounts.get(ACCOUNT)?.[0]?.source).toEqual({
      file: "clients.yml",
      line: 2,
      col: 5,
      path: "clients[0]",
    });
  });

  it("reads several documents per file, each with its own or the default account", async () => {
    const other = "fedcba9876543210fedcba9876543210";
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/all.yaml": `---\nclients:\n${clientYaml("one")}---\naccount_id: ${other}\nclients:\n${clientYaml("two")}${clientYaml("one")}---\n`,
    });
    const { state } = await loadAll(dir);
    expect([...state.accounts.keys()]).toEqual([ACCOUNT, other]);
    expect(state.accounts.get(other)?.map((c) => [c.client_name, c.source.line])).toEqual([
      ["two", 12],
      ["one", 18],
    ]);
  });

  it("keeps the entry as the whole truth: no defaults for omitted API fields", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/c.yaml": `clients:\n${clientYaml("bare")}`,
    });
    const { state } = await loadAll(dir);
    const client = state.accounts.get(ACCOUNT)?.[0];
    expect(Object.keys(client?.fields ?? {}).sort()).toEqual([
      "client_name",
      "grant_types",
      "redirect_uris",
      "response_types",
      "scopes",
      "token_endpoint_auth_method",
    ]);
    expect(client?.visibility).toBe("private");
    expect(client?.client_id).toBeUndefined();
  });

  it("resolves secrets and rotation against the config", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": `${CONFIG}sinks:\n  default: {type: file, dir: s}\n  vault: {type: vault, address: "https://v.example.com", path_prefix: p}\nrotation: {every: 60d, grace: 2h}\n`,
      "desired/c.yaml": `clients:
${clientYaml("defaults")}${clientYaml("named", "    secret: {sink: vault, key: apps/named}\n    rotation: {every: 7d}\n    client_id: 0f1e2d3c4b5a69788796a5b4c3d2e1f0\n")}${clientYaml("norotate", "    rotation: false\n")}  - client_name: spa
    token_endpoint_auth_method: none
    grant_types: [authorization_code]
    response_types: [code]
    redirect_uris: [https://spa.example.com/cb]
    scopes: [user-details.read]
`,
    });
    const { state } = await loadAll(dir);
    const clients = byName(state.accounts.get(ACCOUNT));
    expect(clients.get("defaults")).toMatchObject({
      secret: { sink: "default", key: "defaults" },
      rotation: { every: 5_184_000, grace: 7_200 },
    });
    expect(clients.get("named")).toMatchObject({
      client_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
      secret: { sink: "vault", key: "apps/named" },
      rotation: { every: 604_800, grace: 7_200 },
    });
    expect(clients.get("norotate")?.rotation).toBeNull();
    expect(clients.get("spa")).toMatchObject({ secret: null, rotation: null });
  });

  it("lets `x-` keys hold anchors that entries merge", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/c.yaml": `x-web: &web
  token_endpoint_auth_method: client_secret_basic
  grant_types: [authorization_code]
  response_types: [code]
  scopes: [account-settings.read]
clients:
  - <<: *web
    client_name: one
    redirect_uris: [https://one.example.com/cb]
  - <<: *web
    client_name: two
    redirect_uris: [https://two.example.com/cb]
    scopes: [zone.read]
`,
    });
    const { state } = await loadAll(dir);
    const clients = byName(state.accounts.get(ACCOUNT));
    expect(clients.get("one")?.fields.scopes).toEqual(["account-settings.read"]);
    expect(clients.get("two")?.fields.scopes).toEqual(["zone.read"]);
    expect(clients.get("two")?.fields.token_endpoint_auth_method).toBe("client_secret_basic");
  });

  it("locates a problem in a merged value at the anchor it came from", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/c.yaml": `x-web: &web
  grant_types: [refresh_token]
clients:
  - <<: *web
    client_name: one
    token_endpoint_auth_method: client_secret_basic
    response_types: [code]
    redirect_uris: [https://one.example.com/cb]
    scopes: [account-settings.read]
`,
    });
    const error = await configErrorOf(loadAll(dir));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({
      code: "E_NO_AUTHORIZATION_CODE",
      line: 2,
      col: 16,
      path: "clients[0].grant_types",
    });
  });

  it("warns about valid input that is probably a mistake, without failing", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/c.yaml": `clients:
${clientYaml("pub", "    visibility: public\n    client_uri: https://pub.example.com\n")}  - client_name: spa
    token_endpoint_auth_method: none
    grant_types: [authorization_code]
    response_types: [code]
    redirect_uris: [https://spa.example.com/cb, https://spa.example.com/cb]
    scopes: [user-details.read]
    secret: {key: spa}
`,
    });
    const { state } = await loadAll(dir);
    expect(state.warnings.map((w) => `${w.line}:${w.col} ${w.code}`)).toEqual([
      "8:17 W_PUBLIC_NEEDS_LOGO",
      "14:49 W_DUPLICATE_VALUE",
      "16:13 W_SECRET_IGNORED",
    ]);
    expect(state.accounts.get(ACCOUNT)).toHaveLength(2);
  });

  it("reports all three problems of one file", async () => {
    const config = await loadConfig("minimal/cf-oauth-gitops.yaml", { cwd: FIXTURES });
    const error = await configErrorOf(
      loadDesiredState({ ...config, desired: join(FIXTURES, "multi/three-problems.yaml") }),
    );
    expect(error.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.path} ${i.code}`)).toEqual([
      "multi/three-problems.yaml:8:14 clients[0].scopes[0] E_COLON_SCOPE",
      "multi/three-problems.yaml:15:5 clients[1].redirect_uri E_UNKNOWN_KEY",
      "multi/three-problems.yaml:22:15 clients[2].logo_uri E_BAD_URL",
    ]);
  });

  it("collects problems from every file before failing", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/a.yaml": "clients:\n\t- bad\n",
      "desired/b.yaml": `clients:\n${clientYaml("b", "    visibility: hidden\n")}`,
      "desired/c.yaml": "",
    });
    const error = await configErrorOf(loadAll(dir));
    expect(error.issues.map((i) => `${i.file} ${i.code}`)).toEqual([
      "desired/a.yaml E_YAML_SYNTAX",
      "desired/b.yaml E_ENUM",
      "desired/c.yaml E_EMPTY_FILE",
    ]);
  });

  it("treats an empty directory as an empty desired set, not an error", async () => {
    const dir = await tree({ "cf-oauth-gitops.yaml": CONFIG, "desired/README.md": "nothing yet" });
    const { state } = await loadAll(dir);
    expect(state.files).toEqual([]);
    expect(state.accounts.size).toBe(0);
  });

  it("handles 10,000 clients in one file, and a clash for each of 5,000 of them", async () => {
    const entries = Array.from({ length: 10_000 }, (_, i) =>
      clientYaml(`client-${i % 5_000}`, `    secret: {key: k-${i}}\n`),
    );
    const dir = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/many.yaml": `clients:\n${entries.join("")}`,
    });
    const error = await configErrorOf(loadAll(dir));
    expect(error.issues).toHaveLength(5_000);
    expect(new Set(error.issues.map((i) => i.code))).toEqual(new Set(["E_DUPLICATE_NAME"]));
    expect(error.issues[0]).toMatchObject({
      line: 7 * 5_000 + 2,
      col: 18,
      path: "clients[5000].client_name",
    });
    expect(error.issues[0]?.message).toContain("first at desired/many.yaml:2:18");

    const unique = Array.from({ length: 10_000 }, (_, i) => clientYaml(`client-${i}`));
    const ok = await tree({
      "cf-oauth-gitops.yaml": CONFIG,
      "desired/many.yaml": `clients:\n${unique.join("")}`,
    });
    const { state } = await loadAll(ok);
    const clients = state.accounts.get(ACCOUNT) ?? [];
    expect(clients).toHaveLength(10_000);
    expect(clients[9_999]?.source).toEqual({
      file: "desired/many.yaml",
      line: 6 * 9_999 + 2,
      col: 5,
      path: "clients[9999]",
    });
  });
});

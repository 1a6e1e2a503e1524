import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, policyFromConfig } from "../../src/config/index.js";
import { GitOpsError } from "../../src/errors.js";
import { ACCOUNT, configErrorOf, tempTree } from "./support.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function tree(files: Record<string, string>) {
  const made = await tempTree(files);
  cleanups.push(made.cleanup);
  return made.dir;
}

describe("loadConfig", () => {
  it("applies every default and resolves paths beside the config file", async () => {
    const dir = await tree({ "ops/cf-oauth-gitops.yaml": "desired: ./desired\n" });
    const config = await loadConfig("ops/cf-oauth-gitops.yaml", { cwd: dir });
    expect(config).toEqual({
      config_file: join(dir, "ops/cf-oauth-gitops.yaml"),
      display_root: dir,
      desired: join(dir, "ops/desired"),
      desired_location: { file: "ops/cf-oauth-gitops.yaml", line: 1, col: 10, path: "desired" },
      state_dir: join(dir, "ops/.cf-oauth-gitops"),
      prune: "none",
      ignore: [],
      safety: { max_deletes: 10, max_change_percent: 30, min_clients_for_percent: 10, allow_empty: false },
      sinks: { default: { type: "file", dir: join(dir, "ops/secrets"), format: "json" } },
      rotation: {
        every: 7_776_000,
        grace: 86_400,
        schedule: "0 3 * * *",
        timezone: "UTC",
        max_concurrent: 4,
      },
      interval: 600,
      daemon: { delete_delay: 60, quiet_period: 1 },
      server: { address: "127.0.0.1:9090" },
    });
  });

  it("reads the daemon's directory settings; a delete delay must outlast the quiet period", async () => {
    const dir = await tree({
      "ok.yaml": "desired: d\ndaemon: {delete_delay: 5m, quiet_period: 3s}\n",
      "zero.yaml": "desired: d\ndaemon: {delete_delay: 0s, quiet_period: 3s}\n",
      "bad.yaml": "desired: d\ndaemon: {delete_delay: 2s, quiet_period: 3s}\n",
    });
    expect((await loadConfig("ok.yaml", { cwd: dir })).daemon).toEqual({
      delete_delay: 300,
      quiet_period: 3,
    });
    expect((await loadConfig("zero.yaml", { cwd: dir })).daemon).toEqual({
      delete_delay: 0,
      quiet_period: 3,
    });
    const error = await configErrorOf(loadConfig("bad.yaml", { cwd: dir }));
    expect(error.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.path} ${i.code}`)).toEqual([
      "bad.yaml:2:24 daemon.delete_delay E_BAD_DAEMON",
    ]);
    expect(error.message).toContain("must be longer than daemon quiet_period (3s)");
  });

  it("resolves a full config: durations in seconds, sink paths absolute, git source defaults", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml": `account_id: ${ACCOUNT}
desired: desired/prod
state_dir: /var/lib/cf-oauth-gitops
prune: all
ignore: [break-glass, 9a8b7c6d5e4f30211203f4e5d6c7b8a9]
safety: {max_deletes: 2, max_change_percent: 12.5, min_clients_for_percent: 4, allow_empty: true}
sinks:
  files: {type: file, dir: out, format: env, age_recipients: [age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq], age_identity_file: keys/age.txt}
  hook: {type: exec, command: [./store.sh, --prod], read_command: [./store.sh, --read], timeout: 1m30s, pass_env: [GNUPGHOME]}
  vault: {type: vault, address: "https://vault.example.com:8200", path_prefix: oauth, token_file: vault-token, namespace: team, ca_file: tls/vault-ca.pem, tls_server_name: vault.internal}
  k8s: {type: kubernetes, namespace: oauth-secrets, name_prefix: cf-, ca_file: ca.pem}
rotation: {every: 30d, grace: 1h, schedule: "*/15 * * * *", timezone: Europe/Berlin, max_concurrent: 2}
interval: 5m
source: {git: {url: "https://git.example.com/ops.git"}}
server: {address: "0.0.0.0:8080"}
webhook: {secret_file: webhook.secret}
`,
    });
    const config = await loadConfig(join(dir, "cf-oauth-gitops.yaml"));
    expect(config.account_id).toBe(ACCOUNT);
    expect(config.desired).toBe(join(dir, "desired/prod"));
    expect(config.state_dir).toBe("/var/lib/cf-oauth-gitops");
    expect(config.ignore).toEqual(["break-glass", "9a8b7c6d5e4f30211203f4e5d6c7b8a9"]);
    expect(config.safety).toEqual({
      max_deletes: 2,
      max_change_percent: 12.5,
      min_clients_for_percent: 4,
      allow_empty: true,
    });
    expect(config.sinks).toEqual({
      files: {
        type: "file",
        dir: join(dir, "out"),
        format: "env",
        age_recipients: ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"],
        age_identity_file: join(dir, "keys/age.txt"),
      },
      hook: {
        type: "exec",
        command: ["./store.sh", "--prod"],
        read_command: ["./store.sh", "--read"],
        timeout_seconds: 90,
        pass_env: ["GNUPGHOME"],
      },
      vault: {
        type: "vault",
        address: "https://vault.example.com:8200",
        mount: "secret",
        path_prefix: "oauth",
        token_file: join(dir, "vault-token"),
        namespace: "team",
        ca_file: join(dir, "tls/vault-ca.pem"),
        tls_server_name: "vault.internal",
      },
      k8s: {
        type: "kubernetes",
        namespace: "oauth-secrets",
        name_prefix: "cf-",
        ca_file: join(dir, "ca.pem"),
      },
    });
    expect(config.rotation).toEqual({
      every: 2_592_000,
      grace: 3_600,
      schedule: "*/15 * * * *",
      timezone: "Europe/Berlin",
      max_concurrent: 2,
    });
    expect(config.interval).toBe(300);
    expect(config.source).toEqual({
      git: { url: "https://git.example.com/ops.git", branch: "main", path: ".", interval: 60 },
    });
    expect(config.server).toEqual({ address: "0.0.0.0:8080" });
    expect(config.webhook).toEqual({ secret_file: join(dir, "webhook.secret") });
    expect(policyFromConfig(config)).toEqual({
      prune: "all",
      ignore: ["break-glass", "9a8b7c6d5e4f30211203f4e5d6c7b8a9"],
      safety: { max_deletes: 2, max_change_percent: 12.5, min_clients_for_percent: 4, allow_empty: true },
    });
  });

  it("does not add a default sink when sinks are given", async () => {
    const dir = await tree({
      "cf-oauth-gitops.yaml":
        "desired: d\nsinks:\n  vault: {type: vault, address: 'https://v.example.com', path_prefix: p}\n",
    });
    const config = await loadConfig("cf-oauth-gitops.yaml", { cwd: dir });
    expect(Object.keys(config.sinks)).toEqual(["vault"]);
  });

  it("names a missing config file with a stable code", async () => {
    const dir = await tree({});
    const error = await loadConfig("nope.yaml", { cwd: dir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitOpsError);
    expect((error as GitOpsError).code).toBe("E_CONFIG_NOT_FOUND");
    expect((error as GitOpsError).message).toContain("nope.yaml");
  });

  it("reports every problem in the file, in file order, each located", async () => {
    const dir = await tree({
      "c.yaml": `desired: d
prun: all
interval: 10
safety:
  max_deletes: many
sinks:
  default: {type: file}
rotation: {every: 1d, grace: 2d, timezone: Moon/Base}
`,
    });
    const error = await configErrorOf(loadConfig("c.yaml", { cwd: dir }));
    expect(error.issues.map((i) => `${i.line}:${i.col} ${i.path} ${i.code}`)).toEqual([
      "2:1 prun E_UNKNOWN_KEY",
      "3:11 interval E_BAD_DURATION",
      "5:16 safety.max_deletes E_TYPE",
      "7:12 sinks.default.dir E_REQUIRED",
      "8:30 rotation.grace E_BAD_ROTATION",
      "8:44 rotation.timezone E_BAD_TIMEZONE",
    ]);
    expect(error.issues.every((i) => i.file === "c.yaml")).toBe(true);
    expect(error.message).toContain(
      "c.yaml:2:1: prun: unknown key `prun`; did you mean `prune`? [E_UNKNOWN_KEY]",
    );
  });

  it("suggests keys of the sink's own type only", async () => {
    const dir = await tree({
      "c.yaml": "desired: d\nsinks:\n  default: {type: exec, command: [x], read_command: [x], timout: 5s}\n",
    });
    const error = await configErrorOf(loadConfig("c.yaml", { cwd: dir }));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({
      code: "E_UNKNOWN_KEY",
      line: 3,
      col: 58,
      path: "sinks.default.timout",
    });
    expect(error.issues[0]?.message).toContain("did you mean `timeout`?");
  });
});

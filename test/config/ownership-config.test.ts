import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { join } from "node:path";
import { checkRepositoryConfigPath, loadRepositoryConfig } from "../../src/engine/repo-config.js";
import { ACCOUNT, configErrorOf, tempTree } from "./support.js";

/**
 * `ownership.git` (the record `run` publishes and `plan` reads) and `source.git.config` (the daemon
 * plans with the repository's own config file): defaults, and every mistake located.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function tree(files: Record<string, string>) {
  const made = await tempTree(files);
  cleanups.push(made.cleanup);
  return made.dir;
}

describe("ownership and source.git.config", () => {
  it("defaults the ref; keeps a reader's URL and the repository's config path", async () => {
    const dir = await tree({
      "a.yaml": "desired: d\nownership:\n  git: {}\n",
      "b.yaml": [
        "desired: d",
        "ownership:",
        "  git: {ref: refs/heads/ownership, url: https://git.example/acme/clients.git}",
        "source:",
        "  git: {url: https://git.example/acme/clients.git, config: ops/cf-oauth-gitops.yaml}",
        "",
      ].join("\n"),
    });
    expect((await loadConfig("a.yaml", { cwd: dir })).ownership).toEqual({
      git: { ref: "refs/cf-oauth-gitops/ownership" },
    });
    const b = await loadConfig("b.yaml", { cwd: dir });
    expect(b.ownership).toEqual({
      git: { ref: "refs/heads/ownership", url: "https://git.example/acme/clients.git" },
    });
    expect(b.source?.git).toMatchObject({ path: ".", config: "ops/cf-oauth-gitops.yaml" });
  });

  it("refuses a ref that is not a full ref name, and path beside config, each located", async () => {
    const dir = await tree({
      "bad.yaml": [
        "desired: d",
        "ownership:",
        "  git:",
        "    ref: main",
        "source:",
        "  git:",
        "    url: https://git.example/acme/clients.git",
        "    path: clients",
        "    config: cf-oauth-gitops.yaml",
        "",
      ].join("\n"),
      "dots.yaml": "desired: d\nownership:\n  git: {ref: refs/x/../y}\n",
    });
    const error = await configErrorOf(loadConfig("bad.yaml", { cwd: dir }));
    expect(error.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.path} ${i.code}`)).toEqual([
      "bad.yaml:4:10 ownership.git.ref E_BAD_REF",
      "bad.yaml:8:5 source.git.path E_GIT_PATH_AND_CONFIG",
    ]);
    const dots = await configErrorOf(loadConfig("dots.yaml", { cwd: dir }));
    expect(dots.issues.map((i) => i.code)).toEqual(["E_BAD_REF"]);
  });

  it("source.git.config must name a file inside the repository", () => {
    expect(checkRepositoryConfigPath("/repo", "ops/cf-oauth-gitops.yaml")).toBe(
      "/repo/ops/cf-oauth-gitops.yaml",
    );
    for (const path of ["../outside.yaml", "/etc/cf-oauth-gitops.yaml", "."]) {
      expect(() => checkRepositoryConfigPath("/repo", path)).toThrow(/E_GIT_PATH|inside the repository/);
    }
  });

  it("a run takes the plan-deciding settings from the repository's file and the rest from its own", async () => {
    const daemonDir = await tree({
      "cf-oauth-gitops.yaml": [
        "desired: ./unused",
        "state_dir: ./state",
        "prune: none",
        "sinks: {default: {type: file, dir: ./secrets}}",
        "source: {git: {url: https://git.example/acme/clients.git, config: cf-oauth-gitops.yaml}}",
        "",
      ].join("\n"),
    });
    const checkout = await tree({
      "cf-oauth-gitops.yaml": [
        `account_id: ${ACCOUNT}`,
        "desired: ./clients",
        "state_dir: ./not-the-state",
        "prune: owned",
        "ignore: [keep-me]",
        "safety: {max_deletes: 3}",
        "sinks: {default: {type: file, dir: ./not-the-secrets}}",
        "ownership: {git: {}}",
        "",
      ].join("\n"),
      "escape.yaml": "desired: ../elsewhere\n",
    });
    const daemon = await loadConfig(join(daemonDir, "cf-oauth-gitops.yaml"));
    const run = await loadRepositoryConfig(daemon, checkout, "cf-oauth-gitops.yaml");
    expect(run).toMatchObject({
      account_id: ACCOUNT,
      desired: join(checkout, "clients"),
      display_root: checkout,
      prune: "owned",
      ignore: ["keep-me"],
      safety: { max_deletes: 3 },
      ownership: { git: { ref: "refs/cf-oauth-gitops/ownership" } },
      state_dir: join(daemonDir, "state"),
      sinks: { default: { type: "file", dir: join(daemonDir, "secrets"), format: "json" } },
      source: daemon.source,
    });

    const escape = await configErrorOf(loadRepositoryConfig(daemon, checkout, "escape.yaml"));
    expect(escape.issues).toMatchObject([{ file: "escape.yaml", line: 1, col: 10, code: "E_GIT_PATH" }]);
    const missing = await configErrorOf(loadRepositoryConfig(daemon, checkout, "gone.yaml"));
    expect(missing.issues).toMatchObject([{ file: "gone.yaml", code: "E_CONFIG_NOT_FOUND" }]);
  });
});

import { mkdtemp, mkdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import { ROOT } from "../e2e/support.js";

/**
 * Every YAML example the docs show is loaded by the real loader: the README's desired-state and
 * config snippets, and the Kubernetes base's config file. An example that drifts from the
 * schema fails here, not in a user's first run.
 */
async function readmeYamlBlocks(): Promise<string[]> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  return [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

async function workspaceWith(config: string, desired: string | null): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cfog-docs-"));
  await mkdir(join(dir, "desired"));
  if (desired !== null) await writeFile(join(dir, "desired", "example.yaml"), desired);
  await writeFile(join(dir, "cf-oauth-gitops.yaml"), config);
  return dir;
}

describe("examples in the docs", () => {
  it("the README's desired-state snippet loads", async () => {
    const blocks = await readmeYamlBlocks();
    const desired = blocks.find((b) => b.includes("clients:"));
    expect(desired).toBeDefined();
    const dir = await workspaceWith("desired: ./desired\n", desired ?? "");
    const config = await loadConfig(join(dir, "cf-oauth-gitops.yaml"));
    const state = await loadDesiredState(config);
    const clients = [...state.accounts.values()].flat();
    expect(clients.map((c) => c.client_name)).toEqual(["dns-bot"]);
    expect(clients[0]?.fields.optional_scopes).toEqual(["dns-records.write"]);
  });

  it("the README's config snippet loads, with every section it shows", async () => {
    const blocks = await readmeYamlBlocks();
    const snippet = blocks.find((b) => b.startsWith("desired:"));
    expect(snippet).toBeDefined();
    const dir = await workspaceWith(snippet ?? "", "clients: []\n");
    const config = await loadConfig(join(dir, "cf-oauth-gitops.yaml"));
    expect(Object.keys(config.sinks).sort()).toEqual(["default", "vault"]);
    expect(config.rotation.every).toBe(90 * 86_400);
    expect(config.interval).toBe(600);
    await expect(loadDesiredState(config)).resolves.toBeDefined();
  });

  it("the config in deploy/kubernetes/cf-oauth-gitops.yaml loads", async () => {
    const text = await readFile(join(ROOT, "deploy/kubernetes/cf-oauth-gitops.yaml"), "utf8");
    const dir = await workspaceWith(text, null);
    const config = await loadConfig(join(dir, "cf-oauth-gitops.yaml"));
    expect(config.source?.git.branch).toBe("main");
    expect(config.sinks["default"]?.type).toBe("kubernetes");
    expect(config.server.address).toBe("0.0.0.0:9090");
  });
});

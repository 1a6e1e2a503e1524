import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import type { LoadDesiredOptions, ReconcilerConfig } from "../../src/config/index.js";
import { parseFastYaml } from "../../src/config/fast-yaml.js";
import { ConfigError } from "../../src/errors.js";
import { ACCOUNT, FIXTURES, ROOT, tempTree } from "./support.js";

/**
 * `loadDesiredState` with the fast reader (the default) against the `yaml` package alone
 * (`fastPath: false`): the same state, entry locations included, and the same issues, in the same
 * order, for every input.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

type Outcome = { state: unknown } | { issues: unknown };

async function outcome(config: ReconcilerConfig, options: LoadDesiredOptions): Promise<Outcome> {
  try {
    return { state: await loadDesiredState(config, options) };
  } catch (error) {
    if (error instanceof ConfigError) return { issues: error.issues };
    throw error;
  }
}

async function expectSameBothWays(config: ReconcilerConfig): Promise<Outcome> {
  const fast = await outcome(config, {});
  expect(fast).toStrictEqual(await outcome(config, { fastPath: false }));
  return fast;
}

const OTHER = "fedcba9876543210fedcba9876543210";

/** A generated client in one of several styles, all valid. */
function generatedClient(i: number): string {
  const name = i % 7 === 0 ? `"App ${i}"` : `app-${i}`;
  const lines = [`  - client_name: ${name}${i % 4 === 0 ? "   # main app" : ""}`];
  if (i % 11 === 0) return `${lines[0]}\n    ensure: absent\n`;
  lines.push(`    token_endpoint_auth_method: ${i % 5 === 0 ? "none" : "client_secret_basic"}`);
  lines.push(
    i % 2 === 0
      ? "    grant_types: [authorization_code, refresh_token]"
      : "    grant_types:\n    - authorization_code",
  );
  lines.push("    response_types: [code]");
  lines.push(
    `    redirect_uris:\n      - https://app-${i}.example.com/callback\n      - 'https://app-${i}.example.com/cb2'`,
  );
  lines.push("    scopes: [account-settings.read, zone.read]");
  if (i % 3 === 0) lines.push(`    client_id: "${i.toString(16).padStart(32, "a")}"`);
  const confidential = i % 5 !== 0;
  if (confidential && i % 6 === 1) lines.push(`    secret: {key: apps/${i}}`);
  if (confidential && i % 6 === 2) lines.push(`    secret:\n      key: "apps/${i}"`);
  if (confidential && i % 9 === 4) lines.push("    rotation: {every: 30d, grace: 12h}");
  if (i % 9 === 5) lines.push("    rotation: false");
  if (i % 13 === 0)
    lines.push("\n    # a comment between fields\n    logo_uri: https://cdn.example.com/logo.png");
  return `${lines.join("\n")}\n`;
}

function generatedFile(first: number, count: number, account?: string): string {
  let text = `# generated\n${account ? `account_id: ${account}\n` : ""}clients:\n`;
  for (let i = first; i < first + count; i++) text += generatedClient(i);
  return text;
}

describe("loadDesiredState: fast reader and yaml package agree", () => {
  it("on the examples and the good fixtures", async () => {
    for (const [dir, file] of [
      [ROOT, "config/examples/cf-oauth-gitops.yaml"],
      [FIXTURES, "minimal/cf-oauth-gitops.yaml"],
      [FIXTURES, "warnings/cf-oauth-gitops.yaml"],
    ] as const) {
      await expectSameBothWays(await loadConfig(file, { cwd: dir }));
    }
  });

  it("on a generated set of 521 clients in several styles, two accounts, a file it cannot read, a warning", async () => {
    const files: Record<string, string> = {
      "cf-oauth-gitops.yaml": `account_id: ${ACCOUNT}\ndesired: ./desired\n`,
      "desired/a.yaml": generatedFile(0, 250),
      "desired/b.yaml": generatedFile(250, 250, OTHER),
      // Anchors and a merge key: outside the fast subset, read by the yaml package.
      "desired/c.yaml": `x-base: &base\n  token_endpoint_auth_method: none\n  grant_types: [authorization_code]\n  response_types: [code]\n  scopes: [zone.read]\nclients:\n${Array.from(
        { length: 20 },
        (_, i) =>
          `  - <<: *base\n    client_name: merged-${i}\n    redirect_uris: [https://m${i}.example.com/cb]\n`,
      ).join("")}`,
      // Valid with a warning: checked again on the yaml document, its client added once.
      "desired/d.yaml": `${generatedFile(600, 1)}    visibility: public\n`,
    };
    expect(parseFastYaml(files["desired/a.yaml"] as string)).toBeDefined();
    expect(parseFastYaml(files["desired/b.yaml"] as string)).toBeDefined();
    expect(parseFastYaml(files["desired/c.yaml"] as string)).toBeUndefined();
    const { dir, cleanup } = await tempTree(files);
    cleanups.push(cleanup);
    const result = await expectSameBothWays(await loadConfig("cf-oauth-gitops.yaml", { cwd: dir }));
    if (!("state" in result)) throw new Error(JSON.stringify(result, null, 1).slice(0, 2000));
    const state = result.state as Awaited<ReturnType<typeof loadDesiredState>>;
    expect(state.accounts.get(ACCOUNT)).toHaveLength(271);
    expect(state.accounts.get(OTHER)).toHaveLength(250);
    expect(state.warnings.map((w) => `${w.file}:${w.line}:${w.col} ${w.code}`)).toEqual([
      "desired/d.yaml:12:17 W_PUBLIC_NEEDS_LOGO",
      "desired/d.yaml:12:17 W_PUBLIC_NEEDS_CLIENT_URI",
    ]);
    expect(state.accounts.get(OTHER)?.[3]?.source).toEqual({
      file: "desired/b.yaml",
      line: 30,
      col: 5,
      path: "clients[3]",
    });
  });

  it("on every case of the bad-input corpus: the same issues, none twice, none missing", async () => {
    const bad = join(FIXTURES, "bad");
    const shared = await loadConfig("minimal/cf-oauth-gitops.yaml", { cwd: FIXTURES });
    for (const name of readdirSync(bad).sort()) {
      const path = join(bad, name);
      let config: ReconcilerConfig;
      if (statSync(path).isDirectory()) {
        try {
          config = await loadConfig(join(name, "cf-oauth-gitops.yaml"), { cwd: bad });
        } catch {
          continue; // a config-file case: the desired state is never read
        }
      } else config = { ...shared, desired: path, display_root: bad };
      const result = await expectSameBothWays(config);
      expect("issues" in result, name).toBe(true);
    }
  });

  it("undoes a file's entries when a later entry in it has a problem, and reports it once", async () => {
    const { dir, cleanup } = await tempTree({
      "cf-oauth-gitops.yaml": `account_id: ${ACCOUNT}\ndesired: ./desired\n`,
      "desired/a.yaml": generatedFile(1, 3),
      "desired/b.yaml": `${generatedFile(10, 2)}  - client_name: app-1\n    ensure: absent\n`,
    });
    cleanups.push(cleanup);
    const config = await loadConfig("cf-oauth-gitops.yaml", { cwd: dir });
    const result = await expectSameBothWays(config);
    expect(result).toEqual({
      issues: [
        expect.objectContaining({
          file: "desired/b.yaml",
          line: 13,
          col: 18,
          code: "E_PRESENT_AND_ABSENT",
          message: expect.stringContaining("present at desired/a.yaml:3:18"),
        }),
      ],
    });
  });
});

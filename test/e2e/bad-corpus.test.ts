import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import { ConfigError } from "../../src/errors.js";
import { useEmulator } from "../helpers/emulator.js";
import { ROOT, cliEnv, runChild, runCli, stats } from "./support.js";

/**
 * The bad-input corpus (test/fixtures/bad/) through the real CLI: for every case, `plan` and `apply`
 * exit 1, print the problem at `file:line:col`, and make no API call at all (the emulator is running,
 * with valid credentials in the environment, and its counters stay at zero).
 *
 * Cases are paired with configs the way test/config/bad-corpus.test.ts pairs them: a directory has its
 * own cf-oauth-gitops.yaml; a file is loaded with the shared minimal config (test/fixtures/minimal)
 * with its `desired:` swapped for the file. The expected locations are what the loader itself reports
 * for the same inputs (that test pins them to its table), so every located issue must reach stderr.
 */

const BAD = join(ROOT, "test", "fixtures", "bad");
const MINIMAL_CONFIG = readFileSync(
  join(ROOT, "test", "fixtures", "minimal", "cf-oauth-gitops.yaml"),
  "utf8",
);
const CASES = readdirSync(BAD).sort();

let configDir: string;
beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), "cf-e2e-bad-"));
});
afterAll(async () => {
  await rm(configDir, { recursive: true, force: true });
});

/** The config a case is run with: its own, or the minimal one pointed at the file. */
async function configFor(name: string): Promise<string> {
  const path = join(BAD, name);
  if (statSync(path).isDirectory()) return join(path, "cf-oauth-gitops.yaml");
  const config = join(configDir, `${name}.cf-oauth-gitops.yaml`);
  const text = MINIMAL_CONFIG.replace(/^desired: .*$/m, `desired: ${JSON.stringify(path)}`);
  if (text === MINIMAL_CONFIG) throw new Error("the minimal config has no `desired:` line to swap");
  await writeFile(config, text);
  return config;
}

/** `file:line:col: ... [CODE]` of every issue the loader reports, with files named relative to `cwd`. */
async function expectedIssues(config: string, cwd: string): Promise<{ at: string; code: string }[]> {
  try {
    await loadDesiredState(await loadConfig(config, { cwd }));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues.map((i) => ({ at: `${i.file}:${i.line}:${i.col}`, code: i.code }));
  }
  throw new Error(`${config}: loading succeeded; the corpus case is not bad`);
}

describe("bad-input corpus through plan and apply", () => {
  const emu = useEmulator();

  it("covers the whole corpus directory (at least 42 cases)", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(42);
    expect(CASES).toContain("colon-scope.yaml");
    expect(CASES).toContain("config-unknown-key");
  });

  it.each(CASES)("%s: exit 1, file:line:col on stderr, zero API calls", async (name) => {
    const config = await configFor(name);
    const expected = await expectedIssues(config, BAD);
    expect(expected.length).toBeGreaterThan(0);
    // The problem is located inside the case itself (its file, or a file of its directory).
    expect(expected[0]!.at.startsWith(name)).toBe(true);

    const before = await stats(emu());
    for (const verb of ["plan", "apply"]) {
      const result = await runCli([verb, "-c", config], { cwd: BAD, env: cliEnv(emu()) });
      expect(result.code, `${verb} ${name}: ${result.stderr}`).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr.startsWith("error [E_CONFIG]: ")).toBe(true);
      for (const issue of expected) {
        expect(result.stderr).toContain(`${issue.at}: `);
        expect(result.stderr).toContain(`[${issue.code}]`);
      }
    }
    const after = await stats(emu());
    expect(after.total - before.total).toBe(0);
  });
});

describe("bad-input corpus through the real program (child processes)", () => {
  const emu = useEmulator();
  const SAMPLE = ["colon-scope.yaml", "config-unknown-key", "duplicate-name-across-files"];

  it.each(SAMPLE)("%s: exit 1 with file:line:col, zero API calls", async (name) => {
    const config = await configFor(name);
    const expected = await expectedIssues(config, ROOT);
    const verb = name === "config-unknown-key" ? "plan" : "apply";
    const result = await runChild([verb, "-c", relative(ROOT, config)], cliEnv(emu()));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    for (const issue of expected) expect(result.stderr).toContain(`${issue.at}: `);
    expect((await stats(emu())).total).toBe(0);
  });
});

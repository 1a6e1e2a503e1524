import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG_FILE as CONFIG_DEFAULT } from "../../src/config/load-config.js";
import { DEFAULT_CONFIG_FILE, VERBS } from "../../src/cli/verbs.js";
import { runCli } from "../e2e/support.js";

/**
 * The CLI frame through the real dispatcher (`main`), in-process: every verb's options come from its
 * table in src/cli/verbs.ts, so the same rules hold for all of them. No test here reaches an API:
 * each case ends at a usage error, at `--help`, or at the config file that the empty working
 * directory does not have (which proves the options were accepted).
 */

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "cli-frame-"));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

const run = (args: string[]) => runCli(args, { cwd, env: {} });

function usageError(verb: string, message: string): string {
  return `error [E_USAGE]: ${verb}: ${message}\nRun 'cf-oauth-gitops ${verb} --help' for its options.\n`;
}

describe("unknown options", () => {
  it.each(VERBS.map((v) => v.name))("%s refuses an unknown option with exit 1", async (verb) => {
    const result = await run([verb, "--no-such-option"]);
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: usageError(verb, "unknown option --no-such-option"),
    });
  });

  it("suggests the option meant: a near spelling, or the one option a prefix starts", async () => {
    expect((await run(["plan", "--formt", "json"])).stderr).toBe(
      usageError("plan", "unknown option --formt; did you mean --format?"),
    );
    expect((await run(["plan", "--detailed"])).stderr).toBe(
      usageError("plan", "unknown option --detailed; did you mean --detailed-exitcode?"),
    );
    expect((await run(["rotate", "--clients", "a"])).stderr).toBe(
      usageError("rotate", "unknown option --clients; did you mean --client?"),
    );
    expect((await run(["apply", "-C", "x.yaml"])).stderr).toBe(
      usageError("apply", "unknown option -C; did you mean -c?"),
    );
  });

  it("demo no longer ignores what it does not know", async () => {
    const result = await run(["demo", "--kep"]);
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: usageError("demo", "unknown option --kep; did you mean --keep?"),
    });
  });

  it("refuses positional arguments, a flag given a value, a missing value", async () => {
    expect((await run(["validate", "extra.yaml"])).stderr).toBe(
      usageError("validate", "unexpected argument 'extra.yaml': validate takes options only"),
    );
    expect((await run(["apply", "--force=yes"])).stderr).toBe(usageError("apply", "--force takes no value"));
    expect((await run(["plan", "--out"])).stderr).toBe(usageError("plan", "--out needs a value (FILE)"));
    expect((await run(["plan", "--out", "--force"])).stderr).toBe(
      usageError("plan", "--out needs a value (FILE); to give one that starts with '-', write --out=--force"),
    );
  });

  it("suggests the command meant", async () => {
    const result = await run(["plna"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cf-oauth-gitops: unknown command 'plna'; did you mean 'plan'\?\n/);
  });
});

describe("option values", () => {
  it("--shutdown-timeout takes the project's durations and refuses a bare number", async () => {
    expect(await run(["run", "--shutdown-timeout", "30"])).toEqual({
      code: 1,
      stdout: "",
      stderr: usageError("run", "--shutdown-timeout: `30` is not a duration: add a unit, e.g. `30s`"),
    });
    expect((await run(["run", "--shutdown-timeout", "2h"])).stderr).toBe(
      usageError("run", "--shutdown-timeout: 2h is not between 1s and 1h"),
    );
    expect((await run(["run", "--shutdown-timeout", "0s"])).stderr).toBe(
      usageError("run", "--shutdown-timeout: 0s is not between 1s and 1h"),
    );
    // Accepted: the run gets as far as the config file, which this directory does not have.
    const accepted = await run(["run", "--shutdown-timeout=1m30s"]);
    expect(accepted.code).toBe(1);
    expect(accepted.stderr).toContain("[E_CONFIG_NOT_FOUND]");
  });

  it("--concurrency has one rule, for apply and run alike", async () => {
    for (const verb of ["apply", "run"]) {
      expect((await run([verb, "--concurrency", "0"])).stderr).toBe(
        usageError(verb, "--concurrency: 0 is not between 1 and 64"),
      );
      expect((await run([verb, "--concurrency", "65"])).stderr).toBe(
        usageError(verb, "--concurrency: 65 is not between 1 and 64"),
      );
      expect((await run([verb, "--concurrency", "0x10"])).stderr).toBe(
        usageError(verb, "--concurrency: '0x10' is not a whole number (1 to 64)"),
      );
      const accepted = await run([verb, "--concurrency", "64"]);
      expect(accepted.stderr).toContain("[E_CONFIG_NOT_FOUND]");
    }
  });

  it("a choice names its words and suggests the near one", async () => {
    expect((await run(["plan", "--format", "jsno"])).stderr).toBe(
      usageError("plan", "--format must be text, markdown or json, not 'jsno'; did you mean json?"),
    );
    expect((await run(["rotate", "--format", "markdown"])).stderr).toBe(
      usageError("rotate", "--format must be text or json, not 'markdown'"),
    );
    expect((await run(["plan", "--log-level", "verbose"])).stderr).toBe(
      usageError(
        "plan",
        "--log-level must be trace, debug, info, warn, error, fatal or silent, not 'verbose'",
      ),
    );
  });

  it("rules between options are checked before the verb runs", async () => {
    expect((await run(["rotate", "--now", "--finish"])).stderr).toBe(
      usageError("rotate", "--now and --finish cannot be combined"),
    );
    expect((await run(["rotate", "--compromised"])).stderr).toBe(
      usageError("rotate", "--compromised needs --client NAME: it never applies to every client implicitly"),
    );
    expect((await run(["schema", "--config", "--reference"])).stderr).toBe(
      usageError("schema", "--config and --reference cannot be combined"),
    );
  });
});

describe("--help", () => {
  it.each(VERBS.map((v) => v.name))("%s --help shows every option of its table, exit 0", async (verb) => {
    const spec = VERBS.find((v) => v.name === verb);
    for (const args of [
      [verb, "--help"],
      [verb, "--no-such-option", "-h"],
    ]) {
      const result = await run(args);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe("");
      expect(result.stdout).toMatch(new RegExp(`^usage: cf-oauth-gitops ${verb} `));
      for (const name of Object.keys(spec?.options ?? {})) expect(result.stdout).toContain(`--${name}`);
      expect(result.stdout).toContain("-h, --help");
    }
  });

  it("the top-level usage lists every verb", async () => {
    const result = await run(["--help"]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    for (const verb of VERBS) {
      expect(lines.filter((l) => l.startsWith(`  ${verb.name} `) && l.endsWith(verb.summary))).toHaveLength(
        1,
      );
    }
  });
});

it("the default config file is the one the config loader means", () => {
  expect(DEFAULT_CONFIG_FILE).toBe(CONFIG_DEFAULT);
});

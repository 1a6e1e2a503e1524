import { execFile } from "node:child_process";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/dispatch.js";
import { systemClock } from "../../src/cli/io.js";
import { desiredStateJsonSchema } from "../../src/config/index.js";
import { programArgs } from "../helpers/program.js";
import { ROOT } from "./support.js";

const run = promisify(execFile);

/** The CLI as a real process, with no Cloudflare credentials in its environment. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" };
  try {
    const { stdout, stderr } = await run(process.execPath, [...programArgs(), ...args], { cwd: ROOT, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The CLI in-process, streams captured. */
async function inProcess(
  args: string[],
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (c: Buffer) => out.push(c));
  stderr.on("data", (c: Buffer) => err.push(c));
  const code = await main(args, {
    env: {},
    stdout,
    stderr,
    cwd,
    signal: new AbortController().signal,
    clock: systemClock,
  });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe("cf-oauth-gitops validate (child process)", () => {
  it("accepts the examples: exit 0 and a one-line summary", async () => {
    const result = await cli(["validate", "-c", "config/examples/cf-oauth-gitops.yaml"]);
    expect(result).toEqual({ code: 0, stdout: "ok: 5 clients in 1 accounts from 3 files\n", stderr: "" });
  });

  it("prints a located config problem on stderr and exits 1", async () => {
    const result = await cli([
      "validate",
      "--config",
      "test/fixtures/bad/config-unknown-key/cf-oauth-gitops.yaml",
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      "test/fixtures/bad/config-unknown-key/cf-oauth-gitops.yaml:4:1: prun: unknown key `prun`; did you mean `prune`? [E_UNKNOWN_KEY]\n1 problem found\n",
    );
  });

  it("prints a problem found across desired files, one line each", async () => {
    const result = await cli([
      "validate",
      "-c",
      "test/fixtures/bad/duplicate-name-across-files/cf-oauth-gitops.yaml",
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr.split("\n")[0]).toBe(
      "test/fixtures/bad/duplicate-name-across-files/desired/b.yaml:8:18: clients[1].client_name: client_name `shared-app` in account 0123456789abcdef0123456789abcdef is declared twice: first at test/fixtures/bad/duplicate-name-across-files/desired/a.yaml:2:18 [E_DUPLICATE_NAME]",
    );
  });
});

describe("cf-oauth-gitops validate and schema (in process)", () => {
  it("looks for cf-oauth-gitops.yaml in the working directory by default", async () => {
    const result = await inProcess(["validate"], join(ROOT, "config/examples"));
    expect(result).toMatchObject({ code: 0, stdout: "ok: 5 clients in 1 accounts from 3 files\n" });
  });

  it("fails with the config's own code when there is no config file", async () => {
    const result = await inProcess(["validate"], join(ROOT, "test"));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("[E_CONFIG_NOT_FOUND]");
  });

  it("prints warnings on stderr but still succeeds", async () => {
    const result = await inProcess(["validate", "-c", "test/fixtures/warnings/cf-oauth-gitops.yaml"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("ok: 1 clients in 1 accounts from 1 files\n");
    expect(result.stderr).toBe(
      "test/fixtures/warnings/desired/public.yaml:9:17: clients[0].visibility: warning: `visibility: public` needs `logo_uri`: the API refuses to promote a client without it [W_PUBLIC_NEEDS_LOGO]\n",
    );
  });

  it("refuses unknown options", async () => {
    const result = await inProcess(["validate", "--bogus"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("E_USAGE");
  });

  it("prints the desired-state JSON Schema, or the config's with --config", async () => {
    const desired = await inProcess(["schema"]);
    expect(desired.code).toBe(0);
    expect(JSON.parse(desired.stdout)).toEqual(desiredStateJsonSchema());
    const config = await inProcess(["schema", "--config"]);
    expect(JSON.parse(config.stdout)).toMatchObject({
      title: "cf-oauth-gitops config",
      required: ["desired"],
    });
  });
});

import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { program, ROOT, sourceProgramArgs } from "../helpers/program.js";

/**
 * On a fresh machine the only `node_modules` is the checkout's. Tests spawn the CLI with a temporary
 * directory as its working directory, so a loader named by bare package name (`--import tsx`) is
 * resolved from there and fails with ERR_MODULE_NOT_FOUND; it used to work only where some other
 * `node_modules` sat above the temporary directory. test/helpers/program.ts resolves it by absolute
 * path, and these tests keep it that way.
 */

const SELF = fileURLToPath(import.meta.url);
/** `--import tsx`, `"--import", "tsx"` (also across lines), `'--import', 'tsx'`: the loader by bare name. */
const BARE_LOADER = /--import["'`]?\s*,?\s*["'`]?tsx\b/g;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (/\.(ts|mjs|js|sh)$/.test(entry.name) && path !== SELF) out.push(path);
  }
  return out;
}

function run(
  args: string[],
  cwd: string,
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...extraEnv };
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, env }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe("tests run on a fresh machine", () => {
  it("no test or benchmark names the tsx loader by bare package name", async () => {
    const offenders: string[] = [];
    for (const dir of ["test", "bench"]) {
      for (const path of await sourceFiles(join(ROOT, dir))) {
        const text = await readFile(path, "utf8");
        for (const match of text.matchAll(BARE_LOADER)) {
          const line = text.slice(0, match.index).split("\n").length;
          offenders.push(`${relative(ROOT, path)}:${line}: ${match[0].replace(/\s+/g, " ")}`);
        }
      }
    }
    expect(offenders, "use test/helpers/program.ts instead").toEqual([]);
  });

  it("the CLI, built, from source and on a moved clock, starts from a directory outside the checkout", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "cf-fresh-"));
    onTestFinished(() => rm(cwd, { recursive: true, force: true }));
    // The probe is only worth something where a bare name does not resolve.
    const bare = await run(["--import", "tsx", "-e", ""], cwd);
    expect(
      bare.stderr,
      `tsx resolves by bare name from ${cwd}: set TMPDIR to a directory with no node_modules above it`,
    ).toContain("ERR_MODULE_NOT_FOUND");

    const version = /^cf-oauth-gitops \d+\.\d+\.\d+\n$/;
    for (const [label, cli] of [
      ["production (built when fresh)", program()],
      ["production from source", { args: sourceProgramArgs(), env: {} }],
      ["test entry point on a moved clock", program({ clockOffset: "1d" })],
    ] as const) {
      const result = await run([...cli.args, "--version"], cwd, cli.env);
      expect(result, `${label}: ${result.stderr}`).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(version),
      });
    }
  });
});

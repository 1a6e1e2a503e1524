import { execFile } from "node:child_process";
import { chmod, cp, mkdtemp, readFile, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { control, READ_TOKEN, useEmulator } from "../helpers/emulator.js";
import { ROOT } from "../e2e/support.js";
import { programArgs } from "../helpers/program.js";

/**
 * The CI kit's commands run for real: the shell of each step that calls `cf-oauth-gitops` is
 * executed with bash against the emulator and a READ-ONLY token, with `cf-oauth-gitops` on PATH as
 * a shim to this checkout. What a reviewer would see (the markdown plan, the exit-code decision) is
 * asserted, and the emulator proves nothing was written.
 */
const emulator = useEmulator();

interface Step {
  name?: string;
  run?: string;
}

async function workspace(): Promise<{ dir: string; bin: string }> {
  const dir = await mkdtemp(join(tmpdir(), "cfog-ci-kit-"));
  await cp(join(ROOT, "config/examples"), dir, { recursive: true });
  const bin = join(dir, "bin");
  await mkdir(bin);
  const shim = join(bin, "cf-oauth-gitops");
  await writeFile(
    shim,
    `#!/bin/sh\nexec "${process.execPath}" ${programArgs()
      .map((a) => `"${a}"`)
      .join(" ")} "$@"\n`,
  );
  await chmod(shim, 0o755);
  return { dir, bin };
}

function runBash(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-eo", "pipefail", "-c", script],
      { cwd, env, maxBuffer: 8 << 20 },
      (error, stdout, stderr) => {
        resolve({
          code: error ? (typeof error.code === "number" ? error.code : -1) : 0,
          out: stdout + stderr,
        });
      },
    );
  });
}

describe("examples/github-actions/plan.yml", () => {
  it("validates, plans in markdown with a read-only token, records exit code 2 and writes nothing", async () => {
    const workflow = parse(await readFile(join(ROOT, "examples/github-actions/plan.yml"), "utf8")) as {
      jobs: { plan: { steps: Step[] } };
    };
    const steps = workflow.jobs.plan.steps.filter((s) => s.run?.includes("cf-oauth-gitops "));
    expect(steps.map((s) => s.name)).toEqual(["Validate", "Plan"]);
    const { dir, bin } = await workspace();
    const output = join(dir, "github-output");
    const summary = join(dir, "step-summary");
    await writeFile(output, "");
    await writeFile(summary, "");
    const emu = emulator();
    const before = await control<{ by_method: Record<string, number> }>(emu, "GET", "stats");
    const env = {
      PATH: `${bin}:${process.env["PATH"] ?? ""}`,
      HOME: process.env["HOME"] ?? "",
      CLOUDFLARE_BASE_URL: emu.url,
      CLOUDFLARE_API_TOKEN: READ_TOKEN,
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
    };
    for (const step of steps) {
      const result = await runBash(step.run ?? "", dir, env);
      expect(result.code, `${step.name}: ${result.out}`).toBe(0);
    }
    expect(await readFile(output, "utf8")).toBe("exitcode=2\n");
    const markdown = await readFile(join(dir, "plan.md"), "utf8");
    expect(markdown).toContain("<details>");
    expect(markdown).toMatch(/4 to create/);
    expect(await readFile(summary, "utf8")).toBe(markdown);
    const after = await control<{ by_method: Record<string, number> }>(emu, "GET", "stats");
    for (const method of ["POST", "PATCH", "DELETE"]) {
      expect(after.by_method[method] ?? 0, method).toBe(before.by_method[method] ?? 0);
    }
  });
});

describe("examples/gitlab-ci/.gitlab-ci.yml", () => {
  it("runs the plan job's script lines against the emulator and keeps the markdown artifact", async () => {
    const pipeline = parse(await readFile(join(ROOT, "examples/gitlab-ci/.gitlab-ci.yml"), "utf8")) as {
      plan: { script: string[] };
    };
    const lines = pipeline.plan.script.filter((l) => !l.startsWith("npm install"));
    const { dir, bin } = await workspace();
    const emu = emulator();
    const result = await runBash(lines.join("\n"), dir, {
      PATH: `${bin}:${process.env["PATH"] ?? ""}`,
      HOME: process.env["HOME"] ?? "",
      CLOUDFLARE_BASE_URL: emu.url,
      CLOUDFLARE_API_TOKEN: READ_TOKEN,
    });
    expect(result.code, result.out).toBe(0);
    expect(result.out).toContain("**Plan: 4 to create, 0 to update, 0 to delete.**");
    expect(await readFile(join(dir, "plan.md"), "utf8")).toContain("<details>");
  });
});

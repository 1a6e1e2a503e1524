import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { ACCOUNT_A, startTestEmulator } from "../helpers/emulator.js";
import { program, ROOT } from "../helpers/program.js";
import { cliEnv, makeWorkspace } from "../e2e/support.js";

/**
 * Each verb loads only the code it uses (src/cli/dispatch.ts). The real program runs with
 * test/helpers/load-recorder.mjs, which writes down every module the process loads; the test then
 * reads that list. Built or from source, whichever test/helpers/program.ts picks, the same holds.
 */

const RECORDER = pathToFileURL(join(ROOT, "test", "helpers", "load-recorder.mjs")).href;

interface Loaded {
  code: number;
  stdout: string;
  stderr: string;
  /** Modules of this repository, as `cli/plan`, `engine/daemon` (no extension, no src/ or dist/). */
  own: string[];
  /** npm packages any module was loaded from. */
  packages: string[];
  /** Files of npm packages, as `undici/lib/dispatcher/agent.js` (CommonJS ones included: see the recorder). */
  dependencyFiles: string[];
}

async function loaded(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<Loaded> {
  const dir = await mkdtemp(join(tmpdir(), "cli-loads-"));
  const log = join(dir, "loaded.txt");
  try {
    const { args: programArgs } = program();
    // The recorder is registered last, so its hook runs first and sees every module, tsx's included.
    const argv = [...programArgs.slice(0, -1), "--import", RECORDER, ...programArgs.slice(-1), ...args];
    const childEnv = { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env };
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        argv,
        { cwd, env: { ...childEnv, LOAD_RECORDER_FILE: log } },
        (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
        },
      );
    });
    const urls = (await readFile(log, "utf8")).split("\n").filter((u) => u !== "");
    const own = new Set<string>();
    const packages = new Set<string>();
    const dependencyFiles = new Set<string>();
    for (const url of urls) {
      const dependency = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
      if (dependency?.[1]) {
        packages.add(dependency[1]);
        dependencyFiles.add(`${dependency[1]}/${dependency[2]}`);
        continue;
      }
      const mine = /\/(?:src|dist)\/(.+)\.(?:ts|js)$/.exec(url);
      if (mine?.[1] && url.startsWith(pathToFileURL(ROOT).href)) own.add(mine[1]);
    }
    // tsx itself is how the sources run, not something a verb loads.
    packages.delete("tsx");
    packages.delete("esbuild");
    packages.delete("get-tsconfig");
    packages.delete("resolve-pkg-maps");
    return {
      ...result,
      own: [...own].sort(),
      packages: [...packages].sort(),
      dependencyFiles: [...dependencyFiles].sort(),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the dispatcher itself is made of: the options tables and the frame that reads them. */
const FRAME = [
  "cli/commands",
  "cli/dispatch",
  "cli/frame",
  "cli/io",
  "cli/main",
  "cli/verbs",
  "config/duration",
  "config/suggest",
  "emulator/behaviour",
  "errors",
];

/**
 * undici's index, and the parts of undici only it loads: fetch and WebSocket, the cache and mock
 * agents. The API client needs its agents and `request` alone (src/undici.ts).
 */
const UNDICI_UNUSED = /^undici\/(index\.js$|lib\/(web|mock|cache|interceptor)\/)/;

const DAEMON_ONLY = /^(server\/|engine\/daemon|engine\/triggers\/|engine\/sources\/|cli\/run$)/;
const DAEMON_PACKAGES = ["chokidar", "node-cron", "pino-pretty", "prom-client"];

describe("what each verb loads", () => {
  it("--version loads the dispatcher alone", async () => {
    const result = await loaded(["--version"]);
    expect(result.code).toBe(0);
    expect(result.own).toEqual(["cli/dispatch", "cli/io", "cli/main"]);
    expect(result.packages).toEqual([]);
  });

  it("--help and a usage error load no verb and no dependency", async () => {
    for (const args of [["--help"], ["plan", "--help"], ["run", "-h"], ["apply", "--forse"]]) {
      const result = await loaded(args);
      expect(result.code, args.join(" ")).toBe(args[1] === "--forse" ? 1 : 0);
      expect(result.own, args.join(" ")).toEqual(FRAME);
      expect(result.packages, args.join(" ")).toEqual([]);
    }
  });

  it("validate loads the config code, no API client, engine or daemon", async () => {
    const result = await loaded(["validate", "-c", "config/examples/cf-oauth-gitops.yaml"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.own).toContain("cli/validate");
    expect(
      result.own.filter((m) => /^(cloudflare\/(client|transport|index)|engine\/|server\/|render\/)/.test(m)),
    ).toEqual([]);
    expect(result.packages).not.toContain("undici");
    expect(result.packages).not.toContain("pino");
    // The example files are all in the plain subset: the fast reader reads them, without `yaml`.
    expect(result.own).toContain("config/fast-yaml");
    expect(result.packages).not.toContain("yaml");
  });

  it("plan loads neither the daemon (server, metrics, watch, cron) nor git", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, []);
    const result = await loaded(["plan", "-c", ws.config], cliEnv(emu), ws.dir);
    expect(result.code, result.stderr).toBe(0);
    expect(result.own).toContain("cli/plan");
    expect(result.own.filter((m) => DAEMON_ONLY.test(m) || m === "engine/git-source")).toEqual([]);
    // The workspace's config gives no rotation schedule, so nothing checks a cron expression.
    expect(result.packages.filter((p) => DAEMON_PACKAGES.includes(p))).toEqual([]);
    expect(result.dependencyFiles).toContain("undici/lib/dispatcher/env-http-proxy-agent.js");
    expect(result.dependencyFiles.filter((f) => UNDICI_UNUSED.test(f))).toEqual([]);
    expect(result.packages).not.toContain("yaml");
  });

  it("export loads the API client but not the sinks' wiring or code", async () => {
    const emu = await startTestEmulator();
    const result = await loaded(["export", "--account", ACCOUNT_A], cliEnv(emu));
    expect(result.code, result.stderr).toBe(0);
    expect(result.packages).toContain("undici");
    expect(result.dependencyFiles.filter((f) => UNDICI_UNUSED.test(f))).toEqual([]);
    expect(result.own).not.toContain("cli/common");
    expect(result.packages).not.toContain("age-encryption");
  });
});

/**
 * Benchmark: what starting the CLI costs, and what the daemon costs idle, each figure beside its
 * reference measured in the same run.
 *
 * - `cf-oauth-gitops --version` against `node -e 0`: the floor any Node program pays (target ≤ 1.5×).
 * - A cold `plan` of a converged account of 5 clients (secrets in the file sink) against a bare Node
 *   script that makes the same list request (`GET /accounts/:id/oauth_clients`, with `fetch`) to the
 *   same emulator (target ≤ 1.5×). The baseline build's `plan` is shown against the same script.
 * - `validate` of config/examples against the baseline build's (target ≤ 0.5×).
 * - Two idle daemons (`run`, built, 5 clients, interval 1h), this build and the baseline's, side by
 *   side for the same window: RSS at the end (target ≤ 80 MiB) and CPU (user + system) over the window.
 *
 * Every command runs as its own process from the built program (`dist/`, built first unless
 * `--no-build`), in turn: one of each, then again, `--runs` times; medians are shown with the
 * fastest in brackets. Wall time on a shared machine only grows with load, so the ratios are what to
 * read.
 *
 *   npx tsx bench/cli-start.ts [--runs 11] [--idle-seconds 60] [--no-build]
 *
 * The baseline is the build of a git revision, by default {@link BASELINE_REVISION} (main before the
 * CLI frame): `git archive` of it is unpacked under this benchmark's temporary directory, given this
 * checkout's node_modules and built there. Environment:
 *   CLI_BENCH_BASELINE_REV    another revision to build as the baseline
 *   CLI_BENCH_BASELINE_MAIN   a built `dist/cli/main.js` to use as the baseline instead (nothing built)
 *   CLI_BENCH_IDLE_SECONDS    the idle window (default 60; e.g. 10 for a quick check)
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startEmulator, type EmulatorHandle } from "../src/emulator/index.js";
import { procSample, type ProcSample } from "./proc.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CURRENT_MAIN = join(ROOT, "dist", "cli", "main.js");
/** main just before the CLI frame (src/cli/frame.ts) and the lazy per-command loading. */
const BASELINE_REVISION = "8d6764d432aed922eb69cbeb4096af2f2194e91d";
const ACCOUNT = "0123456789abcdef0123456789abcdef";
const TOKEN = "bench-token";
const CLIENTS = 5;
/** The idle daemon's RSS target, in MiB (as bench/plan.ts counts memory). */
const RSS_TARGET_MIB = 80;

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "11" },
    "idle-seconds": { type: "string" },
    "no-build": { type: "boolean", default: false },
  },
});
const RUNS = Number(values.runs);
const IDLE_SECONDS = Number(values["idle-seconds"] ?? process.env["CLI_BENCH_IDLE_SECONDS"] ?? 60);

function tsc(cwd: string): void {
  const bin = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [bin, "-p", "tsconfig.build.json"], { cwd, stdio: "inherit" });
}

/** The baseline's built main.js: given, or `git archive` of a revision built under `work`. */
async function baselineMain(work: string): Promise<{ main: string; label: string }> {
  const given = process.env["CLI_BENCH_BASELINE_MAIN"];
  if (given) return { main: given, label: given };
  const rev = process.env["CLI_BENCH_BASELINE_REV"] ?? BASELINE_REVISION;
  const dir = join(work, "baseline");
  await mkdir(dir, { recursive: true });
  execFileSync("sh", ["-c", 'git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', "sh", ROOT, rev, dir]);
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  tsc(dir);
  return { main: join(dir, "dist", "cli", "main.js"), label: `build of ${rev.slice(0, 12)}` };
}

function clientYaml(i: number): string {
  const name = `app-${i}`;
  return `  - client_name: ${name}
    token_endpoint_auth_method: client_secret_basic
    grant_types: [authorization_code, refresh_token]
    response_types: [code]
    redirect_uris: [https://${name}.example.com/callback]
    scopes: [account-settings.read, user-details.read]
`;
}

async function writeWorkspace(dir: string): Promise<void> {
  await mkdir(join(dir, "desired"), { recursive: true });
  let text = `account_id: "${ACCOUNT}"\nclients:\n`;
  for (let i = 0; i < CLIENTS; i++) text += clientYaml(i);
  await writeFile(join(dir, "desired", "apps.yaml"), text);
  await writeFile(
    join(dir, "cf-oauth-gitops.yaml"),
    [
      `account_id: "${ACCOUNT}"`,
      "desired: ./desired",
      "state_dir: ./state",
      "interval: 1h",
      "sinks: {default: {type: file, dir: ./secrets}}",
      "safety: {max_change_percent: 100}",
      "",
    ].join("\n"),
  );
}

/** The reference for `plan`: the one request a converged plan makes, with nothing around it. */
const BARE_SCRIPT = `const res = await fetch(\`\${process.env.CLOUDFLARE_BASE_URL}/accounts/${ACCOUNT}/oauth_clients\`, {
  headers: { authorization: \`Bearer \${process.env.CLOUDFLARE_API_TOKEN}\` },
});
const body = await res.json();
if (!res.ok || body.result.length !== ${CLIENTS}) process.exit(1);
process.stdout.write(\`\${body.result.length} clients\\n\`);
`;

interface Case {
  name: string;
  args: string[];
  cwd: string;
  /** The exit code the command must give, or the measurement is wrong. */
  code: number;
}

/** Runs one process to its exit; milliseconds from spawn to exit. Async: the emulator is in this process. */
function timed(c: Case, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, c.args, { cwd: c.cwd, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("exit", (code) => {
      const ms = performance.now() - started;
      if (code !== c.code) reject(new Error(`${c.name}: exit ${code}, expected ${c.code}\n${stderr}`));
      else resolve(ms);
    });
  });
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Starts `run` from `main` in `dir`; resolves once its first run has finished. */
function startDaemon(main: string, dir: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [main, "run", "-c", "cf-oauth-gitops.yaml", "--listen", "127.0.0.1:0"],
    {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = JSON.parse(buffer.slice(0, nl)) as { msg?: string; result?: string };
        buffer = buffer.slice(nl + 1);
        if (line.msg?.startsWith("run finished")) {
          if (line.result === "ok") resolve(child);
          else reject(new Error(`${main}: first run was ${line.result}`));
        }
      }
    });
    child.once("exit", (code) => reject(new Error(`${main}: daemon exited (${code}) before its first run`)));
  });
}

const ms = (n: number) => `${n.toFixed(0)} ms`;
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0];
  const work = await mkdtemp(join(tmpdir(), "cf-oauth-gitops-bench-cli-"));
  const emu: EmulatorHandle = await startEmulator({ port: 0, seed: 5, tokens: [TOKEN] });
  const daemons: ChildProcess[] = [];
  try {
    if (!values["no-build"]) tsc(ROOT);
    const baseline = await baselineMain(work);
    const account = join(work, "account");
    await writeWorkspace(account);
    await writeFile(join(work, "bare.mjs"), BARE_SCRIPT);
    const env = {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "",
      CLOUDFLARE_BASE_URL: emu.url,
      CLOUDFLARE_API_TOKEN: TOKEN,
      NO_COLOR: "1",
    };
    // Converge the account once; both builds must then plan it with no change.
    await timed({ name: "apply", args: [CURRENT_MAIN, "apply"], cwd: account, code: 0 }, env);
    const plan = (main: string) => [main, "plan", "--detailed-exitcode"];
    const validate = (main: string) => [
      main,
      "validate",
      "-c",
      join(ROOT, "config/examples/cf-oauth-gitops.yaml"),
    ];
    const cases: Case[] = [
      { name: "node -e 0", args: ["-e", "0"], cwd: work, code: 0 },
      { name: "--version", args: [CURRENT_MAIN, "--version"], cwd: work, code: 0 },
      { name: "bare", args: [join(work, "bare.mjs")], cwd: work, code: 0 },
      { name: "plan", args: plan(CURRENT_MAIN), cwd: account, code: 0 },
      { name: "plan (baseline)", args: plan(baseline.main), cwd: account, code: 0 },
      { name: "validate", args: validate(CURRENT_MAIN), cwd: work, code: 0 },
      { name: "validate (baseline)", args: validate(baseline.main), cwd: work, code: 0 },
    ];
    const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    for (const c of cases) await timed(c, env); // warm the file cache; not counted
    for (let i = 0; i < RUNS; i++) {
      for (const c of cases) samples.get(c.name)?.push(await timed(c, env));
    }
    const m = (name: string) => median(samples.get(name) ?? []);
    const best = (name: string) => Math.min(...(samples.get(name) ?? []));
    const shown = (name: string) => `${ms(m(name))} (${ms(best(name))})`;

    // Idle: this build's daemon and the baseline's, each on its own copy of the converged workspace.
    const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    for (const [i, main] of [CURRENT_MAIN, baseline.main].entries()) {
      const dir = join(work, `daemon-${i}`);
      await cp(account, dir, { recursive: true });
      daemons.push(await startDaemon(main, dir, env));
    }
    const before = await Promise.all(daemons.map((d) => procSample(d.pid as number)));
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const after = await Promise.all(daemons.map((d) => procSample(d.pid as number)));
    const idle = daemons.map((_, i) => {
      const a = after[i] as ProcSample;
      const cpuSeconds = (a.cpuTicks - (before[i] as ProcSample).cpuTicks) / ticksPerSecond;
      return { cpuSeconds, rss: a.rssKiB, hwm: a.hwmKiB };
    });
    const [now, then] = idle as [(typeof idle)[number], (typeof idle)[number]];

    const ratio = (a: number, b: number) => (a / b).toFixed(2);
    const rows: [string, string, string, string, string][] = [
      [
        "`--version`",
        shown("--version"),
        `\`node -e 0\`: ${shown("node -e 0")}`,
        ratio(m("--version"), m("node -e 0")),
        "≤ 1.5",
      ],
      [
        `cold \`plan\`, converged account of ${CLIENTS} clients`,
        shown("plan"),
        `bare Node script, same list request: ${shown("bare")}`,
        ratio(m("plan"), m("bare")),
        "≤ 1.5",
      ],
      [
        `cold \`plan\`, baseline (${baseline.label})`,
        shown("plan (baseline)"),
        `bare Node script: ${shown("bare")}`,
        ratio(m("plan (baseline)"), m("bare")),
        "",
      ],
      [
        "`validate` of config/examples",
        shown("validate"),
        `baseline: ${shown("validate (baseline)")}`,
        ratio(m("validate"), m("validate (baseline)")),
        "≤ 0.5",
      ],
      [
        `idle daemon, ${CLIENTS} clients, after ${IDLE_SECONDS} s: RSS (peak)`,
        `${mib(now.rss)} (${mib(now.hwm)})`,
        `limit ${RSS_TARGET_MIB} MiB; baseline ${mib(then.rss)} (${mib(then.hwm)})`,
        ratio(now.rss / 1024, RSS_TARGET_MIB),
        "≤ 1",
      ],
      [
        `idle daemon, ${CLIENTS} clients, ${IDLE_SECONDS} s: CPU (user + system)`,
        `${now.cpuSeconds.toFixed(2)} s (${((100 * now.cpuSeconds) / IDLE_SECONDS).toFixed(2)} %)`,
        `baseline: ${then.cpuSeconds.toFixed(2)} s (${((100 * then.cpuSeconds) / IDLE_SECONDS).toFixed(2)} %)`,
        then.cpuSeconds > 0 ? ratio(now.cpuSeconds, then.cpuSeconds) : "",
        "",
      ],
    ];
    console.log(`load average at start: ${loadAtStart?.toFixed(2)}, at the end: ${loadavg()[0]?.toFixed(2)}`);
    console.log(
      `bench/cli-start: node dist/cli/main.js against ${baseline.label}, emulator in-process; ` +
        `${RUNS} runs of each command in turn, median (fastest)`,
    );
    console.log("| measure | value | reference | value/reference | target |");
    console.log("|---|---|---|---|---|");
    for (const row of rows) console.log(`| ${row.join(" | ")} |`);
  } finally {
    for (const d of daemons) d.kill("SIGTERM");
    await Promise.all(
      daemons.map((d) => new Promise((r) => (d.exitCode !== null ? r(null) : d.once("exit", r)))),
    );
    await emu.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();

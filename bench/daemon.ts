/**
 * Benchmark: the daemon (`run`) as a real process against the embedded emulator.
 *
 * - Commit to live, file watch: a desired file is rewritten (one client's redirect URI changes) and
 *   the clock runs until the emulator serves the new value. 20 changes; p50 and p95.
 * - Commit to live, webhook: a commit is pushed to a local bare repository, a signed `POST /hooks/git`
 *   follows at once, and the clock (started when the push returned) runs until the emulator serves
 *   the new value. 20 commits; p50 and p95.
 * - Idle: both daemons left alone for 60 s (interval 1h): CPU time from /proc/<pid>/stat
 *   (utime + stime) and RSS from /proc/<pid>/status (VmRSS at the end, VmHWM the peak).
 *
 *   npx tsx bench/daemon.ts [--commits 20] [--idle-seconds 60] [--dist]
 *
 * `--dist` runs the built program (`npm run build` first) instead of the TypeScript sources through
 * tsx, which is what a deployment runs and costs less memory. Prints a markdown table.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startEmulator, type EmulatorHandle } from "../src/emulator/index.js";
import { sourceProgramArgs } from "../test/helpers/program.js";
import { procSample, type ProcSample } from "./proc.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ACCOUNT = "0123456789abcdef0123456789abcdef";
const TOKEN = "bench-token";
const HOOK_SECRET = "bench-webhook-secret-0123456789";

const { values } = parseArgs({
  options: {
    commits: { type: "string", default: "20" },
    "idle-seconds": { type: "string", default: "60" },
    dist: { type: "boolean", default: false },
  },
});
const COMMITS = Number(values.commits);
const IDLE_SECONDS = Number(values["idle-seconds"]);

function clientsYaml(version: number): string {
  const entry = (name: string, redirect: string) =>
    `  - client_name: ${name}\n    token_endpoint_auth_method: client_secret_post\n    grant_types: [authorization_code]\n` +
    `    response_types: [code]\n    redirect_uris: [${redirect}]\n    scopes: [openid]\n`;
  const others = ["beta", "gamma", "delta", "epsilon"]
    .map((n) => entry(n, `https://${n}.example/cb`))
    .join("");
  return `account_id: ${ACCOUNT}\nclients:\n${entry("alpha", `https://alpha.example/v${version}`)}${others}`;
}

async function writeConfig(dir: string, extra: string): Promise<void> {
  await writeFile(
    join(dir, "cf-oauth-gitops.yaml"),
    [`account_id: ${ACCOUNT}`, "desired: ./desired", "state_dir: ./state", "interval: 1h", extra].join("\n") +
      "\n",
  );
}

interface Daemon {
  child: ChildProcess;
  url: string;
  firstRun: Promise<void>;
}

function startDaemon(cwd: string, emu: EmulatorHandle): Promise<Daemon> {
  const program = values.dist ? [join(ROOT, "dist/cli/main.js")] : sourceProgramArgs();
  const child = spawn(
    process.execPath,
    [...program, "run", "-c", "cf-oauth-gitops.yaml", "--listen", "127.0.0.1:0"],
    {
      cwd,
      env: {
        PATH: process.env["PATH"] ?? "",
        HOME: process.env["HOME"] ?? "",
        CLOUDFLARE_BASE_URL: emu.url,
        CLOUDFLARE_API_TOKEN: TOKEN,
        HOOK_SECRET,
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  return new Promise((resolve, reject) => {
    let buffer = "";
    let url = "";
    let ran: () => void = () => undefined;
    const firstRun = new Promise<void>((r) => (ran = r));
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = JSON.parse(buffer.slice(0, nl)) as { msg?: string; url?: string; result?: string };
        buffer = buffer.slice(nl + 1);
        if (line.msg === "listening" && line.url) {
          url = line.url;
          resolve({ child, url, firstRun });
        }
        if (line.msg?.startsWith("run finished")) ran();
      }
    });
    child.once("exit", (code) => reject(new Error(`daemon exited (${code}) before listening`)));
  });
}

async function alphaRedirect(emu: EmulatorHandle): Promise<string | undefined> {
  const res = await fetch(`${emu.origin}/__emulator/clients?account_id=${ACCOUNT}`);
  const clients = ((await res.json()) as { result: { client_name: string; redirect_uris?: string[] }[] })
    .result;
  return clients.find((c) => c.client_name === "alpha")?.redirect_uris?.[0];
}

/** Milliseconds from now until the emulator serves `expected` for alpha (polled every 5 ms). */
async function untilLive(emu: EmulatorHandle, expected: string, started: number): Promise<number> {
  for (;;) {
    if ((await alphaRedirect(emu)) === expected) return performance.now() - started;
    if (performance.now() - started > 60_000) throw new Error(`not live after 60 s: ${expected}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function git(cwd: string, args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: cwd,
      GIT_AUTHOR_NAME: "b",
      GIT_AUTHOR_EMAIL: "b@example.com",
      GIT_COMMITTER_NAME: "b",
      GIT_COMMITTER_EMAIL: "b@example.com",
    },
  });
}

async function postHook(url: string): Promise<void> {
  const body = JSON.stringify({ ref: "refs/heads/main" });
  const signature = `sha256=${createHmac("sha256", HOOK_SECRET).update(body).digest("hex")}`;
  const res = await fetch(`${url}/hooks/git`, {
    method: "POST",
    headers: {
      "x-github-event": "push",
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": signature,
      "content-type": "application/json",
    },
    body,
  });
  if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
}

async function benchWatch(root: string, emu: EmulatorHandle): Promise<{ daemon: Daemon; samples: number[] }> {
  const dir = join(root, "watch");
  await mkdir(join(dir, "desired"), { recursive: true });
  await writeFile(join(dir, "desired", "apps.yaml"), clientsYaml(0));
  await writeConfig(dir, "");
  const daemon = await startDaemon(dir, emu);
  await daemon.firstRun;
  const samples: number[] = [];
  for (let i = 1; i <= COMMITS; i++) {
    const started = performance.now();
    await writeFile(join(dir, "desired", "apps.yaml"), clientsYaml(i));
    samples.push(await untilLive(emu, `https://alpha.example/v${i}`, started));
    await new Promise((r) => setTimeout(r, 200));
  }
  return { daemon, samples };
}

async function benchWebhook(
  root: string,
  emu: EmulatorHandle,
): Promise<{ daemon: Daemon; samples: number[] }> {
  const dir = join(root, "git");
  const bare = join(dir, "origin.git");
  const work = join(dir, "work");
  await mkdir(dir, { recursive: true });
  git(dir, ["init", "--quiet", "--bare", "--initial-branch=main", bare]);
  git(dir, ["init", "--quiet", "--initial-branch=main", work]);
  git(work, ["remote", "add", "origin", bare]);
  const commit = async (version: number) => {
    await mkdir(join(work, "clients"), { recursive: true });
    await writeFile(
      join(work, "clients", "apps.yaml"),
      clientsYaml(version).replace(/alpha\.example/g, "alpha-git.example"),
    );
    git(work, ["add", "-A"]);
    git(work, ["commit", "--quiet", "-m", `v${version}`]);
    git(work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
  };
  await commit(0);
  await writeConfig(
    dir,
    [
      "source:",
      "  git:",
      `    url: file://${bare}`,
      "    branch: main",
      "    path: clients",
      "    interval: 1h",
      "webhook:",
      "  secret_env: HOOK_SECRET",
    ].join("\n"),
  );
  const daemon = await startDaemon(dir, emu);
  await daemon.firstRun;
  const samples: number[] = [];
  for (let i = 1; i <= COMMITS; i++) {
    await commit(i);
    const started = performance.now();
    await postHook(daemon.url);
    samples.push(await untilLive(emu, `https://alpha-git.example/v${i}`, started));
    await new Promise((r) => setTimeout(r, 200));
  }
  return { daemon, samples };
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const ms = (n: number) => `${n.toFixed(0)} ms`;
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "cf-oauth-gitops-bench-daemon-"));
  const emu = await startEmulator({ port: 0, seed: 3, tokens: [TOKEN] });
  const daemons: Daemon[] = [];
  try {
    const watch = await benchWatch(root, emu);
    daemons.push(watch.daemon);
    const hook = await benchWebhook(root, emu);
    daemons.push(hook.daemon);

    const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const before = await Promise.all(daemons.map((d) => procSample(d.child.pid as number)));
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const after = await Promise.all(daemons.map((d) => procSample(d.child.pid as number)));
    const idle = daemons.map((_, i) => {
      const cpuSeconds =
        ((after[i] as ProcSample).cpuTicks - (before[i] as ProcSample).cpuTicks) / ticksPerSecond;
      return {
        cpuSeconds,
        cpuPercent: (100 * cpuSeconds) / IDLE_SECONDS,
        rss: (after[i] as ProcSample).rssKiB,
        hwm: (after[i] as ProcSample).hwmKiB,
      };
    });

    const program = values.dist ? "node dist/cli/main.js" : "tsx src/cli/main.ts";
    const rows: [string, string][] = [
      [`commit → live, file watch, p50 (${COMMITS} changes)`, ms(percentile(watch.samples, 50))],
      [`commit → live, file watch, p95`, ms(percentile(watch.samples, 95))],
      [`commit → live, webhook, p50 (${COMMITS} commits)`, ms(percentile(hook.samples, 50))],
      [`commit → live, webhook, p95`, ms(percentile(hook.samples, 95))],
    ];
    ["watch daemon", "git daemon"].forEach((name, i) => {
      const s = idle[i] as (typeof idle)[number];
      rows.push([
        `idle ${IDLE_SECONDS} s, ${name}: CPU`,
        `${s.cpuSeconds.toFixed(2)} s (${s.cpuPercent.toFixed(2)} %)`,
      ]);
      rows.push([`idle ${IDLE_SECONDS} s, ${name}: RSS (peak)`, `${mib(s.rss)} (${mib(s.hwm)})`]);
    });
    process.stdout.write(`Daemon benchmark: ${program}, emulator in-process, ${COMMITS} commits each.\n\n`);
    process.stdout.write("| measure | value |\n|---|---|\n");
    for (const [name, value] of rows) process.stdout.write(`| ${name} | ${value} |\n`);
  } finally {
    for (const d of daemons) d.child.kill("SIGTERM");
    await Promise.all(
      daemons.map((d) => new Promise((r) => (d.child.exitCode !== null ? r(null) : d.child.once("exit", r)))),
    );
    await emu.stop();
    await rm(root, { recursive: true, force: true });
  }
}

await main();

/**
 * Benchmark: one `apply` of N creates (default 1,000 confidential clients, each with its secret
 * written to the file sink) as a real child process against the emulator held to a scaled-down rate
 * limit (default 200 requests per 20 s, so the run takes about 100 s). Cloudflare's real quota is
 * 1,200 per 300 s per credential and a spent window blocks every call until it ends (docs/API-BEHAVIOUR.md,
 * "Rate limits"), so the rate budget must keep the run just under the quota: fast, and never a 429.
 *
 *   npx tsx bench/apply.ts [--clients 1000] [--quota 200/20] [--concurrency 4]
 *
 * Requests are counted by the emulator (`GET /__emulator/stats`): a create is one request (the sink
 * write is local), plus one list per account and one scope catalogue read. Reported against the
 * quota's rate: requests per second over the whole process (start-up included) and over the span
 * from the first request to the last, and the 429 responses.
 *
 * Targets: achieved rate / quota rate at least 0.9; no 429.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startEmulator, type EmulatorHandle, type StatsSnapshot } from "../src/emulator/index.js";
import { programArgs } from "../test/helpers/program.js";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const TOKEN = "bench-token";

function parseQuota(raw: string): { quota: number; windowSeconds: number } {
  const match = /^(\d+)\/(\d+)$/.exec(raw);
  if (!match) throw new Error(`--quota must be REQUESTS/SECONDS, e.g. 200/20; got ${raw}`);
  return { quota: Number(match[1]), windowSeconds: Number(match[2]) };
}

async function writeWorkspace(dir: string, clients: number): Promise<void> {
  await mkdir(join(dir, "desired"), { recursive: true });
  let text = `account_id: "${ACCOUNT}"\nclients:\n`;
  for (let i = 0; i < clients; i++) {
    text += `  - client_name: app-${i}
    token_endpoint_auth_method: client_secret_basic
    grant_types: [authorization_code]
    response_types: [code]
    redirect_uris: [https://app-${i}.example.com/callback]
    scopes: [account-settings.read]
`;
  }
  await writeFile(join(dir, "desired", "clients.yaml"), text);
  await writeFile(
    join(dir, "cf-oauth-gitops.yaml"),
    [
      `account_id: "${ACCOUNT}"`,
      "desired: ./desired",
      "state_dir: ./state",
      "sinks: {default: {type: file, dir: ./secrets}}",
      "safety: {max_change_percent: 100}",
      "",
    ].join("\n"),
  );
}

function runApply(
  dir: string,
  emu: EmulatorHandle,
  concurrency: number,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    process.execPath,
    [...programArgs(), "apply", "-c", "cf-oauth-gitops.yaml", "--concurrency", String(concurrency)],
    {
      cwd: dir,
      env: {
        PATH: process.env["PATH"] ?? "",
        CLOUDFLARE_BASE_URL: emu.url,
        CLOUDFLARE_API_TOKEN: TOKEN,
        NO_COLOR: "1",
      },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr = (stderr + c.toString("utf8")).slice(-20_000)));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stderr })));
}

async function stats(emu: EmulatorHandle): Promise<StatsSnapshot> {
  const res = await fetch(`${emu.origin}/__emulator/stats`);
  return ((await res.json()) as { result: StatsSnapshot }).result;
}

async function mainBench(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: "string", default: "1000" },
      quota: { type: "string", default: "200/20" },
      concurrency: { type: "string", default: "4" },
    },
  });
  const clients = Number(values.clients);
  const limit = parseQuota(values.quota);
  const concurrency = Number(values.concurrency);
  // The emulator reads its clock on every API request (rate window): the first and last reads bound
  // the span in which requests arrived.
  let first: number | null = null;
  let last = 0;
  const emu = await startEmulator({
    port: 0,
    seed: 1,
    tokens: [TOKEN],
    rateLimit: limit,
    now: () => {
      const now = Date.now();
      first ??= now;
      last = now;
      return new Date(now);
    },
  });
  const dir = await mkdtemp(join(tmpdir(), "cfog-bench-apply-"));
  try {
    await writeWorkspace(dir, clients);
    console.log(`load average at start: ${loadavg()[0]?.toFixed(2)}`);
    const started = performance.now();
    const result = await runApply(dir, emu, concurrency);
    const seconds = (performance.now() - started) / 1000;
    if (result.code !== 0) throw new Error(`apply exited ${result.code}\n${result.stderr}`);
    const s = await stats(emu);
    const spanSeconds = (last - (first ?? last) || 1) / 1000;
    const rate = limit.quota / limit.windowSeconds;
    const overall = s.total / seconds;
    const active = s.total / spanSeconds;
    const creates = s.by_route["POST /accounts/:account_id/oauth_clients"] ?? 0;
    console.log(
      `bench/apply: ${clients} creates (each with a secret to the file sink), quota ${limit.quota} per ` +
        `${limit.windowSeconds} s (${rate.toFixed(1)} requests/s), concurrency ${concurrency}; ` +
        `${s.total} requests (${creates} creates), apply took ${seconds.toFixed(1)} s`,
    );
    console.log("| measure | value | limit | value/limit |");
    console.log("|---|---|---|---|");
    const row = (cells: (string | number)[]) => console.log(`| ${cells.join(" | ")} |`);
    row([
      "requests/s over the whole apply (process start to exit)",
      overall.toFixed(2),
      rate.toFixed(2),
      (overall / rate).toFixed(2),
    ]);
    row([
      "requests/s from first to last request",
      active.toFixed(2),
      rate.toFixed(2),
      (active / rate).toFixed(2),
    ]);
    row(["429 responses", s.rate_limited, 0, s.rate_limited === 0 ? "0 (none)" : "over"]);
  } finally {
    await emu.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await mainBench();

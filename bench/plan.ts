/**
 * Benchmark: plan for N desired clients against N live ones (default 10,000), and the same YAML
 * parsed alone. Prints the plan time, peak RSS, and the ratio of planning (load + validate + plan)
 * to parsing the YAML with the `yaml` package alone. Each measurement runs in its own process so
 * peak RSS belongs to that measurement only.
 *
 *   npx tsx bench/plan.ts [--clients 10000] [--runs 5] [--yaml-only]
 *
 * `--yaml-only` loads the desired state with the `yaml` package alone (`fastPath: false`), the path
 * taken by files outside the fast reader's subset (anchors, merge keys...) and by files with problems.
 *
 * Targets: plan under 1 s, peak RSS under 200 MB, ratio under 2.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseAllDocuments } from "yaml";
import { loadConfig, loadDesiredState, policyFromConfig } from "../src/config/index.js";
import { computePlan } from "../src/core/plan.js";
import type { LiveClient } from "../src/api/oauth-clients.js";

const ACCOUNT = "0123456789abcdef0123456789abcdef";

function clientYaml(i: number): string {
  return `  - client_name: app-${i}
    token_endpoint_auth_method: ${i % 5 === 0 ? "none" : "client_secret_basic"}
    grant_types: [authorization_code, refresh_token]
    response_types: [code]
    redirect_uris:
      - https://app-${i}.example.com/callback
      - https://app-${i}.example.com/callback2
    scopes: [account-settings.read, user-details.read, zone.read]
    allowed_cors_origins: [https://app-${i}.example.com]
    logo_uri: https://app-${i}.example.com/logo.png
`;
}

/** The live twin of a desired client: equal except every 10th, which drifted (so the plan has work). */
function liveClient(i: number): LiveClient {
  return {
    client_id: i.toString(16).padStart(32, "0"),
    visibility: "private",
    client_name: `app-${i}`,
    token_endpoint_auth_method: i % 5 === 0 ? "none" : "client_secret_basic",
    grant_types: ["refresh_token", "authorization_code"],
    response_types: ["code"],
    redirect_uris: [`https://app-${i}.example.com/callback2`, `https://app-${i}.example.com/callback`],
    scopes: ["user-details.read", "account-settings.read", "zone.read", "offline_access"],
    allowed_cors_origins: [`https://app-${i}.example.com`],
    logo_uri: i % 10 === 0 ? "https://old.example.com/logo.png" : `https://app-${i}.example.com/logo.png`,
    has_rotated_secret: false,
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
  };
}

async function writeFixture(dir: string, clients: number): Promise<void> {
  await mkdir(join(dir, "desired"), { recursive: true });
  const perFile = 1000;
  for (let start = 0; start < clients; start += perFile) {
    let text = `account_id: ${ACCOUNT}\nclients:\n`;
    for (let i = start; i < Math.min(clients, start + perFile); i++) text += clientYaml(i);
    await writeFile(join(dir, "desired", `part-${String(start / perFile).padStart(3, "0")}.yaml`), text);
  }
  await writeFile(
    join(dir, "cf-oauth-gitops.yaml"),
    `account_id: ${ACCOUNT}\ndesired: ./desired\nprune: none\nsafety:\n  max_change_percent: 100\n`,
  );
}

interface ChildResult {
  ms: number;
  /** For the plan child: the part spent in computePlan alone. */
  planOnlyMs?: number;
  maxRssMb: number;
  changes?: number;
  /** For the plan child: CPU time of the main thread over `ms` (Linux only), which a busy machine inflates far less than wall time. */
  mainCpuMs?: number;
}

/** CPU time (user + system) of the main thread so far, from /proc; undefined where there is none. */
function mainThreadCpuMs(): number | undefined {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1]?.split(" ");
    return (Number(fields?.[11]) + Number(fields?.[12])) * 10; // clock ticks of 10 ms
  } catch {
    return undefined;
  }
}

async function child(mode: string, dir: string, clients: number, fastPath: boolean): Promise<ChildResult> {
  const { readdir } = await import("node:fs/promises");
  if (mode === "parse") {
    const files = (await readdir(join(dir, "desired"))).sort();
    const texts = await Promise.all(files.map((f) => readFile(join(dir, "desired", f), "utf8")));
    const start = performance.now();
    for (const text of texts)
      for (const doc of parseAllDocuments(text) as unknown as { toJS(): unknown }[]) doc.toJS();
    return { ms: performance.now() - start, maxRssMb: process.resourceUsage().maxRSS / 1024 };
  }
  const live = new Map([[ACCOUNT, Array.from({ length: clients }, (_, i) => liveClient(i))]]);
  const cpuStart = mainThreadCpuMs();
  const start = performance.now();
  const config = await loadConfig(join(dir, "cf-oauth-gitops.yaml"));
  const desired = await loadDesiredState(config, { fastPath });
  const planStart = performance.now();
  const plan = computePlan({ desired, live, inventory: { accounts: {} }, policy: policyFromConfig(config) });
  const end = performance.now();
  const cpuEnd = mainThreadCpuMs();
  return {
    ...(cpuStart !== undefined && cpuEnd !== undefined ? { mainCpuMs: cpuEnd - cpuStart } : {}),
    ms: end - start,
    planOnlyMs: end - planStart,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    changes: plan.changes.length,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function mainBench(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: "string" },
      runs: { type: "string" },
      child: { type: "string" },
      dir: { type: "string" },
      "yaml-only": { type: "boolean" },
    },
  });
  const fastPath = values["yaml-only"] !== true;
  const clients = Number(values.clients ?? 10_000);
  if (values.child && values.dir) {
    process.stdout.write(JSON.stringify(await child(values.child, values.dir, clients, fastPath)));
    return;
  }
  const runs = Number(values.runs ?? 5);
  const dir = await mkdtemp(join(tmpdir(), "cfog-bench-plan-"));
  await writeFixture(dir, clients);
  const run = (mode: string): ChildResult =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [
          ...process.execArgv,
          new URL(import.meta.url).pathname,
          "--child",
          mode,
          "--dir",
          dir,
          "--clients",
          String(clients),
          ...(fastPath ? [] : ["--yaml-only"]),
        ],
        { encoding: "utf8" },
      ),
    ) as ChildResult;
  const parses: ChildResult[] = [];
  const plans: ChildResult[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      parses.push(run("parse"));
      plans.push(run("plan"));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const parseMs = median(parses.map((r) => r.ms));
  const planMs = median(plans.map((r) => r.ms));
  const planRss = Math.max(...plans.map((r) => r.maxRssMb));
  const planOnlyMs = median(plans.map((r) => r.planOnlyMs ?? 0));
  const rows: [string, string, string, string][] = [
    ["computePlan alone, median", `${planOnlyMs.toFixed(0)} ms`, "1000 ms", (planOnlyMs / 1000).toFixed(2)],
    ["load + validate + plan, median", `${planMs.toFixed(0)} ms`, "1000 ms", (planMs / 1000).toFixed(2)],
    ["peak RSS of the plan process", `${planRss.toFixed(0)} MB`, "200 MB", (planRss / 200).toFixed(2)],
    ["YAML parse alone (yaml package), median", `${parseMs.toFixed(0)} ms`, "", ""],
    ["plan time / YAML parse time", (planMs / parseMs).toFixed(2), "2", (planMs / parseMs / 2).toFixed(2)],
  ];
  console.log(`load average at start: ${(await import("node:os")).loadavg()[0]?.toFixed(2)}`);
  console.log(
    `bench/plan: ${clients} desired vs ${clients} live, ${runs} runs each, ${plans[0]?.changes ?? 0} changes planned${fastPath ? "" : ", yaml package only"}`,
  );
  console.log("| measure | value | limit | value/limit |");
  console.log("|---|---|---|---|");
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
  const cpus = plans.flatMap((r) => (r.mainCpuMs === undefined ? [] : [r.mainCpuMs]));
  if (cpus.length > 0) {
    console.log(
      `main-thread CPU of load + validate + plan, median: ${median(cpus).toFixed(0)} ms (wall time above includes waiting for a core on a busy machine)`,
    );
  }
}

await mainBench();

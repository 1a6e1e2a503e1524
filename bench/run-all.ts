/**
 * `npm run bench`: runs every benchmark in bench/ (each `*.ts` file but this one), one after the
 * other in its own process, prints their tables as they come, and writes them into
 * docs/BENCHMARKS.md together with the machine they ran on (CPUs, memory, Node.js, load average and
 * `uptime` before and after) and the date. Benchmarks print figures; nothing here asserts on them.
 *
 *   npm run bench [-- --only apply --only plan] [-- --no-write] [-- --out FILE]
 *
 * A benchmark that fails is recorded as failed in the document (with the end of its stderr) and the
 * others still run; the exit code is 1 when any failed.
 */
import { execFileSync, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { availableParallelism, cpus, freemem, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { TSX_LOADER } from "../test/helpers/program.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH_DIR = join(ROOT, "bench");
/** Preferred order; files not listed run after these, alphabetically. */
const ORDER = ["plan", "api-calls", "apply", "daemon", "cli-start"];

/** What each known benchmark measures, for the document. */
const ABOUT: Record<string, string> = {
  plan:
    "Plan time and peak RSS for 10,000 desired clients against 10,000 live ones, and the ratio to parsing " +
    "the same YAML with the `yaml` package alone (targets: plan under 1 s, RSS under 200 MB, ratio under 2).",
  "api-calls":
    "API requests per run for converged accounts (200 clients applied, then plan, apply and rotate again), " +
    "against the minimum a run can make: one list per account.",
  apply:
    "One apply of 1,000 creates against the emulator held to a scaled-down quota of 200 requests per 20 s: " +
    "achieved requests per second against the quota's rate (target at least 0.9) and 429 responses (target 0).",
  daemon:
    "The daemon (`run`) as a real process: commit-to-live latency through the file watch and the webhook, " +
    "and idle CPU and memory.",
  "cli-start":
    "What starting the built CLI costs, each figure beside its reference from the same run: `--version` " +
    "against `node -e 0` (target at most 1.5×), a cold `plan` of a converged 5-client account against a " +
    "bare Node script making the same list request to the same emulator (target at most 1.5×), " +
    "`validate` against the build before the CLI frame (target at most 0.5×); and two idle daemons, this " +
    "build's and that one's, side by side: RSS (target at most 80 MiB) and CPU.",
};

interface BenchResult {
  name: string;
  code: number | null;
  seconds: number;
  stdout: string;
  stderrTail: string;
}

function discover(only: readonly string[]): string[] {
  const names = readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith(".ts") && f !== "run-all.ts")
    .map((f) => f.slice(0, -3));
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  const sorted = names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const unknown = only.filter((n) => !names.includes(n));
  if (unknown.length > 0) throw new Error(`no benchmark named ${unknown.join(", ")} in bench/`);
  return only.length > 0 ? sorted.filter((n) => only.includes(n)) : sorted;
}

/** Runs one benchmark through tsx; its stdout is echoed live and kept, its stderr passed through. */
function runBench(name: string): Promise<BenchResult> {
  const started = performance.now();
  const child = spawn(process.execPath, ["--import", TSX_LOADER, join(BENCH_DIR, `${name}.ts`)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderrTail = "";
  child.stdout.on("data", (chunk: Buffer) => {
    process.stdout.write(chunk);
    stdout += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    process.stderr.write(chunk);
    stderrTail = (stderrTail + chunk.toString("utf8")).slice(-2000);
  });
  return new Promise((resolve) =>
    child.once("exit", (code) =>
      resolve({ name, code, seconds: (performance.now() - started) / 1000, stdout, stderrTail }),
    ),
  );
}

function uptime(): string {
  try {
    return execFileSync("uptime", { encoding: "utf8" }).trim();
  } catch {
    return `load average: ${loadavg()
      .map((n) => n.toFixed(2))
      .join(", ")}`;
  }
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memory: string;
  node: string;
  commit: string;
  uptimeBefore: string;
  uptimeAfter: string;
}

function describeMachine(): Omit<Machine, "uptimeAfter"> {
  const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memory: `${gib(totalmem())} total, ${gib(freemem())} free at start`,
    node: process.version,
    commit: gitCommit(),
    uptimeBefore: uptime(),
  };
}

/** Bench output as markdown: table lines kept, every other line its own paragraph. */
function asMarkdown(stdout: string): string {
  const out: string[] = [];
  let inTable = false;
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue;
    const table = line.startsWith("|");
    if (table && !inTable) out.push("");
    if (!table) out.push("", line);
    else out.push(line);
    inTable = table;
  }
  return out.join("\n").trim();
}

function renderDocument(machine: Machine, results: readonly BenchResult[]): string {
  const sections = results.map((r) => {
    const about = ABOUT[r.name] ?? "";
    const status =
      r.code === 0
        ? `Ran in ${r.seconds.toFixed(0)} s.`
        : `**Failed** (exit ${r.code}) after ${r.seconds.toFixed(0)} s:\n\n\`\`\`\n${r.stderrTail.trim()}\n\`\`\``;
    return [
      `## ${r.name}`,
      "",
      about,
      "",
      `\`npx tsx bench/${r.name}.ts\` (defaults). ${status}`,
      "",
      asMarkdown(r.stdout),
    ].join("\n");
  });
  return `# Benchmarks

Written by \`npm run bench\` (bench/run-all.ts), which runs every benchmark in \`bench/\` once, each in its
own process, against the embedded emulator. Each figure stands beside the limit it is measured against,
with their ratio: below 1 is within a limit that is a ceiling (time, memory, requests), at or above the
target where the limit is a floor (achieved request rate). Benchmarks print figures;
no test asserts on wall time.

The machine is shared: other work was running at the same time (see the load average), so times are
upper bounds of what an idle machine gives. Request counts do not depend on the load.

## Machine

| | |
|---|---|
| date | ${machine.date} |
| CPUs (nproc) | ${machine.cpus} × ${machine.cpuModel} |
| memory | ${machine.memory} |
| Node.js | ${machine.node} |
| commit | ${machine.commit} (plus the working tree at the time) |
| \`uptime\` before | ${machine.uptimeBefore} |
| \`uptime\` after | ${machine.uptimeAfter} |

${sections.join("\n\n")}
`;
}

async function mainRunAll(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: "string", multiple: true },
      "no-write": { type: "boolean" },
      out: { type: "string" },
    },
  });
  const names = discover(values.only ?? []);
  const machine = describeMachine();
  console.log(`running ${names.join(", ")}; ${machine.uptimeBefore}`);
  const results: BenchResult[] = [];
  for (const name of names) {
    console.log(`\n=== bench/${name}.ts ===`);
    results.push(await runBench(name));
  }
  const full: Machine = { ...machine, uptimeAfter: uptime() };
  if (!values["no-write"]) {
    const out = values.out ?? join(ROOT, "docs", "BENCHMARKS.md");
    await writeFile(out, renderDocument(full, results));
    console.log(`\nwritten to ${out}`);
  }
  const failed = results.filter((r) => r.code !== 0).map((r) => r.name);
  if (failed.length > 0) {
    console.error(`failed: ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

await mainRunAll();

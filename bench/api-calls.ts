/**
 * Benchmark: API calls per run for an account that is already converged. N clients (default 200,
 * split over `--accounts` accounts) are applied to the emulator; then `plan`, `apply` and `rotate`
 * (nothing due) run again. Each run's requests are counted by the emulator (`GET /__emulator/stats`)
 * and set beside the minimum a run can make: one list per account. The first apply is shown against
 * its own minimum (one create per client, one list per account, one scope catalogue read).
 *
 *   npx tsx bench/api-calls.ts [--clients 200] [--accounts 2]
 *
 * Target (README, "Desired state"): a converged run costs one list call per account (ratio 1.00).
 * Runs the CLI in-process through `main()` against the emulator over real HTTP.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { parseArgs } from "node:util";
import { main } from "../src/cli/dispatch.js";
import { systemClock } from "../src/cli/io.js";
import { startEmulator, type EmulatorHandle, type StatsSnapshot } from "../src/emulator/index.js";

const TOKEN = "bench-token";

function accountId(i: number): string {
  return `ac${(i + 1).toString(16).padStart(30, "0")}`;
}

function clientYaml(name: string, i: number): string {
  return `  - client_name: ${name}
    token_endpoint_auth_method: ${i % 5 === 0 ? "none" : "client_secret_basic"}
    grant_types: [authorization_code, refresh_token]
    response_types: [code]
    redirect_uris: [https://${name}.example.com/callback]
    scopes: [account-settings.read, user-details.read]
    logo_uri: https://${name}.example.com/logo.png
`;
}

async function writeWorkspace(dir: string, clients: number, accounts: number): Promise<void> {
  await mkdir(join(dir, "desired"), { recursive: true });
  for (let a = 0; a < accounts; a++) {
    let text = `account_id: "${accountId(a)}"\nclients:\n`;
    for (let i = a; i < clients; i += accounts) text += clientYaml(`app-${i}`, i);
    await writeFile(join(dir, "desired", `account-${a}.yaml`), text);
  }
  await writeFile(
    join(dir, "cf-oauth-gitops.yaml"),
    [
      `account_id: "${accountId(0)}"`,
      "desired: ./desired",
      "state_dir: ./state",
      "sinks: {default: {type: file, dir: ./secrets}}",
      "safety: {max_change_percent: 100}",
      "",
    ].join("\n"),
  );
}

/** One verb in-process; its output is discarded, its exit code checked. */
async function run(dir: string, emu: EmulatorHandle, args: string[]): Promise<void> {
  const sink = () => new PassThrough().resume();
  const stderr = new PassThrough();
  let errors = "";
  stderr.on("data", (c: Buffer) => (errors += c.toString("utf8")));
  const code = await main([args[0] as string, "-c", join(dir, "cf-oauth-gitops.yaml"), ...args.slice(1)], {
    env: { CLOUDFLARE_BASE_URL: emu.url, CLOUDFLARE_API_TOKEN: TOKEN, NO_COLOR: "1" },
    stdout: sink(),
    stderr,
    cwd: dir,
    signal: new AbortController().signal,
    clock: systemClock,
  });
  if (code !== 0) throw new Error(`${args.join(" ")} exited ${code}\n${errors}`);
}

async function stats(emu: EmulatorHandle): Promise<StatsSnapshot> {
  const res = await fetch(`${emu.origin}/__emulator/stats`);
  return ((await res.json()) as { result: StatsSnapshot }).result;
}

/** Requests one run made, by route. */
async function measure(
  dir: string,
  emu: EmulatorHandle,
  args: string[],
): Promise<{ total: number; routes: string }> {
  const before = await stats(emu);
  await run(dir, emu, args);
  const after = await stats(emu);
  const routes = Object.entries(after.by_route)
    .map(([route, n]) => [route, n - (before.by_route[route] ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .map(([route, n]) => `${n}× ${route}`)
    .join(", ");
  return { total: after.total - before.total, routes };
}

async function mainBench(): Promise<void> {
  const { values } = parseArgs({
    options: { clients: { type: "string", default: "200" }, accounts: { type: "string", default: "2" } },
  });
  const clients = Number(values.clients);
  const accounts = Number(values.accounts);
  const confidential = Array.from({ length: clients }, (_, i) => i).filter((i) => i % 5 !== 0).length;
  const emu = await startEmulator({
    port: 0,
    seed: 1,
    tokens: [TOKEN],
    rateLimit: { quota: 1_000_000, windowSeconds: 300 },
  });
  const dir = await mkdtemp(join(tmpdir(), "cfog-bench-calls-"));
  try {
    await writeWorkspace(dir, clients, accounts);
    console.log(`load average at start: ${loadavg()[0]?.toFixed(2)}`);
    const first = await measure(dir, emu, ["apply"]);
    const plan = await measure(dir, emu, ["plan"]);
    const again = await measure(dir, emu, ["apply"]);
    const rotate = await measure(dir, emu, ["rotate"]);
    const status = await measure(dir, emu, ["rotate", "--status"]);
    const createMinimum = clients + accounts + 1;
    const rows: [string, number, number, string][] = [
      [`first apply (${clients} creates)`, first.total, createMinimum, first.routes],
      ["plan, converged", plan.total, accounts, plan.routes],
      ["apply, converged", again.total, accounts, again.routes],
      ["rotate, nothing due", rotate.total, accounts, rotate.routes],
      ["rotate --status", status.total, accounts, status.routes],
    ];
    console.log(
      `bench/api-calls: ${clients} clients (${confidential} with a secret) in ${accounts} account(s); ` +
        `minimum of a converged run = one list per account; first apply's minimum = one create per client, ` +
        `one list per account, one scope catalogue read`,
    );
    console.log("| run | requests | minimum | requests/minimum | requests by route |");
    console.log("|---|---|---|---|---|");
    for (const [label, n, min, routes] of rows) {
      console.log(`| ${label} | ${n} | ${min} | ${(n / min).toFixed(2)} | ${routes} |`);
    }
  } finally {
    await emu.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await mainBench();

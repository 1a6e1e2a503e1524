import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";
import { stringify } from "yaml";
import { main } from "../../src/cli/dispatch.js";
import { type Clock, systemClock } from "../../src/cli/io.js";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { Inventory, InventoryEntry } from "../../src/core/model.js";
import type { Plan } from "../../src/core/plan-types.js";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import type { StatsSnapshot } from "../../src/emulator/stats.js";
import { ACCOUNT_A, control, WRITE_TOKEN } from "../helpers/emulator.js";
import { program } from "../helpers/program.js";
import { verifiedSecret } from "../helpers/token-exchange.js";

/**
 * Shared pieces of the end-to-end tests: the CLI run in-process (`main()` with captured streams) or as
 * a real child process, a temporary workspace (config, desired files, state, secrets), "dashboard"
 * calls straight to the emulator's API, and emulator stats deltas. Nothing is mocked.
 */

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a verb sees: the emulator and a write token, colour off, nothing else. */
export function cliEnv(emu: EmulatorHandle, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    CLOUDFLARE_BASE_URL: emu.url,
    CLOUDFLARE_API_TOKEN: WRITE_TOKEN,
    NO_COLOR: "1",
    ...extra,
  };
}

/**
 * Runs the CLI in this process through `main()`, with its own streams, env and working directory,
 * on the wall clock unless `clock` is given.
 */
export async function runCli(
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; clock?: Clock },
): Promise<RunResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (c: Buffer) => out.push(c));
  stderr.on("data", (c: Buffer) => err.push(c));
  const code = await main(args, {
    env: opts.env,
    stdout,
    stderr,
    cwd: opts.cwd,
    signal: new AbortController().signal,
    clock: opts.clock ?? systemClock,
  });
  return { code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}

/**
 * Runs the real program (test/helpers/program.ts) from the repository root, so relative paths in
 * `args` are relative to it; the exit code is the process's own.
 */
export function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const childEnv = { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...program().args, ...args],
      { cwd: ROOT, env: childEnv, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------------
// Workspace

export interface ConfigOptions {
  account_id?: string;
  prune?: "none" | "owned" | "all";
  ignore?: string[];
  safety?: {
    max_deletes?: number;
    max_change_percent?: number;
    min_clients_for_percent?: number;
    allow_empty?: boolean;
  };
  /** Named sinks; default: `default: {type: file, dir: ./secrets}`. */
  sinks?: Record<string, Record<string, unknown>>;
}

/** A temp directory holding `cf-oauth-gitops.yaml`, `desired/`, `state/` and `secrets/`. */
export class Workspace {
  constructor(
    readonly dir: string,
    readonly emu: EmulatorHandle,
  ) {}

  get config(): string {
    return join(this.dir, "cf-oauth-gitops.yaml");
  }
  get desiredDir(): string {
    return join(this.dir, "desired");
  }
  get stateDir(): string {
    return join(this.dir, "state");
  }
  get secretsDir(): string {
    return join(this.dir, "secrets");
  }

  async writeConfig(options: ConfigOptions = {}): Promise<void> {
    const config = {
      account_id: options.account_id ?? ACCOUNT_A,
      desired: "./desired",
      state_dir: "./state",
      prune: options.prune ?? "none",
      ...(options.ignore ? { ignore: options.ignore } : {}),
      ...(options.safety ? { safety: options.safety } : {}),
      sinks: options.sinks ?? { default: { type: "file", dir: "./secrets" } },
    };
    await writeFile(this.config, stringify(config));
  }

  /** Writes `desired/<file>` as one document: the account and its clients. */
  async writeDesired(file: string, accountId: string, clients: readonly object[]): Promise<void> {
    await this.writeRaw(join("desired", file), stringify({ account_id: accountId, clients }));
  }

  async writeRaw(relative: string, text: string): Promise<void> {
    const path = join(this.dir, relative);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }

  async removeDesired(file: string): Promise<void> {
    await rm(join(this.desiredDir, file), { force: true });
  }

  /** Runs a verb in-process with `-c <config>`, against this workspace's emulator. */
  run(verb: string, args: string[] = [], extraEnv: Record<string, string> = {}): Promise<RunResult> {
    return runCli([verb, "-c", this.config, ...args], { cwd: this.dir, env: cliEnv(this.emu, extraEnv) });
  }

  /** Runs a verb as a real child process with `-c <config>`. */
  runChild(verb: string, args: string[] = [], extraEnv: Record<string, string> = {}): Promise<RunResult> {
    return runChild([verb, "-c", this.config, ...args], cliEnv(this.emu, extraEnv));
  }

  /** `plan --format json`, parsed; fails loudly when the exit code is not the expected one. */
  async planJson(expectedCode = 0, args: string[] = []): Promise<Plan> {
    const result = await this.run("plan", ["--format", "json", ...args]);
    if (result.code !== expectedCode) {
      throw new Error(
        `plan exited ${result.code}, expected ${expectedCode}\n${result.stderr}\n${result.stdout}`,
      );
    }
    return JSON.parse(result.stdout) as Plan;
  }

  async inventory(): Promise<Inventory> {
    try {
      return JSON.parse(await readFile(join(this.stateDir, "inventory.json"), "utf8")) as Inventory;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { accounts: {} };
      throw error;
    }
  }

  async owned(accountId: string): Promise<InventoryEntry[]> {
    return (await this.inventory()).accounts[accountId] ?? [];
  }

  /**
   * The record a JSON file sink wrote for `key` (the client name unless the entry sets one); the
   * default sink's directory unless `dir` (relative to the workspace) names another.
   */
  async secretRecord(accountId: string, key: string, dir = "secrets"): Promise<SecretFile | null> {
    try {
      return JSON.parse(await readFile(join(this.dir, dir, accountId, `${key}.json`), "utf8")) as SecretFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }
}

export interface SecretFile {
  client_id: string;
  client_secret: string;
  account_id: string;
  client_name: string;
  issued_at: string;
}

/** A fresh workspace (config written with `options`), removed when the test finishes. */
export async function makeWorkspace(emu: EmulatorHandle, options: ConfigOptions = {}): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), "cf-e2e-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const ws = new Workspace(dir, emu);
  await mkdir(ws.desiredDir, { recursive: true });
  await ws.writeConfig(options);
  return ws;
}

/**
 * Every file below `dir`, recursively (absolute paths). Tolerates files that vanish during the walk
 * (a running daemon's git and temp files come and go), which are simply not listed.
 */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(path)));
    else if ((await stat(path).catch(() => null))?.isFile()) out.push(path);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The "dashboard": direct API calls, and the emulator's control endpoints

interface Envelope<T> {
  success: boolean;
  result: T;
  errors: { code: number; message: string }[];
}

/** One call to the emulator's v4 API with the write token, as a person in the dashboard would make. */
export async function api<T = unknown>(
  emu: EmulatorHandle,
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${emu.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${WRITE_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as Envelope<T>;
  if (!res.ok || !json.success)
    throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.errors)}`);
  return json.result;
}

export type CreatedClient = LiveClient & { client_secret?: string };

/** Creates a client directly (not through the tool). */
export function createDirect(emu: EmulatorHandle, accountId: string, body: object): Promise<CreatedClient> {
  return api<CreatedClient>(emu, "POST", `/accounts/${accountId}/oauth_clients`, body);
}

/** PATCHes a client directly (a hand edit in the dashboard). */
export function patchDirect(
  emu: EmulatorHandle,
  accountId: string,
  clientId: string,
  body: object,
): Promise<LiveClient> {
  return api<LiveClient>(emu, "PATCH", `/accounts/${accountId}/oauth_clients/${clientId}`, body);
}

/** The live clients of an account, read through the control endpoint (not counted in stats). */
export function liveClients(emu: EmulatorHandle, accountId: string): Promise<LiveClient[]> {
  return control<LiveClient[]>(emu, "GET", `clients?account_id=${accountId}`);
}

export function stats(emu: EmulatorHandle): Promise<StatsSnapshot> {
  return control<StatsSnapshot>(emu, "GET", "stats");
}

/** What happened between two stats snapshots: total, and non-zero counts per route and method. */
export interface StatsDelta {
  total: number;
  by_route: Record<string, number>;
  by_method: Record<string, number>;
}

export function statsDelta(before: StatsSnapshot, after: StatsSnapshot): StatsDelta {
  const diff = (a: Record<string, number>, b: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const n = (b[key] ?? 0) - (a[key] ?? 0);
      if (n !== 0) out[key] = n;
    }
    return out;
  };
  return {
    total: after.total - before.total,
    by_route: diff(before.by_route, after.by_route),
    by_method: diff(before.by_method, after.by_method),
  };
}

/** Runs `fn` and returns what it did to the emulator's counters. */
export async function measure<T>(
  emu: EmulatorHandle,
  fn: () => Promise<T>,
): Promise<{ value: T; delta: StatsDelta }> {
  const before = await stats(emu);
  const value = await fn();
  return { value, delta: statsDelta(before, await stats(emu)) };
}

export const LIST_ROUTE = "GET /accounts/:account_id/oauth_clients";
export const CREATE_ROUTE = "POST /accounts/:account_id/oauth_clients";
export const PATCH_ROUTE = "PATCH /accounts/:account_id/oauth_clients/:client_id";
export const DELETE_ROUTE = "DELETE /accounts/:account_id/oauth_clients/:client_id";

/**
 * Whether `secret` is a valid secret of the client, proven by a token exchange with openid-client
 * (test/helpers/token-exchange.ts); `slot` is the emulator's `check-secret` answer.
 */
export function checkSecret(
  emu: EmulatorHandle,
  accountId: string,
  clientId: string,
  secret: string,
): Promise<{ valid: boolean; slot: string | null }> {
  return verifiedSecret(emu, accountId, clientId, secret);
}

// ---------------------------------------------------------------------------------------------------
// Client bodies

/** A URL-safe form of a client name, for URIs. */
export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
}

/** A minimal valid confidential client (as a desired entry or a create body). */
export function confidential(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_name: name,
    token_endpoint_auth_method: "client_secret_basic",
    grant_types: ["authorization_code"],
    response_types: ["code"],
    redirect_uris: [`https://${slug(name)}.example.com/callback`],
    scopes: ["account-settings.read"],
    ...extra,
  };
}

/** A minimal valid public (PKCE, `none`) client. */
export function publicClient(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return confidential(name, { token_endpoint_auth_method: "none", ...extra });
}

/** Names of live clients, sorted (duplicates kept, so a duplicate shows). */
export function names(clients: readonly LiveClient[]): string[] {
  return clients.map((c) => c.client_name ?? "").sort();
}

import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { stringify } from "yaml";
import type { Inventory } from "../../src/core/model.js";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import type { StatsSnapshot } from "../../src/emulator/stats.js";
import { cliEnv, ROOT, runCli, type RunResult, type SecretFile } from "../e2e/support.js";
import { offsetClock } from "../helpers/clock.js";
import { ACCOUNT_A, control } from "../helpers/emulator.js";
import { verifiedSecret } from "../helpers/token-exchange.js";

/**
 * Shared pieces of the rotation tests: a workspace with a rotation policy, confidential clients, the
 * CLI run in-process, the sink's records and the journal's files read straight from disk, secrets
 * proven by a token exchange (test/helpers/token-exchange.ts), and the emulator's stats. Nothing is
 * mocked.
 */

export interface RotationConfig {
  every?: string;
  grace?: string;
  account_id?: string;
  /** Replaces the default file sink `default: {type: file, dir: ./secrets}`. */
  sinks?: Record<string, Record<string, unknown>>;
}

/** A desired confidential client with the smallest valid body. */
export function confidentialClient(
  name: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    client_name: name,
    token_endpoint_auth_method: "client_secret_basic",
    grant_types: ["authorization_code"],
    response_types: ["code"],
    redirect_uris: [`https://${name}.example.com/callback`],
    scopes: ["account-settings.read"],
    ...extra,
  };
}

export class RotationWorkspace {
  constructor(
    readonly dir: string,
    readonly emu: EmulatorHandle,
    readonly accountId: string,
  ) {}

  get config(): string {
    return join(this.dir, "cf-oauth-gitops.yaml");
  }
  get stateDir(): string {
    return join(this.dir, "state");
  }
  get journalDir(): string {
    return join(this.stateDir, "journal");
  }
  get secretsDir(): string {
    return join(this.dir, "secrets");
  }

  async writeConfig(options: RotationConfig = {}): Promise<void> {
    const config = {
      account_id: this.accountId,
      desired: "./desired",
      state_dir: "./state",
      sinks: options.sinks ?? { default: { type: "file", dir: "./secrets" } },
      rotation: { every: options.every ?? "10d", grace: options.grace ?? "1d" },
    };
    await writeFile(this.config, stringify(config));
  }

  /** `desired/clients.yaml` holding these clients (confidential unless given in full). */
  async writeClients(clients: readonly (string | Record<string, unknown>)[]): Promise<void> {
    const entries = clients.map((c) => (typeof c === "string" ? confidentialClient(c) : c));
    await mkdir(join(this.dir, "desired"), { recursive: true });
    await writeFile(
      join(this.dir, "desired", "clients.yaml"),
      stringify({ account_id: this.accountId, clients: entries }),
    );
  }

  /**
   * A verb in-process with `-c <config>`; `offset` moves its clock ahead, in seconds; `at` stops it at
   * one instant (two verbs run `at` the same time see the same time to the millisecond).
   */
  run(
    verb: string,
    args: string[] = [],
    options: { offset?: number; at?: Date; env?: Record<string, string> } = {},
  ): Promise<RunResult> {
    const at = options.at;
    const clock = at ? () => new Date(at) : options.offset !== undefined ? offsetClock(options.offset) : null;
    return runCli([verb, "-c", this.config, ...args], {
      cwd: this.dir,
      env: this.env(options),
      ...(clock ? { clock } : {}),
    });
  }

  env(options: { env?: Record<string, string>; baseUrl?: string } = {}): NodeJS.ProcessEnv {
    return cliEnv(this.emu, {
      ...(options.baseUrl ? { CLOUDFLARE_BASE_URL: options.baseUrl } : {}),
      ...options.env,
    });
  }

  /** The default file sink's record for `key`, as written on disk. */
  async sinkRecord(key: string): Promise<SecretFile | null> {
    try {
      return JSON.parse(
        await readFile(join(this.secretsDir, this.accountId, `${key}.json`), "utf8"),
      ) as SecretFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  /** The ownership inventory as written on disk. */
  async inventory(): Promise<Inventory> {
    try {
      return JSON.parse(await readFile(join(this.stateDir, "inventory.json"), "utf8")) as Inventory;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { accounts: {} };
      throw error;
    }
  }

  /** Every journal file: name, mode bits, raw text and parsed JSON. */
  async journalFiles(): Promise<
    { name: string; mode: number; text: string; json: Record<string, unknown> }[]
  > {
    let names: string[];
    try {
      names = (await readdir(this.journalDir)).filter((n) => n.endsWith(".json")).sort();
    } catch {
      return [];
    }
    const out = [];
    for (const name of names) {
      const path = join(this.journalDir, name);
      const text = await readFile(path, "utf8");
      out.push({
        name,
        mode: (await stat(path)).mode & 0o777,
        text,
        json: JSON.parse(text) as Record<string, unknown>,
      });
    }
    return out;
  }
}

/** A fresh workspace for one account, removed when the test finishes. */
export async function makeRotationWorkspace(
  emu: EmulatorHandle,
  options: RotationConfig = {},
): Promise<RotationWorkspace> {
  const dir = await mkdtemp(join(tmpdir(), "cf-rot-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const ws = new RotationWorkspace(dir, emu, options.account_id ?? ACCOUNT_A);
  await ws.writeConfig(options);
  return ws;
}

/**
 * Whether a secret works, proven by a token exchange with openid-client at the emulator's
 * authorization server; `slot` is the `check-secret` control endpoint's (neither is counted in stats).
 */
export async function checkSecret(
  emu: EmulatorHandle,
  accountId: string,
  clientId: string,
  secret: string,
): Promise<{ valid: boolean; slot: "current" | "rotated" | null }> {
  return verifiedSecret<"current" | "rotated">(emu, accountId, clientId, secret);
}

export function stats(emu: EmulatorHandle): Promise<StatsSnapshot> {
  return control<StatsSnapshot>(emu, "GET", "stats");
}

/** Count of a route (`POST /accounts/:account_id/oauth_clients/:client_id/rotate_secret`) in stats. */
export function routeCount(s: StatsSnapshot, key: string): number {
  return s.by_route[key] ?? 0;
}

export const ROUTE = {
  create: "POST /accounts/:account_id/oauth_clients",
  rotate: "POST /accounts/:account_id/oauth_clients/:client_id/rotate_secret",
  deleteRotated: "DELETE /accounts/:account_id/oauth_clients/:client_id/rotate_secret",
} as const;

/** Every string in `haystack` that contains a secret, raw or base64 (standard and url-safe). */
export function leaks(haystack: string, secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const secret of secrets) {
    const forms = [
      secret,
      Buffer.from(secret).toString("base64"),
      Buffer.from(secret).toString("base64url"),
      Buffer.from(secret).toString("base64").replace(/=+$/, ""),
    ];
    if (forms.some((f) => haystack.includes(f))) found.push(secret.slice(0, 4));
  }
  return found;
}

/** A small seeded PRNG (mulberry32): the crash test's kill points are reproducible from the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export { ROOT };

import { execFile } from "node:child_process";
import { expect } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { Plan } from "../../src/core/plan-types.js";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { control } from "../helpers/emulator.js";
import { checkSecret, type RunResult, type Workspace } from "../e2e/support.js";
import { program } from "../helpers/program.js";

/**
 * Shared pieces of the reliability suites. They run in `npm test` at a size that finishes in CI, and
 * longer under `npm run chaos`, which sets CHAOS=1: every suite reads {@link CHAOS} to scale its
 * counts. CHAOS_SEED replaces the fixed seeds, so a chaos run can explore new sequences and a failure
 * can be replayed by setting the seed it printed.
 */

/** True under `npm run chaos`. */
export const CHAOS = process.env["CHAOS"] === "1" || process.env["CHAOS"] === "true";

/** The CI figure, or the chaos one. */
export function scaled<T>(ci: T, chaos: T): T {
  return CHAOS ? chaos : ci;
}

/** The suite's fixed seed, unless CHAOS_SEED names another. */
export function seedFor(fixed: number): number {
  const raw = process.env["CHAOS_SEED"];
  const seed = raw === undefined || raw === "" ? fixed : Number(raw);
  if (!Number.isInteger(seed)) throw new Error(`CHAOS_SEED must be an integer, got ${raw}`);
  return seed;
}

/** A client as `GET /__emulator/clients` dumps it (not counted in stats, never rate limited). */
export type DumpedClient = LiveClient & { account_id: string; has_secret: boolean };

/** Every client of an account, through the control endpoint. */
export function dumpClients(emu: EmulatorHandle, accountId: string): Promise<DumpedClient[]> {
  return control<DumpedClient[]>(emu, "GET", `clients?account_id=${accountId}`);
}

/** Turns the emulator's injected faults off (verification runs must not be the thing that fails). */
export async function clearFaults(emu: EmulatorHandle): Promise<void> {
  await control(emu, "POST", "faults", {
    latencyMs: 0,
    fault5xxRate: 0,
    faultResetRate: 0,
    faultDropAfterCommitRate: 0,
  });
}

/** What a converged account looks like, for one desired account. */
export interface ConvergenceExpectation {
  accountId: string;
  /** Every desired client name of the account. */
  names: readonly string[];
  /** The names of the confidential ones: each must have a sink record the emulator accepts. */
  confidential: readonly string[];
}

/**
 * The convergence checks of the fault matrix: exactly the desired names live, none twice, every
 * confidential client's sink secret getting a token at the emulator's token endpoint (a real exchange,
 * test/helpers/token-exchange.ts) and belonging to the live client of that name, and a fresh plan
 * with nothing to do. Returns the plan, for callers that check more.
 */
export async function expectConverged(
  ws: Workspace,
  expected: readonly ConvergenceExpectation[],
  context: string,
): Promise<Plan> {
  for (const account of expected) {
    const live = await dumpClients(ws.emu, account.accountId);
    const names = live.map((c) => c.client_name ?? "").sort();
    expect(names, `${context}: duplicate or missing clients in ${account.accountId}`).toEqual(
      [...account.names].sort(),
    );
    for (const name of account.confidential) {
      const record = await ws.secretRecord(account.accountId, name);
      const client = live.find((c) => c.client_name === name);
      expect(record?.client_id, `${context}: ${name}'s sink record names another client`).toBe(
        client?.client_id,
      );
      const verdict = await checkSecret(
        ws.emu,
        account.accountId,
        record?.client_id ?? "",
        record?.client_secret ?? "",
      );
      expect(verdict.valid, `${context}: ${name}'s sink secret is not accepted`).toBe(true);
    }
  }
  const result = await ws.run("plan", ["--format", "json", "--detailed-exitcode"]);
  expect(result.code, `${context}: plan after convergence\n${result.stdout}\n${result.stderr}`).toBe(0);
  const plan = JSON.parse(result.stdout) as Plan;
  expect(plan.changes, context).toEqual([]);
  expect(plan.adoptions, context).toEqual([]);
  expect(plan.stale_inventory, context).toEqual([]);
  expect(plan.conflicts, context).toEqual([]);
  return plan;
}

/**
 * Runs the real program as a child process (test/helpers/program.ts: the built one when it is up to
 * date, else the sources through tsx; the test entry point when `clockOffset` moves its clock), so
 * everything it prints, by any route, lands in the captured streams.
 */
export function runProgram(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  options: { clockOffset?: number | string } = {},
): Promise<RunResult> {
  const cli = program(options);
  const childEnv = { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env, ...cli.env };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...cli.args, ...args],
      { cwd, env: childEnv, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

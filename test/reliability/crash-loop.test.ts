import { writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startEmulator } from "../../src/emulator/index.js";
import { CrashLane, type CrashRunSpec, KillProxy, type RunChooser } from "../helpers/crash-harness.js";
import { ACCOUNT_A, ACCOUNT_B, testOptions } from "../helpers/emulator.js";
import { makeRotationWorkspace, prng, type RotationWorkspace } from "../rotation/support.js";
import { CHAOS, scaled, seedFor } from "./support.js";

/**
 * The crash loop: the real program SIGKILLed at seeded random points of `plan`, `apply`, `rotate`,
 * `rotate --now`, `run --once` and long-running daemon (`run`) processes (at least 50 kills in
 * `npm test`, 500 under `npm run chaos`), through the kill proxy of test/helpers/crash-harness.ts.
 * A daemon the proxy has not killed within a few seconds is SIGKILLed where it stands. Unlike the
 * rotation crash test, kills pile up: several crashed runs may follow each other before a completion,
 * so a run is also killed while it resumes what an earlier killed run left; the desired state also
 * gains clients, edits redirect URIs (patches) and drops clients (prune deletes) between kills.
 *
 * Checked after every run: no secret the sink has published is invalid before its grace has ended;
 * a `plan` run (killed or not) sent nothing but GETs and left the state and secrets directories byte
 * for byte as they were. After every completion (apply, rotate, apply; an operator's `--recover`
 * when a rotation's new secret was lost by the kill, which the API makes unrecoverable otherwise):
 * exactly the desired clients live with no duplicate name, every sink secret accepted by the
 * emulator, the journal scrubbed, and a plan with nothing to do.
 */

const SEED = seedFor(20_261_126);
const LANES = scaled([ACCOUNT_A, ACCOUNT_B], [ACCOUNT_A, ACCOUNT_B, "a".repeat(32), "b".repeat(32)]);
const KILLS = scaled(50, 500);
const KILLS_PER_LANE = Math.ceil(KILLS / LANES.length);
const MAX_RUNS_PER_LANE = KILLS_PER_LANE * 3;
/** Most clients a lane keeps desired at once: beyond it, applies edit and drop instead of adding. */
const CLIENT_CAP = scaled(8, 16);
/** Chance that a crash run is followed by a completion (else the next crash run starts on its mess). */
const COMPLETE_AFTER = 0.35;

/** Long-running daemons are SIGKILLed by this timer if the proxy has not killed them first. */
const DAEMON_GUARD_MS = 8_000;

/**
 * The mix: plans; applies, each after a change of the desired state; scheduled rotations after the
 * clock moved; `rotate --now`; `run --once` (the daemon's wiring: reconcile, then due rotations); and
 * the long-running daemon itself, which reconciles at start and then every 2 s.
 */
const mixedChooser: RunChooser = async (lane): Promise<CrashRunSpec> => {
  if (lane.names.length === 0) return addClients(lane);
  const r = lane.random();
  if (r < 0.18) {
    const format = (["text", "json", "markdown"] as const)[Math.floor(lane.random() * 3)] ?? "text";
    return { kind: "plan", args: ["--format", format] };
  }
  if (r < 0.4) {
    await changeDesired(lane);
    return { kind: "apply", args: [] };
  }
  if (r < 0.58) {
    lane.advanceClock(0.3, 2.5);
    return { kind: "rotate", args: [] };
  }
  if (r < 0.68) {
    lane.advanceClock(0, 0.5);
    const picks = [...new Set([lane.pick(), lane.pick()])];
    return {
      kind: "rotate",
      args: ["--now", ...picks.flatMap((n) => ["--client", n])],
      label: "rotate --now",
    };
  }
  if (r < 0.83) {
    lane.advanceClock(0.3, 2.5);
    if (lane.random() < 0.5) await changeDesired(lane);
    return { kind: "run", args: ["--once"], label: "run --once" };
  }
  await changeDesired(lane);
  return { kind: "run", args: ["--listen", "127.0.0.1:0"], label: "daemon", guardMs: DAEMON_GUARD_MS };
};

/**
 * Adds two clients (below the cap), or edits one's redirect URI (a patch), or drops one (a delete),
 * at any time: a client dropped while a killed rotation left its new secret lost is deleted by the
 * apply, and its blocked journal entry is then dropped (test/reliability/lost-secret-deleted-client).
 */
async function changeDesired(lane: CrashLane): Promise<void> {
  const m = lane.random();
  if (lane.names.length < CLIENT_CAP && m < 0.5) {
    lane.names.push(`c${lane.runs}a`, `c${lane.runs}b`);
  } else if (m < 0.8 || lane.names.length <= 3) {
    const name = lane.pick();
    lane.versions.set(name, (lane.versions.get(name) ?? 0) + 1);
  } else {
    lane.removeName(lane.pick());
  }
  await lane.writeDesired();
}

async function addClients(lane: CrashLane): Promise<CrashRunSpec> {
  lane.names.push(`c${lane.runs}a`, `c${lane.runs}b`);
  await lane.writeDesired();
  return { kind: "apply", args: [] };
}

/** The rotation workspace's config, with prune `owned` (so dropped clients are deleted) and loose valves. */
async function writeLoopConfig(ws: RotationWorkspace): Promise<void> {
  await writeFile(
    ws.config,
    stringify({
      account_id: ws.accountId,
      desired: "./desired",
      state_dir: "./state",
      prune: "owned",
      safety: { max_deletes: 100, max_change_percent: 100 },
      sinks: { default: { type: "file", dir: "./secrets" } },
      rotation: { every: "10d", grace: "1d" },
      interval: "2s",
    }),
  );
}

describe("crash loop", () => {
  it(
    `survives ${KILLS}+ SIGKILLs across plan, apply, rotate, rotate --now, run --once and the daemon (seed ${SEED})`,
    async () => {
      const emu = await startEmulator(
        testOptions({ seed: SEED, rateLimit: { quota: 1_000_000, windowSeconds: 300 } }),
      );
      const proxies: KillProxy[] = [];
      try {
        const lanes = await Promise.all(
          LANES.map(async (account, i) => {
            const ws = await makeRotationWorkspace(emu, { account_id: account });
            await writeLoopConfig(ws);
            const proxy = new KillProxy(emu);
            proxies.push(proxy);
            return new CrashLane(ws, emu, proxy, await proxy.listen(), prng(SEED + i), {
              chooser: mixedChooser,
            });
          }),
        );
        let completions = 0;
        await Promise.all(
          lanes.map(async (lane) => {
            while (lane.kills < KILLS_PER_LANE && lane.runs < MAX_RUNS_PER_LANE) {
              await lane.crashRun();
              if (lane.random() < COMPLETE_AFTER) {
                await lane.complete();
                await lane.checkConverged();
                completions += 1;
              }
            }
            await lane.complete();
            await lane.checkConverged();
            completions += 1;
          }),
        );
        const sum = (f: (l: CrashLane) => number) => lanes.reduce((n, l) => n + f(l), 0);
        const kills = sum((l) => l.kills);
        const LABELS = ["plan", "apply", "rotate", "rotate --now", "run --once", "daemon"];
        const tally = (label: string, what: "runs" | "kills") => sum((l) => l.tally.get(label)?.[what] ?? 0);
        const by = (label: string) => `${label} ${tally(label, "kills")}/${tally(label, "runs")}`;
        console.info(
          `crash loop (seed ${SEED}${CHAOS ? ", chaos" : ""}): ${kills} kills in ${sum((l) => l.runs)} runs ` +
            `(killed/runs: ${LABELS.map(by).join(", ")}; ${sum((l) => l.guardKills)} daemon kills by the timer); ${completions} completions; ` +
            `${sum((l) => [...l.history.values()].reduce((m, h) => m + h.length, 0))} secrets published; ` +
            `${sum((l) => l.recovers)} lost rotations recovered by an operator`,
        );
        expect(kills).toBeGreaterThanOrEqual(KILLS);
        for (const label of LABELS)
          expect(tally(label, "kills"), `no ${label} run was killed`).toBeGreaterThan(0);
      } finally {
        await Promise.all(proxies.map((p) => p.close()));
        await emu.stop();
      }
    },
    scaled(600_000, 3_600_000),
  );
});

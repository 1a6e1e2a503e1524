import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startEmulator } from "../../src/emulator/index.js";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { Consumer, type Exchange, secretEvents } from "../helpers/consumer.js";
import { CrashLane, type CrashRunSpec, KillProxy, type RunChooser } from "../helpers/crash-harness.js";
import { ACCOUNT_A, ACCOUNT_B, testOptions } from "../helpers/emulator.js";
import { REDIRECT_URI } from "../oauth/support.js";
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
 *
 * Through it all, each lane's `consumer` client is used the way an application uses it:
 * examples/consumer/consumer.mjs (openid-client, a real process) reads the lane's file sink before
 * every refresh-token grant (test/helpers/consumer.ts). Its failed exchanges must be 0, except in the
 * window an operator's `rotate --recover` opens on purpose for this client (it deletes the old secret
 * before publishing a new one: the README's "rotate" section); those windows, from the emulator's
 * deletion (`GET /__emulator/secret-events`) to the consumer's next success, are printed.
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

/** The consumer's client: code + refresh, confidential, never dropped or edited by the loop. */
const CONSUMER_APP = {
  client_name: "consumer",
  token_endpoint_auth_method: "client_secret_basic",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  redirect_uris: [REDIRECT_URI],
  scopes: ["account-settings.read"],
};
const CONSUMER_INTERVAL_MS = 100;

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
    // Half the time one pick is the consumer's client, so its consumer lives through more rotations.
    const second = lane.random() < 0.5 ? CONSUMER_APP.client_name : lane.pick();
    const picks = [...new Set([lane.pick(), second])];
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
      const consumers: Consumer[] = [];
      try {
        const lanes = await Promise.all(
          LANES.map(async (account, i) => {
            const ws = await makeRotationWorkspace(emu, { account_id: account });
            await writeLoopConfig(ws);
            const proxy = new KillProxy(emu);
            proxies.push(proxy);
            const lane = new CrashLane(ws, emu, proxy, await proxy.listen(), prng(SEED + i), {
              chooser: mixedChooser,
            });
            await lane.pin(CONSUMER_APP);
            await lane.complete();
            const consumer = new Consumer({
              PATH: process.env["PATH"] ?? "",
              HOME: process.env["HOME"] ?? "",
              ISSUER: emu.issuer,
              INTERVAL_MS: String(CONSUMER_INTERVAL_MS),
              SINK: "file",
              SECRET_FILE: join(ws.secretsDir, ws.accountId, `${CONSUMER_APP.client_name}.json`),
            });
            await consumer.waitFor(0, (e) => e.ok);
            return { lane, consumer };
          }),
        ).then((pairs) => {
          consumers.push(...pairs.map((p) => p.consumer));
          return pairs.map((p) => p.lane);
        });
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
        const proofs = await Promise.all(
          lanes.map((lane, i) => consumerProof(emu, lane, consumers[i] as Consumer)),
        );
        const windows = proofs.flatMap((p) => p.windows);
        console.info(
          `crash loop consumers: ${proofs.reduce((n, p) => n + p.exchanges, 0)} exchanges, ` +
            `${proofs.reduce((n, p) => n + p.unexcused.length, 0)} failed outside a --recover window, ` +
            `with ${proofs.map((p) => p.secrets).join(" and ")} secrets in turn; ` +
            `${windows.length} --recover windows of the consumer's client` +
            (windows.length > 0
              ? ` (${windows.map((w) => `${w.windowMs} ms, ${w.failures} failed`).join("; ")})`
              : ""),
        );
        for (const proof of proofs) {
          expect(proof.unexcused, "consumer exchanges refused outside a --recover window").toEqual([]);
          expect(proof.readErrors).toBe(0);
          // The proof is not empty: each lane rotated the consumer's secret while it ran.
          expect(proof.secrets).toBeGreaterThan(1);
        }
        expect(kills).toBeGreaterThanOrEqual(KILLS);
        for (const label of LABELS)
          expect(tally(label, "kills"), `no ${label} run was killed`).toBeGreaterThan(0);
      } finally {
        await Promise.all(consumers.map((c) => c.stop()));
        await Promise.all(proxies.map((p) => p.close()));
        await emu.stop();
      }
    },
    scaled(600_000, 3_600_000),
  );
});

/** What a lane's consumer saw, its refusals split by whether an operator's --recover excused them. */
interface ConsumerProof {
  exchanges: number;
  /** Distinct secrets (by the sink record's issued_at) the consumer succeeded with. */
  secrets: number;
  readErrors: number;
  /** Refused exchanges outside every --recover window: must be none. */
  unexcused: Exchange[];
  windows: { windowMs: number; failures: number }[];
}

/**
 * Stops the lane's consumer and judges its exchanges. A --recover of the consumer's client deletes
 * the secret the sink holds (the API leaves no other way after a lost rotation) and then publishes a
 * new one: from that deletion (the emulator's `rotated_secret_deleted` during the --recover run) to
 * the consumer's next successful exchange started after it, refusals are the documented window.
 */
async function consumerProof(
  emu: EmulatorHandle,
  lane: CrashLane,
  consumer: Consumer,
): Promise<ConsumerProof> {
  const { code, summary } = await consumer.stop();
  expect(code, consumer.stderr).toBe(0);
  const record = await lane.ws.sinkRecord(CONSUMER_APP.client_name);
  const clientId = record?.client_id ?? "";
  const deletions = (await secretEvents(emu, clientId))
    .filter((e) => e.event === "rotated_secret_deleted")
    .map((e) => Date.parse(e.at))
    .filter((at) =>
      lane.recoverRuns.some(
        (r) => r.names.includes(CONSUMER_APP.client_name) && at >= r.startedAt && at <= r.endedAt,
      ),
    );
  const exchanges = consumer.exchanges;
  const windows = deletions.map((from) => {
    const next = exchanges.find((e) => e.ok && Date.parse(e.at) >= from);
    const to = next === undefined ? Infinity : Date.parse(next.at) + next.ms;
    const inside = (e: Exchange) => Date.parse(e.at) + e.ms >= from && Date.parse(e.at) <= to;
    return { from, to, inside };
  });
  for (const w of windows) expect(w.to, "the consumer never succeeded after a --recover").not.toBe(Infinity);
  return {
    exchanges: exchanges.length,
    secrets: new Set(exchanges.filter((e) => e.ok).map((e) => e.issued_at)).size,
    readErrors: summary?.read_errors ?? -1,
    unexcused: exchanges.filter((e) => !e.ok && !windows.some((w) => w.inside(e))),
    windows: windows.map((w) => ({
      windowMs: w.to - w.from,
      failures: exchanges.filter((e) => !e.ok && w.inside(e)).length,
    })),
  };
}

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import type { RunHistoryEntry } from "../../src/engine/daemon.js";
import { takeLock } from "../../src/state/lock.js";
import { ACCOUNT_A, control, startTestEmulator, WRITE_TOKEN } from "../helpers/emulator.js";
import {
  clientYaml,
  desiredYaml,
  eventually,
  liveByName,
  parsePrometheusText,
  readSinkRecord,
  startDaemon,
  tempDir,
  writeConfig,
  runFinished,
} from "./support.js";
import { verifiedSecret } from "../helpers/token-exchange.js";

/**
 * Each failure disposition drives the loop (src/engine/daemon/run-record.ts `outcomeOf`,
 * src/engine/triggers/run-queue.ts): a terminal failure stalls until new input, a wait retries at
 * the known time, a transient one backs off. The daemon is a real process, so its clock is the
 * wall clock: intervals are short and real, and every "no more calls" assertion is made after a
 * positive event (N interval requests counted by the daemon itself), with an upper bound derived
 * from those events, never after a bare sleep. The loop logic itself is tested on a manual clock in
 * test/daemon/triggers.test.ts.
 */

const LIST = "GET /accounts/:account_id/oauth_clients";

interface Status {
  loop: { state: string; reason?: string; until?: string };
  run_health: {
    healthy: boolean;
    stalled: boolean;
    stall_reason: string | null;
    waiting_until: string | null;
  };
  consecutive_failures: number;
  history: RunHistoryEntry[];
  running: unknown;
}

async function routeCount(emu: EmulatorHandle, route: string): Promise<number> {
  const stats = await control<{ by_route: Record<string, number> }>(emu, "GET", "stats");
  return stats.by_route[route] ?? 0;
}

function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  return parsePrometheusText(text)
    .get(name)
    ?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe("dispositions drive the loop (real process, emulator call counts)", () => {
  it("a revoked token stalls the loop: no calls over several intervals, back to work on the next file change", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-stall");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    await writeConfig(dir, "interval: 1s");
    await control(emu, "POST", "tokens", { revoke: [WRITE_TOKEN] });
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    const failed = await daemon.waitForLine(runFinished);
    expect(failed["result"]).toBe("error");
    expect(failed["next"]).toBe("terminal");

    const stalled = await daemon.get<Status>("/status");
    expect(stalled.body.loop.state).toBe("stalled");
    expect(stalled.body.run_health).toMatchObject({ healthy: false, stalled: true });
    expect(stalled.body.run_health.stall_reason).toMatch(/the API refused the credentials \(E_API_AUTH/);
    expect((await daemon.get("/readyz")).status).toBe(200); // readiness: the process takes triggers
    const listsAtStall = await routeCount(emu, LIST);
    expect(listsAtStall).toBeGreaterThan(0);

    // Positive event: the daemon itself counts three more interval requests while stalled.
    const intervals = async () =>
      metric((await daemon.get<string>("/metrics")).text, "cf_oauth_gitops_triggers_total", {
        reason: "interval",
      }) ?? 0;
    const before = await intervals();
    await eventually(
      async () => ((await intervals()) >= before + 3 ? true : undefined),
      20_000,
      "3 interval ticks",
    );
    // Each tick was a request the queue held: no run started and no API call was made.
    expect(await routeCount(emu, LIST)).toBe(listsAtStall);
    const during = await daemon.get<Status>("/status");
    expect(during.body.history).toHaveLength(1);
    expect(during.body.running).toBeNull();
    const m = (await daemon.get<string>("/metrics")).text;
    expect(metric(m, "cf_oauth_gitops_loop_state", { state: "stalled" })).toBe(1);
    expect(metric(m, "cf_oauth_gitops_ready")).toBe(1);

    // The token is fixed and the desired state changes: new input ends the stall.
    await control(emu, "POST", "tokens", { restore: [WRITE_TOKEN] });
    await writeFile(
      join(dir, "desired", "apps.yaml"),
      desiredYaml([clientYaml("alpha"), clientYaml("beta")]),
    );
    const ok = await daemon.waitForLine((l) => runFinished(l) && l["result"] === "ok");
    expect(ok["reasons"]).toContain("watch");
    expect([...(await liveByName(emu)).keys()].sort()).toEqual(["alpha", "beta"]);
    const after = await daemon.get<Status>("/status");
    expect(after.body.loop.state).toBe("idle");
    expect(after.body.run_health).toMatchObject({ healthy: true, stalled: false });
    expect(after.body.history.map((h) => [h.result, h.next])).toEqual([
      ["ok", "ok"],
      ["error", "terminal"],
    ]);
    expect(await daemon.stop()).toBe(0);
  });

  it("a locked state directory waits and is retried once the lock clears, with no API call while locked", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-locked");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    await writeConfig(dir, "interval: 1h");
    await mkdir(join(dir, "state", "journal"), { recursive: true });
    // Another live process (this one) holds the state directory, as a concurrent `apply` would.
    const lock = await takeLock(join(dir, "state", "journal", ".lock"));
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    const first = await daemon.waitForLine(runFinished);
    expect(first["result"]).toBe("error");
    expect(first["next"]).toBe("wait");
    const waiting = await daemon.get<Status>("/status");
    expect(waiting.body.loop.state).toBe("waiting");
    expect(waiting.body.run_health.stall_reason).toMatch(/^E_STATE_LOCKED/);
    expect(waiting.body.run_health.waiting_until).not.toBeNull();
    // Positive event: a second locked attempt (the retry at the wait's time), then the lock clears.
    const second = await daemon.waitForLine(
      (l) => runFinished(l) && (l["run"] as number) === 2 && l["result"] === "error",
    );
    expect(second["reasons"]).toEqual(["retry"]);
    expect(await routeCount(emu, LIST)).toBe(0); // the lock comes before any call
    await lock.release();
    const ok = await daemon.waitForLine((l) => runFinished(l) && l["result"] === "ok");
    expect(ok["reasons"]).toEqual(["retry"]);
    expect([...(await liveByName(emu)).keys()]).toEqual(["alpha"]);
    // Retries came no faster than the wait's poll (the base backoff, 5 s): at most one per 5 s.
    const history = (await daemon.get<Status>("/status")).body.history;
    const starts = history.map((h) => Date.parse(h.started)).reverse();
    for (let i = 1; i < starts.length; i++)
      expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(4_900);
    expect(await daemon.stop()).toBe(0);
  });

  it("a 5xx burst backs off exponentially, then the retry converges", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-5xx");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    await writeConfig(dir, "interval: 1s");
    await control(emu, "POST", "faults", { fault5xxRate: 1 });
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    const secondFailure = await daemon.waitForLine(
      (l) => runFinished(l) && (l["run"] as number) === 2,
      30_000,
    );
    expect(secondFailure["result"]).toBe("error");
    expect(secondFailure["next"]).toBe("transient");
    const status = (await daemon.get<Status>("/status")).body;
    expect(status.loop.state).toBe("backoff");
    expect(status.consecutive_failures).toBe(2);
    const [run2, run1] = status.history;
    // 5 s after the first failure, 10 s after the second; the 1 s interval does not cut in.
    const end1 = Date.parse(run1!.started) + (run1!.duration_seconds ?? 0) * 1000;
    expect(Date.parse(run2!.started) - end1).toBeGreaterThanOrEqual(4_900);
    const end2 = Date.parse(run2!.started) + (run2!.duration_seconds ?? 0) * 1000;
    expect(Date.parse(status.loop.until as string) - end2).toBeGreaterThanOrEqual(9_900);
    expect(run2!.reasons).toContain("retry");
    const listsInBurst = await routeCount(emu, LIST);
    await control(emu, "POST", "faults", { fault5xxRate: 0 });
    const ok = await daemon.waitForLine((l) => runFinished(l) && l["result"] === "ok", 30_000);
    expect(ok["run"]).toBe(3);
    expect([...(await liveByName(emu)).keys()]).toEqual(["alpha"]);
    // Two runs' worth of list attempts in the burst (the client's own retries included), not one per second.
    expect(listsInBurst).toBeLessThanOrEqual(2 * 5);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);

  it("a run due to rotate that fails rotates on its retry (the schedule fires once)", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-rotate-retry");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    const rotation = ["rotation:", "  every: 90d", "  grace: 24h", "  timezone: UTC"];
    await writeConfig(dir, ["interval: 1h", ...rotation].join("\n"));
    const once = await startDaemon({ cwd: dir, emulator: emu, args: ["--once"], listening: false });
    expect(await once.exited).toBe(0);
    const before = await readSinkRecord(join(dir, "secrets"), "alpha");

    // 91 days later the secret is due, and the API fails every call when the schedule fires. The
    // schedule fires once a day, at a second chosen just before the daemon starts; the daemon's clock
    // is the wall clock, so on a machine slow enough to start the daemon and finish its first run
    // after that second, the attempt is started again with a later second (the daemon's own log
    // says whether the second was still ahead: a positive event, not a sleep).
    let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
    for (let attempt = 1; attempt <= 3 && daemon === undefined; attempt++) {
      const fire = new Date(Math.ceil((Date.now() + 15_000 * attempt) / 1000) * 1000);
      const schedule = `${fire.getUTCSeconds()} ${fire.getUTCMinutes()} ${fire.getUTCHours()} * * *`;
      await writeConfig(dir, ["interval: 1h", ...rotation, `  schedule: "${schedule}"`].join("\n"));
      const candidate = await startDaemon({ cwd: dir, emulator: emu, clockOffset: "91d" });
      const started = await candidate.waitForLine((l) => l.msg === "rotation schedule started");
      await candidate.waitForLine((l) => runFinished(l) && l["result"] === "ok");
      await control(emu, "POST", "faults", { fault5xxRate: 1 });
      const ahead =
        Date.parse(String(started["next"])) === fire.getTime() && Date.now() < fire.getTime() - 500;
      if (ahead) daemon = candidate;
      else {
        await control(emu, "POST", "faults", { fault5xxRate: 0 });
        expect(await candidate.stop()).toBe(0);
      }
    }
    if (daemon === undefined)
      throw new Error("the daemon never started before its schedule's second, in 3 attempts");
    const failed = await daemon.waitForLine(
      (l) => runFinished(l) && (l["reasons"] as string[]).includes("rotation"),
      30_000,
    );
    expect(failed["result"]).toBe("error");
    expect((await readSinkRecord(join(dir, "secrets"), "alpha")).client_secret).toBe(before.client_secret);
    await control(emu, "POST", "faults", { fault5xxRate: 0 });
    const retried = await daemon.waitForLine(
      (l) => runFinished(l) && (l["run"] as number) === (failed["run"] as number) + 1,
      30_000,
    );
    expect([...(retried["reasons"] as string[])].sort()).toEqual(["retry", "rotation"]);
    expect(retried["result"]).toBe("ok");
    const after = await readSinkRecord(join(dir, "secrets"), "alpha");
    expect(after.client_id).toBe(before.client_id);
    expect(after.client_secret).not.toBe(before.client_secret);
    expect(await verifiedSecret(emu, ACCOUNT_A, after.client_id, after.client_secret)).toMatchObject({
      valid: true,
    });
    expect(daemon.output()).not.toContain(after.client_secret);
    expect(await daemon.stop()).toBe(0);
  }, 150_000);
});

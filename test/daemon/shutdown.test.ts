import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ACCOUNT_A, control, startTestEmulator } from "../helpers/emulator.js";
import {
  clientYaml,
  desiredYaml,
  eventually,
  liveByName,
  readSinkRecord,
  startDaemon,
  tempDir,
  writeConfig,
} from "./support.js";
import { verifiedSecret } from "../helpers/token-exchange.js";

const CLIENTS = 50;
const LATENCY_MS = 400;

describe("run: SIGTERM in the middle of a run (real process)", () => {
  it("exits 0 having finished the changes in flight; a restart converges with no duplicate and no lost secret", async () => {
    const emu = await startTestEmulator({ latencyMs: LATENCY_MS });
    const dir = await tempDir("daemon-term");
    await mkdir(join(dir, "desired"));
    const names = Array.from({ length: CLIENTS }, (_, i) => `app-${String(i).padStart(2, "0")}`);
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml(names.map((n) => clientYaml(n))));
    // The restart finishes a bulk create, and creates count toward max_change_percent (README,
    // "Ownership, prune and safety valves"): the valve is set out of the way of what this test is about.
    await writeConfig(dir, "interval: 1h\nsafety: {min_clients_for_percent: 1000}");

    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    // Creates are under way once the emulator holds a few of them (apply logs each phase at its end).
    await eventually(
      async () => ((await liveByName(emu)).size >= 6 ? true : undefined),
      30_000,
      "creates to start",
    );
    expect(await daemon.stop("SIGTERM")).toBe(0);
    const stopped = daemon.lines.find((l) => l.msg === "run stopped by shutdown");
    expect(stopped, daemon.output()).toBeDefined();
    // A request cut off by the shutdown would still be committed by the emulator after its latency:
    // wait until the emulator has finished every request it received.
    await eventually(
      async () =>
        (await control<{ requests: number }>(emu, "GET", "in-flight")).requests === 0 ? true : undefined,
      10_000,
      "the emulator to finish the requests in flight",
    );
    const afterStop = await liveByName(emu);
    expect(afterStop.size).toBeGreaterThan(0);
    expect(afterStop.size).toBeLessThan(CLIENTS);
    // Every client created before the stop got its secret published before the process exited.
    for (const [name, client] of afterStop) {
      const record = await readSinkRecord(join(dir, "secrets"), name);
      expect(record.client_id).toBe(client["client_id"]);
    }

    const restart = await startDaemon({ cwd: dir, emulator: emu, args: ["--once"], listening: false });
    expect(await restart.exited).toBe(0);
    const clients = await control<Record<string, unknown>[]>(emu, "GET", `clients?account_id=${ACCOUNT_A}`);
    // No secret had to be re-minted: nothing was lost on the way down.
    const stats = await control<{ by_route: Record<string, number> }>(emu, "GET", "stats");
    expect(Object.keys(stats.by_route).filter((route) => route.includes("rotate_secret"))).toEqual([]);
    expect(clients.map((c) => c["client_name"]).sort()).toEqual(names);
    const output = daemon.output() + restart.output();
    for (const client of clients) {
      const record = await readSinkRecord(join(dir, "secrets"), client["client_name"] as string);
      expect(record.client_id).toBe(client["client_id"]);
      const check = await verifiedSecret(emu, ACCOUNT_A, client["client_id"] as string, record.client_secret);
      expect(check.valid, `secret of ${String(client["client_name"])}`).toBe(true);
      expect(output).not.toContain(record.client_secret);
    }
  });
});

describe("run: SIGHUP (real process)", () => {
  it("shuts down like SIGTERM: the graceful path runs and the exit code is 0", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-hup");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("hup-app")]));
    await writeConfig(dir, "interval: 1h");

    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    await daemon.waitForLine((l) => l.msg === "run finished");
    // Node's default for SIGHUP is to die at once (exit code null, signal SIGHUP).
    expect(await daemon.stop("SIGHUP"), daemon.output()).toBe(0);
    expect(daemon.child.signalCode).toBeNull();
    expect(
      daemon.lines.some((l) => l.msg === "stopped"),
      daemon.output(),
    ).toBe(true);
  });
});

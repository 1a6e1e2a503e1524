import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { QueueStatus } from "../../src/engine/daemon.js";
import { control, startTestEmulator } from "../helpers/emulator.js";
import {
  clientYaml,
  type DaemonProcess,
  desiredYaml,
  eventually,
  liveByName,
  readSinkRecord,
  runFinished,
  startDaemon,
  tempDir,
  writeConfig,
} from "./support.js";

/**
 * `/status` `queue` (src/engine/daemon.ts `QueueStatus`): what the daemon holds to do, so that a
 * reader (an operator, a test waiting for the daemon to be idle) learns it from the daemon rather
 * than from a silence. The daemon is a real process over a watched desired directory: a retry held by
 * a backoff shows with its reason and start time, a file change settling in the watcher's debounce
 * shows as a pending trigger, a request made during a run shows as held by that run, and each is gone
 * once it has run. Every observation is a positive one: the status is read until it shows the
 * state, bounded by a deadline, and the state is then checked field by field.
 */

interface Status {
  loop: { state: string; until?: string };
  retry_at: string | null;
  last_run: { id: number; result: string; finished: string } | null;
  queue: QueueStatus;
}

const status = async (daemon: DaemonProcess) => (await daemon.get<Status>("/status")).body;

/** Reads /status until `check` accepts it (positive evidence, not a sleep). */
function statusWhen(daemon: DaemonProcess, check: (s: Status) => boolean, what: string, timeoutMs = 20_000) {
  return eventually(
    async () => {
      const s = await status(daemon);
      return check(s) ? s : undefined;
    },
    timeoutMs,
    what,
  );
}

const idle = (q: QueueStatus) =>
  !q.running && q.next_run === null && q.pending_triggers.length === 0 && q.runs_started === q.runs_finished;

async function watchedDirectory(prefix: string, config: string[] = []) {
  const dir = await tempDir(prefix);
  await mkdir(join(dir, "desired"));
  const file = join(dir, "desired", "apps.yaml");
  await writeFile(file, desiredYaml([clientYaml("alpha")]));
  // Only the watcher and the retry start runs: the backstop interval is an hour away.
  await writeConfig(dir, ["interval: 1h", ...config].join("\n"));
  return { dir, file };
}

describe("/status queue (real process, watched directory)", () => {
  it("shows the retry a backoff holds, with its reason and start time, and nothing once it ran", async () => {
    const emu = await startTestEmulator();
    const { dir } = await watchedDirectory("queue-backoff");
    await control(emu, "POST", "faults", { fault5xxRate: 1 });
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    const failed = await daemon.waitForLine((l) => runFinished(l) && l["run"] === 1, 30_000);
    expect(failed["next"]).toBe("transient");

    // The backoff (5 s) holds the retry: the status says so, and says when it starts.
    const held = await status(daemon);
    expect(held.loop.state).toBe("backoff");
    expect(held.queue).toEqual({
      running: false,
      next_run: { reasons: ["retry"], held_by: "backoff", starts_at: held.loop.until },
      pending_triggers: [],
      runs_started: 1,
      runs_finished: 1,
    });
    expect(held.retry_at).toBe(held.loop.until);
    expect(Date.parse(held.queue.next_run?.starts_at ?? "")).toBeGreaterThan(
      Date.parse(held.last_run?.finished ?? ""),
    );

    // The API answers again: the retry runs at its time, and then the queue holds nothing.
    await control(emu, "POST", "faults", { fault5xxRate: 0 });
    const ok = await daemon.waitForLine((l) => runFinished(l) && l["result"] === "ok", 30_000);
    expect(ok["reasons"]).toEqual(["retry"]);
    const after = await status(daemon);
    expect(after.queue).toEqual({
      running: false,
      next_run: null,
      pending_triggers: [],
      runs_started: 2,
      runs_finished: 2,
    });

    // Reasons, times and counts only: the secret the retry published is nowhere in the status.
    const secret = (await readSinkRecord(join(dir, "secrets"), "alpha")).client_secret;
    expect((await daemon.get("/status")).text).not.toContain(secret);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);

  it("shows a change settling in the watcher's debounce, then a request held by the run in flight", async () => {
    const emu = await startTestEmulator();
    // A long quiet period: the run for a change waits 4 s for the files to hold still, long enough
    // to be seen running on any machine.
    const { dir, file } = await watchedDirectory("queue-debounce", ["daemon:", "  quiet_period: 4s"]);
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    await daemon.waitForLine((l) => runFinished(l) && l["run"] === 1, 30_000);
    const first = await statusWhen(daemon, (s) => idle(s.queue), "idle after the first run");
    expect(first.queue.runs_finished).toBe(1);

    // A writer that keeps writing the file holds the debounce open (each event restarts it, up to
    // its 5 s cap): the status shows the burst settling before any run is requested for it.
    const content = desiredYaml([clientYaml("alpha"), clientYaml("bravo")]);
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await writeFile(file, content);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const settling = await statusWhen(
      daemon,
      (s) => s.queue.pending_triggers.length > 0,
      "a pending debounce in /status",
    ).finally(() => (writing = false));
    await writer;
    const [pending] = settling.queue.pending_triggers;
    expect(pending).toMatchObject({ trigger: "watch", kind: "debounce" });
    expect(pending?.paths).toBeGreaterThan(0);
    expect(Date.parse(pending?.due_at ?? "")).not.toBeNaN();

    // The burst requests a run (in its quiet period now); a change made while it runs is held by it,
    // to start when it ends.
    const running = await statusWhen(
      daemon,
      (s) => s.queue.running && s.queue.pending_triggers.length === 0 && s.queue.next_run === null,
      "the change's run in flight",
    );
    await writeFile(file, content);
    const queued = await statusWhen(daemon, (s) => s.queue.next_run !== null, "a request held by the run");
    expect(queued.queue).toMatchObject({
      running: true,
      next_run: { reasons: ["watch"], held_by: "running", starts_at: null },
      pending_triggers: [],
      runs_started: running.queue.runs_started,
      runs_finished: running.queue.runs_started - 1,
    });

    // The held request runs after that run, and then nothing is left.
    const done = await statusWhen(daemon, (s) => idle(s.queue), "idle after the held run", 30_000);
    expect(done.queue).toEqual({
      running: false,
      next_run: null,
      pending_triggers: [],
      runs_started: queued.queue.runs_started + 1,
      runs_finished: queued.queue.runs_started + 1,
    });
    expect(done.last_run?.id).toBe(done.queue.runs_finished);
    expect([...(await liveByName(emu)).keys()].sort()).toEqual(["alpha", "bravo"]);
    expect(await daemon.stop()).toBe(0);
  }, 90_000);
});

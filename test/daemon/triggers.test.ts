import { mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { Writable } from "node:stream";
import { createLogger, type Logger, silentLogger } from "../../src/log.js";
import { CATCH_UP_SECONDS, CronSchedule, CronTrigger } from "../../src/engine/triggers/cron.js";
import { IntervalTrigger, jitteredMs } from "../../src/engine/triggers/interval.js";
import { RunQueue, type StepOutcome } from "../../src/engine/triggers/run-queue.js";
import type { TriggerReason } from "../../src/engine/triggers/types.js";
import { WatchTrigger } from "../../src/engine/triggers/watch.js";
import { ManualScheduler, settle } from "../helpers/clock.js";
import { eventually, tempDir } from "./support.js";

/** A step whose runs the test releases one at a time, each with the outcome it is given. */
function gatedStep() {
  const runs: TriggerReason[][] = [];
  let release: ((outcome: StepOutcome) => void) | null = null;
  const step = async (reasons: ReadonlySet<TriggerReason>): Promise<StepOutcome> => {
    runs.push([...reasons].sort());
    return new Promise<StepOutcome>((resolve) => (release = resolve));
  };
  const releaseRun = async (outcome: StepOutcome = { kind: "ok" }) => {
    await eventually(async () => (release ? true : undefined), 5_000, "a run to start");
    const r = release as unknown as (o: StepOutcome) => void;
    release = null;
    r(outcome);
  };
  return {
    runs,
    step,
    releaseRun,
    get started() {
      return release !== null;
    },
  };
}

const TRANSIENT: StepOutcome = { kind: "transient" };
const REVOKED: StepOutcome = { kind: "terminal", reason: "E_API_AUTH: token revoked" };

describe("RunQueue (manual clock)", () => {
  it("runs one at a time and coalesces requests made during a run into one follow-up", async () => {
    const { runs, step, releaseRun } = gatedStep();
    const clock = new ManualScheduler();
    const queue = new RunQueue({ step, logger: silentLogger, scheduler: clock });
    queue.request("startup");
    for (const reason of ["webhook", "watch", "webhook", "interval", "git-poll"] as const)
      queue.request(reason);
    expect(runs).toEqual([["startup"]]);
    await releaseRun();
    await releaseRun();
    await queue.idle();
    expect(runs).toEqual([["startup"], ["git-poll", "interval", "watch", "webhook"]]);
  });

  it("backs off after transient failures; news starts a run at once, timers wait for the backoff", async () => {
    const { runs, step, releaseRun } = gatedStep();
    const clock = new ManualScheduler();
    const queue = new RunQueue({
      step,
      logger: silentLogger,
      backoff: { baseMs: 60_000, capMs: 60_000 },
      scheduler: clock,
    });
    queue.request("startup");
    await releaseRun(TRANSIENT);
    await queue.idle();
    expect(queue.consecutiveFailures).toBe(1);
    expect(queue.backoffUntil).toBe(clock.now() + 60_000);
    expect(queue.state).toEqual({ state: "backoff", until: clock.now() + 60_000 });
    queue.request("interval");
    await clock.advance(59_999);
    expect(runs).toHaveLength(1); // the retry and the interval wait for the backoff
    queue.request("webhook");
    await releaseRun(TRANSIENT);
    await queue.idle();
    expect(runs[1]).toEqual(["interval", "retry", "webhook"]);
    expect(queue.consecutiveFailures).toBe(2);
    // The retry after the second failure starts exactly when its backoff ends.
    await clock.advance(59_999);
    expect(runs).toHaveLength(2);
    await clock.advance(1);
    expect(runs[2]).toEqual(["retry"]);
    await releaseRun();
    await queue.idle();
    expect(queue.state).toEqual({ state: "idle" });
    await queue.close();
    queue.request("webhook");
    expect(runs).toHaveLength(3);
  });

  it("stalls on a terminal failure: timers never run it again, new input does, and owed rotation is carried", async () => {
    const { runs, step, releaseRun } = gatedStep();
    const clock = new ManualScheduler();
    const queue = new RunQueue({ step, logger: silentLogger, scheduler: clock });
    queue.request("rotation");
    await releaseRun(REVOKED);
    await queue.idle();
    expect(queue.state).toEqual({ state: "stalled", since: clock.now(), reason: REVOKED.reason });
    expect(queue.backoffUntil).toBeNull();
    // A day of interval ticks and rotation fires: no run starts.
    for (let i = 0; i < 24; i++) {
      queue.request("interval");
      queue.request("rotation");
      await clock.advance(3_600_000);
    }
    expect(runs).toEqual([["rotation"]]);
    expect(clock.pending).toBe(0); // not even a retry timer
    // A commit: the run starts at once and still owes the rotation.
    queue.request("git-poll");
    await releaseRun({ kind: "ok" });
    await queue.idle();
    expect(runs[1]).toEqual(["git-poll", "interval", "rotation"]);
    expect(queue.state).toEqual({ state: "idle" });
    expect(queue.consecutiveFailures).toBe(0);
  });

  it("a transient failure of a run due to rotate retries with the rotation reason", async () => {
    const { runs, step, releaseRun } = gatedStep();
    const clock = new ManualScheduler();
    const queue = new RunQueue({
      step,
      logger: silentLogger,
      backoff: { baseMs: 1_000, capMs: 1_000 },
      scheduler: clock,
    });
    queue.request("rotation");
    await releaseRun(TRANSIENT);
    await clock.advance(1_000);
    await releaseRun();
    await queue.idle();
    expect(runs).toEqual([["rotation"], ["retry", "rotation"]]);
  });

  it("waits for the known time (no exponential growth), or the base backoff when none is known", async () => {
    const { runs, step, releaseRun } = gatedStep();
    const clock = new ManualScheduler();
    const queue = new RunQueue({
      step,
      logger: silentLogger,
      backoff: { baseMs: 5_000, capMs: 300_000 },
      scheduler: clock,
    });
    queue.request("startup");
    const reset = clock.now() + 120_000;
    await releaseRun({ kind: "wait", reason: "E_API_RATE_LIMITED", untilMs: reset });
    await queue.idle();
    expect(queue.state).toEqual({ state: "waiting", until: reset, reason: "E_API_RATE_LIMITED" });
    queue.request("interval");
    await clock.advance(119_999);
    expect(runs).toHaveLength(1);
    await clock.advance(1);
    expect(runs).toHaveLength(2);
    for (let i = 0; i < 3; i++) {
      await releaseRun({ kind: "wait", reason: "E_STATE_LOCKED", untilMs: null });
      await queue.idle();
      await clock.advance(4_999);
      expect(runs).toHaveLength(2 + i);
      await clock.advance(1);
      expect(runs).toHaveLength(3 + i);
    }
    await releaseRun();
    await queue.idle();
    expect(queue.state).toEqual({ state: "idle" });
  });

  it("reports the run it holds: its reasons, what holds it and when it starts; null once it ran", async () => {
    const { step, releaseRun } = gatedStep();
    const clock = new ManualScheduler();
    const queue = new RunQueue({
      step,
      logger: silentLogger,
      backoff: { baseMs: 60_000, capMs: 60_000 },
      scheduler: clock,
    });
    expect(queue.queued).toBeNull();
    queue.request("startup");
    expect(queue.queued).toBeNull(); // started at once: nothing held
    queue.request("webhook");
    queue.request("interval");
    expect(queue.queued).toEqual({ reasons: ["webhook", "interval"], heldBy: "running", startsAt: null });
    await releaseRun(TRANSIENT);
    // The follow-up started at once (a webhook is news); it fails too: the retry waits the backoff.
    await releaseRun(TRANSIENT);
    await queue.idle();
    expect(queue.queued).toEqual({ reasons: ["retry"], heldBy: "backoff", startsAt: clock.now() + 60_000 });
    queue.request("interval");
    expect(queue.queued?.reasons).toEqual(["retry", "interval"]);
    await clock.advance(60_000);
    expect(queue.queued).toBeNull();
    await releaseRun({ kind: "wait", reason: "E_STATE_LOCKED", untilMs: clock.now() + 7_000 });
    await queue.idle();
    expect(queue.queued).toEqual({ reasons: ["retry"], heldBy: "waiting", startsAt: clock.now() + 7_000 });
    await clock.advance(7_000);
    await releaseRun(REVOKED);
    await queue.idle();
    queue.request("interval");
    expect(queue.queued).toEqual({ reasons: ["interval"], heldBy: "stalled", startsAt: null });
    queue.request("watch");
    expect(queue.queued).toBeNull(); // new input ends the stall: the run started
    await releaseRun();
    await queue.idle();
    expect(queue.queued).toBeNull();
    await queue.close();
    queue.request("interval");
    expect(queue.queued).toBeNull();
  });
});

describe("IntervalTrigger (manual clock)", () => {
  it("ticks once per interval, and reset() pushes the next tick a full interval away", async () => {
    const clock = new ManualScheduler();
    const ticks: number[] = [];
    const trigger = new IntervalTrigger({
      name: "interval",
      seconds: 60,
      jitter: 0,
      onTick: () => void ticks.push(clock.now()),
      logger: silentLogger,
      scheduler: clock,
    });
    const t0 = clock.now();
    await trigger.start();
    expect(trigger.nextAt).toBe(t0 + 60_000);
    await clock.advance(59_999);
    expect(ticks).toEqual([]);
    await clock.advance(1);
    expect(ticks).toEqual([t0 + 60_000]);
    await clock.advance(30_000);
    trigger.reset();
    await clock.advance(59_999);
    expect(ticks).toHaveLength(1);
    await clock.advance(1);
    expect(ticks).toEqual([t0 + 60_000, t0 + 150_000]);
    await trigger.stop();
    await clock.advance(600_000);
    expect(ticks).toHaveLength(2);
    expect(clock.pending).toBe(0);
  });

  it("reports a tick whose check is still running (a git poll asking the remote) as pending", async () => {
    const clock = new ManualScheduler();
    let answer: (() => void) | null = null;
    const trigger = new IntervalTrigger({
      name: "git-poll",
      seconds: 60,
      jitter: 0,
      onTick: () => new Promise<void>((resolve) => (answer = resolve)),
      logger: silentLogger,
      scheduler: clock,
    });
    await trigger.start();
    expect(trigger.pending()).toBeNull();
    await clock.advance(60_000);
    expect(trigger.pending()).toEqual({ trigger: "git-poll", kind: "check", dueAt: null, paths: 0 });
    (answer as unknown as () => void)();
    await settle();
    expect(trigger.pending()).toBeNull();
    await trigger.stop();
  });
});

describe("jitteredMs", () => {
  it("stays within ±10% of the interval", () => {
    expect(jitteredMs(600, 0.1, () => 0)).toBe(540_000);
    expect(jitteredMs(600, 0.1, () => 0.5)).toBe(600_000);
    expect(jitteredMs(600, 0.1, () => 0.999999)).toBeLessThanOrEqual(660_000);
  });
});

/** Advances `clock` by `stepMs` at a time, letting real file events arrive in between, until `done`. */
async function pumpUntil(
  clock: ManualScheduler,
  done: () => boolean,
  what: string,
  stepMs = 100,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await clock.advance(stepMs);
    await new Promise((r) => setTimeout(r, 10)); // real file events are real I/O
  }
}

/** A logger that keeps each message and line (the trigger's own account of what it saw). */
function recordingLogger(): { logger: Logger; messages: string[]; lines: Record<string, unknown>[] } {
  const messages: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString("utf8").split("\n").filter(Boolean)) {
        const line = JSON.parse(text) as Record<string, unknown> & { msg: string };
        lines.push(line);
        messages.push(line.msg);
      }
      callback();
    },
  });
  return { logger: createLogger({ level: "debug", destination: destination as never }), messages, lines };
}

describe("WatchTrigger (manual clock for the debounce and the root check)", () => {
  async function watching(dir: string) {
    const clock = new ManualScheduler();
    const calls: number[] = [];
    const trigger = new WatchTrigger({
      paths: [dir],
      ignore: [join(dir, "state")],
      debounceMs: 150,
      onChange: (n) => calls.push(n),
      logger: silentLogger,
      scheduler: clock,
    });
    await trigger.start();
    return { calls, clock, trigger, stop: () => trigger.stop() };
  }

  it("turns a burst of writes (a checkout of many files) into one request, and ignores the state directory", async () => {
    const dir = await tempDir("watch-burst");
    await mkdir(join(dir, "state"));
    const w = await watching(dir);
    try {
      // A state write, then one desired file: once the desired file's event is in, the debounce
      // fires with exactly that one event (the state write, earlier, would have been counted first).
      await writeFile(join(dir, "state", "inventory.json"), "{}");
      await writeFile(join(dir, "first.yaml"), "clients: []\n");
      await eventually(async () => (w.trigger.pendingPaths > 0 ? true : undefined), 10_000);
      expect(w.calls).toEqual([]); // the clock has not moved: the debounce has not ended
      // The burst is reported pending, due when the debounce ends (events are timed on the clock).
      expect(w.trigger.pending()).toEqual({
        trigger: "watch",
        kind: "debounce",
        dueAt: w.clock.now() + 150,
        paths: 1,
      });
      await w.clock.advance(150);
      expect(w.calls).toEqual([1]);
      expect(w.trigger.pending()).toBeNull();
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => writeFile(join(dir, `f${i}.yaml`), "clients: []\n")),
      );
      await eventually(async () => (w.trigger.pendingPaths >= 100 ? true : undefined), 10_000);
      await w.clock.advance(150);
      expect(w.calls).toEqual([1, 100]);
    } finally {
      await w.stop();
    }
  });

  it("sees a Kubernetes ConfigMap update (the ..data symlink swapped)", async () => {
    const dir = await tempDir("watch-configmap");
    // The kubelet's layout: ..<timestamp>/ holds the files, ..data -> it, and each key -> ..data/key.
    await mkdir(join(dir, "..2024_01_01_00_00_00.1"));
    await writeFile(join(dir, "..2024_01_01_00_00_00.1", "apps.yaml"), "clients: []\n");
    await symlink("..2024_01_01_00_00_00.1", join(dir, "..data"));
    await symlink(join("..data", "apps.yaml"), join(dir, "apps.yaml"));
    const w = await watching(dir);
    const swap = async (from: string, to: string) => {
      await mkdir(join(dir, to));
      await writeFile(join(dir, to, "apps.yaml"), `clients: [] # ${to}\n`);
      await symlink(to, join(dir, "..data_tmp"));
      await rename(join(dir, "..data_tmp"), join(dir, "..data"));
      await rm(join(dir, from), { recursive: true });
    };
    try {
      await swap("..2024_01_01_00_00_00.1", "..2024_01_01_00_05_00.2");
      await pumpUntil(w.clock, () => w.calls.length > 0, "the swap to be seen");
      // The watcher survives the swap: the next update is seen too.
      const seen = w.calls.length;
      await swap("..2024_01_01_00_05_00.2", "..2024_01_01_00_10_00.3");
      await pumpUntil(w.clock, () => w.calls.length > seen, "the second swap to be seen");
    } finally {
      await w.stop();
    }
  });

  for (const [label, replace] of [
    [
      "renamed away and back (mv desired x && mv x desired)",
      async (root: string, aside: string, gone: () => Promise<void>) => {
        await rename(root, aside);
        await gone(); // the watcher noticed the directory went away (the case that went deaf)
        await rename(aside, root);
      },
    ],
    [
      "deleted and created again",
      async (root: string, _aside: string, gone: () => Promise<void>) => {
        await rm(root, { recursive: true });
        await gone();
        await mkdir(root);
      },
    ],
  ] as const) {
    it(`keeps hearing a watched directory ${label}`, async () => {
      const base = await tempDir("watch-rearm");
      const root = join(base, "desired");
      await mkdir(root);
      await writeFile(join(root, "a.yaml"), "clients: []\n");
      const clock = new ManualScheduler();
      const { logger, messages } = recordingLogger();
      const calls: number[] = [];
      const trigger = new WatchTrigger({
        paths: [root],
        debounceMs: 50,
        rootCheckMs: 200,
        onChange: (n) => calls.push(n),
        logger,
        scheduler: clock,
      });
      await trigger.start();
      try {
        // Gone is seen either from the watcher's own event or from the root check's.
        const noticed = () =>
          trigger.pendingPaths > 0 ||
          calls.length > 0 ||
          messages.includes("a watched path is gone; watching for it to come back");
        await replace(root, join(base, "x"), () =>
          pumpUntil(clock, noticed, "the watcher to see the path go"),
        );
        // The re-armed watcher asks for a run of its own (the contents may have changed unheard).
        await pumpUntil(clock, () => messages.includes("watched path replaced; watching it again"), "re-arm");
        await pumpUntil(clock, () => calls.length > 0, "the replacement to be seen");
        // Positive evidence the new watcher is armed: each later write is heard.
        for (let i = 0; i < 2; i++) {
          const seen = calls.length;
          await writeFile(join(root, `after-${i}.yaml`), "clients: []\n");
          await pumpUntil(clock, () => calls.length > seen, `write ${i} after the replacement to be seen`);
        }
      } finally {
        await trigger.stop();
      }
    });
  }
});

const at = (iso: string) => Date.parse(iso);

describe("CronTrigger (manual clock)", () => {
  // ManualScheduler starts at 2030-01-01T00:00:00Z, which is 05:30:00 in Asia/Kolkata (UTC+05:30).
  function cronTrigger(schedule: string, clock = new ManualScheduler(), logger: Logger = silentLogger) {
    const ticks: number[] = [];
    const trigger = new CronTrigger({
      schedule,
      timezone: "Asia/Kolkata",
      onTick: () => void ticks.push(clock.now()),
      logger,
      scheduler: clock,
    });
    onTestFinished(() => trigger.stop());
    return { clock, ticks, trigger };
  }

  it("fires at the matching seconds in its time zone, and not in between", async () => {
    const { clock, ticks, trigger } = cronTrigger("*/20 31 5 * * *"); // 05:31:00, :20, :40 IST
    await trigger.start();
    await clock.advance(59_999);
    expect(ticks).toEqual([]);
    await clock.advance(1);
    expect(ticks).toEqual([at("2030-01-01T00:01:00Z")]);
    await clock.advance(19_999);
    expect(ticks).toHaveLength(1);
    await clock.advance(1);
    await clock.advance(20_000);
    expect(ticks).toEqual([
      at("2030-01-01T00:01:00Z"),
      at("2030-01-01T00:01:20Z"),
      at("2030-01-01T00:01:40Z"),
    ]);
    // Nothing else that minute or the next: minute 31 only. The trigger still ticks every second.
    await clock.advance(140_000);
    expect(ticks).toHaveLength(3);
    expect(clock.pending).toBe(1);
    expect(clock.nextAt).toBe(clock.now() + 1_000);
  });

  it("fires once for a stall across several matching seconds, and the next match on time", async () => {
    const { clock, ticks, trigger } = cronTrigger("*/10 31 5 * * *"); // 05:31:00, :10, ..., :50 IST
    await trigger.start();
    await clock.advance(59_000); // 05:30:59
    clock.stall(35_000); // the event loop is blocked through 05:31:00, :10, :20 and :30
    await clock.advance(0);
    expect(ticks).toEqual([at("2030-01-01T00:01:34Z")]);
    await clock.advance(5_999);
    expect(ticks).toHaveLength(1);
    await clock.advance(1);
    expect(ticks).toEqual([at("2030-01-01T00:01:34Z"), at("2030-01-01T00:01:40Z")]);
  });

  it(`catches up a fire at most ${CATCH_UP_SECONDS} s late; a longer gap is logged and skipped`, async () => {
    const due = at("2030-01-01T00:01:00Z"); // 05:31:00 IST, once a day
    const late = async (seconds: number) => {
      const recorder = recordingLogger();
      const t = cronTrigger("0 31 5 * * *", new ManualScheduler(), recorder.logger);
      await t.trigger.start();
      await t.clock.advance(59_000);
      t.clock.stall(1_000 + seconds * 1_000);
      await t.clock.advance(0);
      return { ...t, lines: recorder.lines };
    };
    const caught = await late(CATCH_UP_SECONDS);
    expect(caught.ticks).toEqual([due + CATCH_UP_SECONDS * 1_000]);
    expect(caught.lines).toContainEqual(
      expect.objectContaining({ msg: "rotation schedule fired late", late_seconds: CATCH_UP_SECONDS }),
    );

    const skipped = await late(CATCH_UP_SECONDS + 1);
    expect(skipped.ticks).toEqual([]);
    expect(skipped.lines).toContainEqual(
      expect.objectContaining({ level: 40, missed: "2030-01-01T00:01:00.000Z" }),
    );
    // The schedule goes on: the next day's fire is on time.
    expect(skipped.trigger.nextRun()?.toISOString()).toBe("2030-01-02T00:01:00.000Z");
    skipped.clock.stall(at("2030-01-02T00:00:59Z") - skipped.clock.now()); // crosses no match
    await skipped.clock.advance(0);
    expect(skipped.ticks).toEqual([]);
    await skipped.clock.advance(1_000);
    expect(skipped.ticks).toEqual([at("2030-01-02T00:01:00Z")]);
  });

  it("stop cancels the pending tick", async () => {
    const { clock, ticks, trigger } = cronTrigger("* * * * * *");
    await trigger.start();
    expect(clock.pending).toBe(1);
    await clock.advance(2_000);
    expect(ticks).toEqual([at("2030-01-01T00:00:01Z"), at("2030-01-01T00:00:02Z")]);
    await trigger.stop();
    expect(clock.pending).toBe(0);
    expect(trigger.nextRun()).toBeNull();
    await clock.advance(60_000);
    expect(ticks).toHaveLength(2);
  });

  it("reports the next run from the scheduler's clock", async () => {
    const { clock, ticks, trigger } = cronTrigger("0 3 * * *"); // 03:00 IST = 21:30Z the day before
    await trigger.start();
    expect(trigger.nextRun()?.toISOString()).toBe("2030-01-01T21:30:00.000Z");
    clock.stall(at("2030-01-01T21:29:59Z") - clock.now());
    await clock.advance(0);
    expect(trigger.nextRun()?.toISOString()).toBe("2030-01-01T21:30:00.000Z");
    await clock.advance(1_000);
    expect(ticks).toEqual([at("2030-01-01T21:30:00Z")]);
    expect(trigger.nextRun()?.toISOString()).toBe("2030-01-02T21:30:00.000Z");

    // Another clock, another answer; a yearly schedule is found without walking every minute.
    const yearly = cronTrigger("0 3 1 1 *", new ManualScheduler(at("2031-06-15T12:00:00Z")));
    await yearly.trigger.start();
    const t0 = performance.now();
    expect(yearly.trigger.nextRun()?.toISOString()).toBe("2031-12-31T21:30:00.000Z");
    expect(performance.now() - t0).toBeLessThan(500); // tens of milliseconds at most; seconds by minute
  });
});

describe("CronSchedule.nextAfter", () => {
  /** Every matching second in [from, to], stepping `stepSeconds` (60 for expressions at second 0). */
  function everyMatch(schedule: CronSchedule, from: number, to: number, stepSeconds: number): number[] {
    const out: number[] = [];
    for (let s = from / 1000; s <= to / 1000; s += stepSeconds) if (schedule.matches(s)) out.push(s * 1000);
    return out;
  }

  // Around DST changes (New York 2030-03-10 and 2030-11-03; Lord Howe's half hour on 2030-04-07 and
  // 2030-10-06; Berlin 2030-03-31), a month end, and a zone without DST.
  const cases: { zone: string; from: string; expressions: string[] }[] = [
    {
      zone: "America/New_York",
      from: "2030-03-09T00:00:00Z",
      expressions: ["*/30 2 * * *", "30 1 * * *", "0 3 * * *", "15 2,3 * * *", "*/45 * * * *"],
    },
    {
      zone: "America/New_York",
      from: "2030-11-02T00:00:00Z",
      expressions: ["*/30 2 * * *", "30 1 * * *", "0 3 * * *", "15 1,2 * * *", "*/45 * * * *"],
    },
    {
      zone: "Australia/Lord_Howe",
      from: "2030-04-06T00:00:00Z",
      expressions: ["*/15 1,2 * * *", "45 1 * * 0"],
    },
    { zone: "Australia/Lord_Howe", from: "2030-10-05T00:00:00Z", expressions: ["*/15 2 * * *", "0 3 * * *"] },
    {
      zone: "Europe/Berlin",
      from: "2030-03-29T00:00:00Z",
      expressions: ["30 2 * * *", "0 9 * * 0", "0 0 L * *"],
    },
    {
      zone: "Asia/Kolkata",
      from: "2030-01-30T00:00:00Z",
      expressions: ["0 3 L * *", "0 0 1 * *", "*/7 23 * * *"],
    },
  ];
  for (const { zone, from, expressions } of cases) {
    for (const expression of expressions) {
      it(`${expression} in ${zone} from ${from}: the first match a minute-by-minute scan finds`, async () => {
        const schedule = new CronSchedule(expression, zone);
        onTestFinished(() => schedule.dispose());
        const start = at(from);
        const matches = everyMatch(schedule, start, start + 3 * 86_400_000, 60);
        expect(matches.length).toBeGreaterThan(0);
        // From every 16 min 53 s over the first two days (the answer is always within the scan).
        for (let t = start; t < start + 2 * 86_400_000; t += 1_013_000) {
          const expected = matches.find((m) => m > t);
          if (expected === undefined) continue;
          expect(new Date(schedule.nextAfter(t) ?? 0).toISOString(), new Date(t).toISOString()).toBe(
            new Date(expected).toISOString(),
          );
        }
      });
    }
  }

  it("finds seconds in a repeated hour (New York, 2030-11-03: 01:59 happens twice)", async () => {
    const schedule = new CronSchedule("*/20 59 1 * * *", "America/New_York");
    onTestFinished(() => schedule.dispose());
    const start = at("2030-11-03T05:00:00Z");
    const matches = everyMatch(schedule, start, start + 3 * 3_600_000, 1);
    expect(matches).toHaveLength(6);
    for (let t = start; t < matches.at(-1)!; t += 97_000) {
      expect(schedule.nextAfter(t)).toBe(matches.find((m) => m > t));
    }
  });

  it("returns null when nothing matches within the horizon", async () => {
    const schedule = new CronSchedule("0 0 29 2 1", "UTC"); // 29 February on a Monday: not 2030-2039
    onTestFinished(() => schedule.dispose());
    expect(schedule.nextAfter(at("2030-01-01T00:00:00Z"))).toBeNull();
  });
});

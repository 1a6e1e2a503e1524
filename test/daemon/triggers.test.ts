import { mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.js";
import { jitteredMs } from "../../src/engine/triggers/interval.js";
import { backoffMs, RunQueue, type StepOutcome } from "../../src/engine/triggers/run-queue.js";
import type { TriggerReason } from "../../src/engine/triggers/types.js";
import { WatchTrigger } from "../../src/engine/triggers/watch.js";
import { eventually, tempDir } from "./support.js";

/** A step whose runs the test releases one at a time. */
function gatedStep(outcomes: StepOutcome[] = []) {
  const runs: TriggerReason[][] = [];
  let release: (() => void) | null = null;
  const step = async (reasons: ReadonlySet<TriggerReason>): Promise<StepOutcome> => {
    runs.push([...reasons].sort());
    await new Promise<void>((resolve) => (release = resolve));
    return outcomes.shift() ?? "ok";
  };
  const releaseRun = async () => {
    await eventually(async () => (release ? true : undefined), 5_000, "a run to start");
    const r = release as unknown as () => void;
    release = null;
    r();
  };
  return { runs, step, releaseRun };
}

describe("RunQueue", () => {
  it("runs one at a time and coalesces requests made during a run into one follow-up", async () => {
    const { runs, step, releaseRun } = gatedStep();
    const queue = new RunQueue({ step, logger: silentLogger });
    queue.request("startup");
    for (const reason of ["webhook", "watch", "webhook", "interval", "git-poll"] as const)
      queue.request(reason);
    expect(runs).toEqual([["startup"]]);
    await releaseRun();
    await releaseRun();
    await queue.idle();
    expect(runs).toEqual([["startup"], ["git-poll", "interval", "watch", "webhook"]]);
  });

  it("backs off after failures; news starts a run at once, timers wait", async () => {
    const { runs, step, releaseRun } = gatedStep(["failed", "failed"]);
    const queue = new RunQueue({ step, logger: silentLogger, backoff: { baseMs: 60_000, capMs: 60_000 } });
    queue.request("startup");
    await releaseRun();
    await queue.idle();
    expect(queue.consecutiveFailures).toBe(1);
    expect(queue.backoffUntil).not.toBeNull();
    queue.request("interval");
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toHaveLength(1); // the retry and the interval wait for the backoff
    queue.request("webhook");
    await releaseRun();
    await queue.idle();
    expect(runs[1]).toEqual(["interval", "retry", "webhook"]);
    expect(queue.consecutiveFailures).toBe(2);
    await queue.close();
    queue.request("webhook");
    expect(runs).toHaveLength(2);
  });

  it("computes capped exponential delays", () => {
    const options = { baseMs: 1_000, capMs: 8_000 };
    expect([0, 1, 2, 3, 4, 5, 50].map((n) => backoffMs(n, options))).toEqual([
      0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000,
    ]);
  });
});

describe("jitteredMs", () => {
  it("stays within ±10% of the interval", () => {
    expect(jitteredMs(600, 0.1, () => 0)).toBe(540_000);
    expect(jitteredMs(600, 0.1, () => 0.5)).toBe(600_000);
    expect(jitteredMs(600, 0.1, () => 0.999999)).toBeLessThanOrEqual(660_000);
  });
});

describe("WatchTrigger", () => {
  async function watching(dir: string) {
    const calls: number[] = [];
    const trigger = new WatchTrigger({
      paths: [dir],
      ignore: [join(dir, "state")],
      debounceMs: 150,
      onChange: (n) => calls.push(n),
      logger: silentLogger,
    });
    await trigger.start();
    return { calls, stop: () => trigger.stop() };
  }

  it("turns a burst of writes (a checkout of many files) into a few requests, and ignores the state directory", async () => {
    const dir = await tempDir("watch-burst");
    await mkdir(join(dir, "state"));
    const w = await watching(dir);
    try {
      await writeFile(join(dir, "state", "inventory.json"), "{}");
      await new Promise((r) => setTimeout(r, 400));
      expect(w.calls).toEqual([]);
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => writeFile(join(dir, `f${i}.yaml`), "clients: []\n")),
      );
      await eventually(async () => (w.calls.length > 0 ? true : undefined), 10_000);
      await new Promise((r) => setTimeout(r, 400));
      expect(w.calls.length).toBeLessThanOrEqual(3);
      expect(w.calls.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(100);
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
      await eventually(async () => (w.calls.length > 0 ? true : undefined), 10_000, "the swap to be seen");
      // The watcher survives the swap: the next update is seen too.
      const seen = w.calls.length;
      await new Promise((r) => setTimeout(r, 300));
      await swap("..2024_01_01_00_05_00.2", "..2024_01_01_00_10_00.3");
      await eventually(
        async () => (w.calls.length > seen ? true : undefined),
        10_000,
        "the second swap to be seen",
      );
    } finally {
      await w.stop();
    }
  });

  for (const [label, replace] of [
    [
      "renamed away and back (mv desired x && mv x desired)",
      async (root: string, aside: string) => {
        await rename(root, aside);
        // Long enough for the watcher to notice the directory went away (the case that went deaf).
        await new Promise((r) => setTimeout(r, 300));
        await rename(aside, root);
      },
    ],
    [
      "deleted and created again",
      async (root: string) => {
        await rm(root, { recursive: true });
        await new Promise((r) => setTimeout(r, 300));
        await mkdir(root);
      },
    ],
  ] as const) {
    it(`keeps hearing a watched directory ${label}`, async () => {
      const base = await tempDir("watch-rearm");
      const root = join(base, "desired");
      await mkdir(root);
      await writeFile(join(root, "a.yaml"), "clients: []\n");
      const calls: number[] = [];
      const trigger = new WatchTrigger({
        paths: [root],
        debounceMs: 50,
        rootCheckMs: 200,
        onChange: (n) => calls.push(n),
        logger: silentLogger,
      });
      await trigger.start();
      try {
        await replace(root, join(base, "x"));
        // The re-armed watcher asks for a run of its own (the contents may have changed unheard).
        await eventually(
          async () => (calls.length > 0 ? true : undefined),
          10_000,
          "the replacement to be seen",
        );
        // Positive evidence the new watcher is armed: each later write is heard.
        for (let i = 0; i < 2; i++) {
          const seen = calls.length;
          await writeFile(join(root, `after-${i}.yaml`), "clients: []\n");
          await eventually(
            async () => (calls.length > seen ? true : undefined),
            10_000,
            `write ${i} after the replacement to be seen`,
          );
        }
      } finally {
        await trigger.stop();
      }
    });
  }
});

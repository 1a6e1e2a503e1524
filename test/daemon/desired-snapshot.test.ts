import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import type { ReconcilerConfig } from "../../src/config/types.js";
import { digestDesiredFiles, loadStableDesired } from "../../src/engine/desired-snapshot.js";
import { GitOpsError } from "../../src/errors.js";
import { clientYaml, desiredYaml, tempDir, writeConfig } from "./support.js";

const NAMES = ["app-1", "app-2", "app-3", "app-4", "app-5", "app-6"];
const FULL = desiredYaml(NAMES.map((n) => clientYaml(n)));
const HALF = desiredYaml(NAMES.slice(0, 3).map((n) => clientYaml(n)));

async function workspace(): Promise<{ config: ReconcilerConfig; file: string }> {
  const dir = await tempDir("snapshot");
  await mkdir(join(dir, "desired"));
  await writeConfig(dir, "interval: 1h");
  const file = join(dir, "desired", "apps.yaml");
  await writeFile(file, HALF);
  return { config: await loadConfig(join(dir, "cf-oauth-gitops.yaml"), { cwd: dir }), file };
}

/** A sleep that returns at once, after doing `during[i]` on its i-th call (what a writer does meanwhile). */
function scriptedSleep(during: (() => Promise<void>)[]) {
  const waits: number[] = [];
  const sleep = async (ms: number) => {
    waits.push(ms);
    await during[waits.length - 1]?.();
  };
  return { sleep, waits };
}

const names = (state: Awaited<ReturnType<typeof loadDesiredState>>) =>
  [...state.accounts.values()].flat().map((c) => c.client_name);

describe("loadStableDesired", () => {
  it("plans from files that held still across one quiet period", async () => {
    const { config } = await workspace();
    const { sleep, waits } = scriptedSleep([]);
    const snap = await loadStableDesired({
      config,
      quietMs: 1000,
      maxAttempts: 3,
      sleep,
      signal: new AbortController().signal,
    });
    expect(snap.attempts).toBe(1);
    expect(waits).toEqual([1000]);
    expect(names(snap.desired)).toEqual(NAMES.slice(0, 3));
    expect(snap.digest).toBe(await digestDesiredFiles(config));
  });

  it("waits for a file whose rest is written during the quiet period, and plans from the whole file", async () => {
    const { config, file } = await workspace();
    const { sleep, waits } = scriptedSleep([() => writeFile(file, FULL)]);
    const snap = await loadStableDesired({
      config,
      quietMs: 1000,
      maxAttempts: 3,
      sleep,
      signal: new AbortController().signal,
    });
    expect(snap.attempts).toBe(2);
    expect(waits).toEqual([1000, 1000]);
    expect(names(snap.desired)).toEqual(NAMES);
  });

  it("tries again when the files change while they are loaded", async () => {
    const { config, file } = await workspace();
    const { sleep } = scriptedSleep([]);
    let loads = 0;
    const load = async (c: ReconcilerConfig) => {
      const state = await loadDesiredState(c);
      if (++loads === 1) await writeFile(file, FULL);
      return state;
    };
    const snap = await loadStableDesired({
      config,
      quietMs: 0,
      maxAttempts: 3,
      sleep,
      load,
      signal: new AbortController().signal,
    });
    expect(loads).toBe(2);
    expect(names(snap.desired)).toEqual(NAMES);
  });

  it("a new file, a removed file and a changed byte all change the digest", async () => {
    const { config, file } = await workspace();
    const first = await digestDesiredFiles(config);
    await writeFile(file, HALF.replace("app-1", "app-7"));
    const changed = await digestDesiredFiles(config);
    await writeFile(join(config.desired, "more.yaml"), HALF);
    const added = await digestDesiredFiles(config);
    expect(new Set([first, changed, added]).size).toBe(3);
  });

  it("gives up after the bounded number of quiet periods with E_DESIRED_UNSTABLE, having loaded nothing", async () => {
    const { config, file } = await workspace();
    let n = 0;
    const churn = () => writeFile(file, `${HALF}# edit ${n++}\n`);
    const { sleep, waits } = scriptedSleep([churn, churn, churn, churn]);
    let loads = 0;
    const load = async (c: ReconcilerConfig) => {
      loads++;
      return loadDesiredState(c);
    };
    const error = await loadStableDesired({
      config,
      quietMs: 500,
      maxAttempts: 4,
      sleep,
      load,
      signal: new AbortController().signal,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitOpsError);
    expect((error as GitOpsError).code).toBe("E_DESIRED_UNSTABLE");
    expect((error as GitOpsError).disposition).toBe("transient");
    expect(waits).toHaveLength(4);
    expect(loads).toBe(0);
  });

  it("needs no quiet period for files that read exactly as the last snapshot that held still", async () => {
    const { config, file } = await workspace();
    const { sleep, waits } = scriptedSleep([]);
    const signal = new AbortController().signal;
    const first = await loadStableDesired({ config, quietMs: 1000, maxAttempts: 3, sleep, signal });
    const again = await loadStableDesired({
      config,
      quietMs: 1000,
      maxAttempts: 3,
      sleep,
      signal,
      knownStable: first.digest,
    });
    expect(waits).toEqual([1000]);
    expect(again.digest).toBe(first.digest);
    // Changed bytes wait again.
    await writeFile(file, FULL);
    const changed = await loadStableDesired({
      config,
      quietMs: 1000,
      maxAttempts: 3,
      sleep,
      signal,
      knownStable: first.digest,
    });
    expect(waits).toEqual([1000, 1000]);
    expect(names(changed.desired)).toEqual(NAMES);
  });
});

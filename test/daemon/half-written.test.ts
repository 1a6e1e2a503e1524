import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { control, startTestEmulator } from "../helpers/emulator.js";
import {
  clientYaml,
  type DaemonProcess,
  desiredYaml,
  eventually,
  GitRepo,
  type LogLine,
  liveByName,
  startDaemon,
  tempDir,
  gitSourceYaml,
  writeConfig,
} from "./support.js";

interface Held {
  client_name: string;
  client_id: string;
  absent_since: string;
  eligible_at: string;
}
interface Run {
  id: number;
  reasons: string[];
  started: string;
  result: string | null;
  revision: string | null;
  held_deletions: Held[];
  apply: { by_kind: { delete: { applied: number } } } | null;
}
interface Status {
  running: Run | null;
  last_run: Run | null;
  delete_delay_seconds: number;
  pending: { held_deletions: Held[] };
}

const NAMES = ["app-1", "app-2", "app-3", "app-4", "app-5", "app-6"];

async function methodCounts(emu: EmulatorHandle): Promise<Record<string, number>> {
  return (await control<{ by_method: Record<string, number> }>(emu, "GET", "stats")).by_method;
}

/** The first finished run after `afterId` that `accept` accepts (waits up to `timeoutMs`). */
function finishedRun(
  daemon: DaemonProcess,
  afterId: number,
  accept: (run: Run, s: Status) => boolean,
  timeoutMs = 20_000,
) {
  return eventually(
    async () => {
      const { body } = await daemon.get<Status>("/status");
      const run = body.last_run;
      return run && run.id > afterId && body.running === null && accept(run, body)
        ? { run, status: body }
        : undefined;
    },
    timeoutMs,
    "a finished run",
  );
}

async function directoryDaemon(extra: string[], names: string[]) {
  const emu = await startTestEmulator();
  const dir = await tempDir("daemon-half");
  await mkdir(join(dir, "desired"));
  const file = join(dir, "desired", "apps.yaml");
  await writeFile(file, desiredYaml(names.map((n) => clientYaml(n))));
  await writeConfig(dir, ["interval: 1h", ...extra].join("\n"));
  const daemon = await startDaemon({ cwd: dir, emulator: emu });
  const first = await finishedRun(daemon, 0, (r) => r.result === "ok");
  expect((await liveByName(emu)).size).toBe(names.length);
  return { emu, daemon, file, first: first.run };
}

describe("run with a directory source: half-written files (real process)", () => {
  it("a valid half file (3 of 6 clients), a 2.5 s pause, then the rest: nothing is deleted or re-created", async () => {
    const { emu, daemon, file, first } = await directoryDaemon(
      ["daemon:", "  delete_delay: 1m", "  quiet_period: 1s"],
      NAMES,
    );
    const idsBefore = new Map([...(await liveByName(emu))].map(([n, c]) => [n, c["client_id"]]));
    const before = await methodCounts(emu);

    // The first half of the file, as a slow writer leaves it: valid YAML naming 3 of the 6 clients.
    await writeFile(file, desiredYaml(NAMES.slice(0, 3).map((n) => clientYaml(n))));
    const [sawHalf] = await Promise.all([
      // Positive evidence that a run read the half file, planned the 3 deletes and held them.
      finishedRun(daemon, first.id, (r) => r.held_deletions.length === 3),
      new Promise((r) => setTimeout(r, 2_500)),
    ]);
    expect(sawHalf.run.result).toBe("ok");
    expect(sawHalf.run.held_deletions.map((h) => h.client_name).sort()).toEqual(NAMES.slice(3));
    for (const h of sawHalf.run.held_deletions)
      expect(Date.parse(h.eligible_at) - Date.parse(h.absent_since)).toBe(60_000);
    expect(sawHalf.run.apply?.by_kind.delete.applied ?? 0).toBe(0);
    expect(
      daemon.lines.some((l: LogLine) => typeof l.msg === "string" && l.msg.startsWith("deletes held")),
    ).toBe(true);

    // The rest of the file arrives.
    await writeFile(file, desiredYaml(NAMES.map((n) => clientYaml(n))));
    const whole = await finishedRun(
      daemon,
      sawHalf.run.id,
      (r, s) => r.held_deletions.length === 0 && s.pending.held_deletions.length === 0,
    );
    expect(whole.run.result).toBe("ok");

    const after = await methodCounts(emu);
    expect((after["DELETE"] ?? 0) - (before["DELETE"] ?? 0)).toBe(0);
    expect((after["POST"] ?? 0) - (before["POST"] ?? 0)).toBe(0);
    const idsAfter = new Map([...(await liveByName(emu))].map(([n, c]) => [n, c["client_id"]]));
    expect(idsAfter).toEqual(idsBefore);
    expect(idsAfter.size).toBe(6);
  });

  it("a client really removed is deleted by a later run, once it has been absent for delete_delay", async () => {
    const names = NAMES.slice(0, 3);
    const { emu, daemon, file, first } = await directoryDaemon(
      ["daemon:", "  delete_delay: 3s", "  quiet_period: 1s"],
      names,
    );
    const goneId = (await liveByName(emu)).get("app-3")?.["client_id"];
    const before = await methodCounts(emu);
    await writeFile(file, desiredYaml(names.slice(0, 2).map((n) => clientYaml(n))));

    const held = await finishedRun(daemon, first.id, (r) => r.held_deletions.length === 1);
    expect(held.run.held_deletions[0]).toMatchObject({ client_name: "app-3", client_id: goneId });
    expect(held.status.delete_delay_seconds).toBe(3);
    const eligibleAt = Date.parse(held.run.held_deletions[0]?.eligible_at as string);

    const deleted = await finishedRun(
      daemon,
      held.run.id,
      (r) => (r.apply?.by_kind.delete.applied ?? 0) > 0,
      30_000,
    );
    expect(deleted.run.reasons).toContain("held-delete");
    expect(Date.parse(deleted.run.started)).toBeGreaterThanOrEqual(eligibleAt);
    expect(deleted.status.pending.held_deletions).toEqual([]);
    expect([...(await liveByName(emu)).keys()].sort()).toEqual(["app-1", "app-2"]);
    const after = await methodCounts(emu);
    expect((after["DELETE"] ?? 0) - (before["DELETE"] ?? 0)).toBe(1);
  });
});

describe("run with a git source (real process)", () => {
  it("deletes at once: the run that reads the commit without the client deletes it", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-git-delete");
    const repo = await GitRepo.create(dir);
    const shaA = await repo.commit({
      "clients/apps.yaml": desiredYaml(["one", "two"].map((n) => clientYaml(n))),
    });
    await writeConfig(
      dir,
      ["interval: 1h", ...gitSourceYaml(repo.url, { poll: "1s", branch: false })].join("\n"),
    );
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    const first = await finishedRun(daemon, 0, (r) => r.revision === shaA && r.result === "ok");
    expect((await liveByName(emu)).size).toBe(2);
    const shaB = await repo.commit({ "clients/apps.yaml": desiredYaml([clientYaml("one")]) });
    const run = await finishedRun(daemon, first.run.id, (r) => r.revision === shaB);
    expect(run.run.result).toBe("ok");
    expect(run.run.held_deletions).toEqual([]);
    expect(run.run.apply?.by_kind.delete.applied).toBe(1);
    expect(run.status.delete_delay_seconds).toBe(0);
    expect([...(await liveByName(emu)).keys()]).toEqual(["one"]);
  });
});

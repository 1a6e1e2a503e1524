import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestEmulator } from "../helpers/emulator.js";
import {
  clientYaml,
  desiredYaml,
  eventually,
  liveByName,
  parsePrometheusText,
  patchLive,
  startDaemon,
  tempDir,
  writeConfig,
  writeCount,
  runFinished,
} from "./support.js";

describe("run with a watched directory (real process)", () => {
  it("runs within seconds of a file edit, and the interval reverts a change made through the API", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-watch");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    await writeConfig(dir, "interval: 2s");
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    await daemon.waitForLine(runFinished);
    const alpha = (await liveByName(emu)).get("alpha");
    expect(alpha?.["redirect_uris"]).toEqual(["https://alpha.example/callback"]);

    // Editing the desired file triggers a run (reason `watch`) that applies it.
    const seen = daemon.lines.length;
    await writeFile(
      join(dir, "desired", "apps.yaml"),
      desiredYaml([clientYaml("alpha", "https://alpha.example/edited")]),
    );
    const watchRun = await daemon.waitForLine(
      (l) =>
        daemon.lines.indexOf(l) >= seen &&
        l.msg === "run started" &&
        (l["reasons"] as string[]).includes("watch"),
      10_000,
    );
    await daemon.waitForLine((l) => runFinished(l) && l["run"] === watchRun["run"]);
    await eventually(
      async () =>
        ((await liveByName(emu)).get("alpha")?.["redirect_uris"] as string[])[0] ===
          "https://alpha.example/edited" || undefined,
    );

    // A change made directly through the API is reverted by the next interval run.
    const mark = daemon.lines.length;
    await patchLive(emu, alpha?.["client_id"] as string, { redirect_uris: ["https://evil.example/cb"] });
    await eventually(
      async () =>
        ((await liveByName(emu)).get("alpha")?.["redirect_uris"] as string[])[0] ===
          "https://alpha.example/edited" || undefined,
      15_000,
      "the drift to be reverted",
    );
    const reverting = await daemon.waitForLine(
      (l) =>
        daemon.lines.indexOf(l) >= mark &&
        runFinished(l) &&
        (l["summary"] as { update?: number } | undefined)?.update === 1,
    );
    expect(reverting["reasons"]).toContain("interval");
    expect(await daemon.stop()).toBe(0);
  });
});

describe("run --once (real process)", () => {
  it("exits 1 when the plan has a conflict, after making the other changes", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-conflict");
    await mkdir(join(dir, "desired"));
    const wrongPin = `${clientYaml("beta")}\n    client_id: "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"`;
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha"), wrongPin]));
    await writeConfig(dir, "interval: 2s");
    const once = await startDaemon({ cwd: dir, emulator: emu, args: ["--once"], listening: false });
    expect(await once.exited).toBe(1);
    expect([...(await liveByName(emu)).keys()]).toEqual(["alpha"]);
  });
});

describe("run --dry-run (real process)", () => {
  it("reports drift in status and metrics and never writes", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-dry");
    await mkdir(join(dir, "desired"));
    await writeFile(
      join(dir, "desired", "apps.yaml"),
      desiredYaml([clientYaml("alpha"), clientYaml("beta")]),
    );
    await writeConfig(dir, "interval: 2s");
    // The clients exist first (`run --once` applies and exits 0).
    const once = await startDaemon({ cwd: dir, emulator: emu, args: ["--once"], listening: false });
    expect(await once.exited).toBe(0);
    expect([...(await liveByName(emu)).keys()].sort()).toEqual(["alpha", "beta"]);

    const daemon = await startDaemon({
      cwd: dir,
      emulator: emu,
      args: ["--dry-run", "--listen", "127.0.0.1:0"],
    });
    await daemon.waitForLine(runFinished);
    const alpha = (await liveByName(emu)).get("alpha");
    await patchLive(emu, alpha?.["client_id"] as string, { redirect_uris: ["https://evil.example/cb"] });
    const writes = await writeCount(emu);

    type Status = {
      mode: string;
      last_run: {
        id: number;
        drifted: number;
        plan: { changes: { kind: string; client_name: string; fields?: string[] }[] };
      };
    };
    const status = await eventually(
      async () => {
        const s = (await daemon.get<Status>("/status")).body;
        return s.last_run.drifted === 1 ? s : undefined;
      },
      15_000,
      "drift in /status",
    );
    expect(status.mode).toBe("dry-run");
    expect(status.last_run.plan.changes).toEqual([
      {
        kind: "update",
        account_id: expect.any(String),
        client_name: "alpha",
        client_id: alpha?.["client_id"],
        fields: ["redirect_uris"],
      },
    ]);
    const m = parsePrometheusText((await daemon.get<string>("/metrics")).text);
    expect(m.get("cf_oauth_gitops_clients_drifted")?.samples[0]?.value).toBe(1);
    expect(
      m.get("cf_oauth_gitops_changes_pending")?.samples.find((s) => s.labels["kind"] === "update")?.value,
    ).toBe(1);
    expect(m.get("cf_oauth_gitops_info")?.samples[0]?.labels["mode"]).toBe("dry-run");

    // Two more runs later: still reported, still not written.
    const id = status.last_run.id;
    await eventually(
      async () => ((await daemon.get<Status>("/status")).body.last_run.id >= id + 2 ? true : undefined),
      15_000,
    );
    expect(await writeCount(emu)).toBe(writes);
    expect((await liveByName(emu)).get("alpha")?.["redirect_uris"]).toEqual(["https://evil.example/cb"]);
    expect(daemon.lines.some((l) => l.component === "apply")).toBe(false);
    expect(await daemon.stop()).toBe(0);
  });
});

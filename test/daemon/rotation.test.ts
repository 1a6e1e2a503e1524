import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ACCOUNT_A, startTestEmulator } from "../helpers/emulator.js";
import { verifiedSecret } from "../helpers/token-exchange.js";
import {
  clientYaml,
  desiredYaml,
  eventually,
  parsePrometheusText,
  readSinkRecord,
  startDaemon,
  tempDir,
  writeConfig,
} from "./support.js";

describe("run: the rotation schedule (real process)", () => {
  it("rotates due secrets when the schedule fires, keeping the old one for its grace, and reports it", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-rotate");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    await writeConfig(
      dir,
      ["interval: 1h", "rotation:", "  every: 90d", "  grace: 24h", '  schedule: "*/2 * * * * *"'].join("\n"),
    );
    const once = await startDaemon({ cwd: dir, emulator: emu, args: ["--once"], listening: false });
    expect(await once.exited).toBe(0);
    const before = await readSinkRecord(join(dir, "secrets"), "alpha");

    // 91 days later (a daemon on a moved clock): the secret is due.
    const daemon = await startDaemon({
      cwd: dir,
      emulator: emu,
      clockOffset: "91d",
    });
    const rotated = await daemon.waitForLine(
      (l) =>
        l.component === "daemon" &&
        typeof l.msg === "string" &&
        l.msg.startsWith("run finished") &&
        (l["reasons"] as string[]).includes("rotation"),
    );
    expect(rotated["result"]).toBe("ok");
    const after = await readSinkRecord(join(dir, "secrets"), "alpha");
    expect(after.client_id).toBe(before.client_id);
    expect(after.client_secret).not.toBe(before.client_secret);
    // Proven by a token exchange with openid-client; the slot is check-secret's.
    const check = (secret: string) => verifiedSecret(emu, ACCOUNT_A, after.client_id, secret);
    expect(await check(after.client_secret)).toEqual({ valid: true, slot: "current" });
    expect(await check(before.client_secret)).toEqual({ valid: true, slot: "rotated" });

    type Status = {
      pending: { rotations: { client_name: string; phase: string }[] };
      rotation: { schedule: string; clients: { client_name: string; age_seconds: number }[] };
    };
    const status = (await daemon.get<Status>("/status")).body;
    expect(status.pending.rotations).toEqual([
      expect.objectContaining({ client_name: "alpha", phase: "grace" }),
    ]);
    expect(status.rotation.schedule).toBe("*/2 * * * * *");
    const m = parsePrometheusText((await daemon.get<string>("/metrics")).text);
    expect(m.get("cf_oauth_gitops_rotations_total")?.samples).toEqual([
      expect.objectContaining({ labels: { result: "waiting" }, value: 1 }),
    ]);
    const age = m.get("cf_oauth_gitops_secret_age_seconds")?.samples[0]?.value ?? Infinity;
    expect(age).toBeLessThan(3600);

    // Rotated and waiting for the grace to end. The next ticks find nothing due: still one rotation, and no secret in any output.
    await eventually(async () =>
      daemon.lines.filter(
        (l) => (l["reasons"] as string[] | undefined)?.includes("rotation") && l.msg === "run started",
      ).length >= 2
        ? true
        : undefined,
    );
    const again = parsePrometheusText((await daemon.get<string>("/metrics")).text);
    expect(again.get("cf_oauth_gitops_rotations_total")?.samples[0]?.value).toBe(1);
    expect(daemon.output()).not.toContain(after.client_secret);
    expect(daemon.output()).not.toContain(before.client_secret);
    expect(await daemon.stop()).toBe(0);
  });
});

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestEmulator } from "../helpers/emulator.js";
import {
  clientYaml,
  desiredYaml,
  parsePrometheusText,
  postWebhook,
  startDaemon,
  tempDir,
  writeConfig,
  runFinished,
} from "./support.js";

const gauge = (text: string, name: string) =>
  parsePrometheusText(text)
    .get(name)
    ?.samples.find((s) => s.name === name)?.value;

/**
 * `/readyz` is what a Kubernetes Service routes by: it must stay 200 through failed runs, or the pod
 * leaves the Service and the webhook for the commit that fixes the failure is refused. Run health is
 * reported by `/status` (`run_health`) and the `cf_oauth_gitops_last_run_success` metric instead.
 */
describe("readiness and run health (real process)", () => {
  it("stays ready after a run the API refuses, while /status and /metrics report the failure", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("daemon-readiness");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    await writeConfig(dir, ["interval: 1h", "webhook:", "  secret_env: WEBHOOK_SECRET"].join("\n"));
    // A token the emulator does not know: every API call of the run is refused.
    const daemon = await startDaemon({
      cwd: dir,
      emulator: emu,
      env: { CLOUDFLARE_API_TOKEN: "not-a-token-the-emulator-knows" },
    });
    const failed = await daemon.waitForLine(runFinished);
    expect(failed["result"]).toBe("error");

    const ready = await daemon.get<{ ready: boolean; reason: string | null }>("/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, reason: null });

    const status = await daemon.get<{
      run_health: { healthy: boolean; reason: string };
      last_run: { result: string; error: { code: string } };
    }>("/status");
    expect(status.body.run_health.healthy).toBe(false);
    // A refused token cannot be fixed by retrying: the loop stalls until new input (README "Dispositions").
    expect(status.body.run_health.reason).toMatch(
      /^stalled until new input: the API refused the credentials/,
    );
    expect(status.body.last_run.result).toBe("error");
    expect(status.body.last_run.error.code).toMatch(/^E_/);

    const metrics = (await daemon.get<string>("/metrics")).text;
    expect(gauge(metrics, "cf_oauth_gitops_last_run_success")).toBe(0);
    expect(gauge(metrics, "cf_oauth_gitops_ready")).toBe(1);

    // The webhook is still received while the runs fail.
    expect((await postWebhook(daemon.url)).status).toBe(202);
    expect(await daemon.stop()).toBe(0);
  });
});

import { rm, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { ACCOUNT_A, control, startTestEmulator } from "../helpers/emulator.js";
import {
  CREATE_ROUTE,
  PATCH_ROUTE,
  checkSecret,
  confidential,
  liveClients,
  makeWorkspace,
  measure,
  names,
  publicClient,
  type Workspace,
} from "./support.js";

/**
 * A run that fails half way converges on the next one (README, "apply": one failed change does not
 * stop the others; every failure is printed; running again converges). The failure is a sink whose
 * directory is a regular file, so some creates fail for certain; and the emulator's fault injection
 * (connections dropped after the server committed a write), where the client must not create twice.
 */

/**
 * Every confidential live client has its secret in its sink, and the API accepts it: a client whose
 * secret nobody holds would plan as converged but lock its consumers out.
 */
async function expectSecretsWork(ws: Workspace, keys: Record<string, string> = {}): Promise<number> {
  let checked = 0;
  for (const client of await liveClients(ws.emu, ACCOUNT_A)) {
    if (client.token_endpoint_auth_method === "none") continue;
    const name = client.client_name ?? "";
    const key = keys[name] ?? name;
    const record =
      (await ws.secretRecord(ACCOUNT_A, key)) ?? (await ws.secretRecord(ACCOUNT_A, key, "broken"));
    expect(record?.client_id, `secret of ${name}`).toBe(client.client_id);
    expect(
      await checkSecret(ws.emu, ACCOUNT_A, client.client_id, record!.client_secret),
      `secret of ${name}`,
    ).toEqual({
      valid: true,
      slot: "current",
    });
    checked++;
  }
  return checked;
}

describe("a half-applied run converges", () => {
  it("a sink that cannot be written: its creates fail (and are never sent), the rest applies; fixed, the next run finishes", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu, {
      sinks: { default: { type: "file", dir: "./secrets" }, vault: { type: "file", dir: "./broken" } },
    });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("existing")]);
    expect((await ws.run("apply")).code).toBe(0);

    // The second sink's directory is a regular file: nothing can be written below it.
    await writeFile(join(ws.dir, "broken"), "not a directory\n");
    const desired = [
      confidential("existing", { logo_uri: "https://existing.example.com/logo.png" }),
      confidential("alpha"),
      confidential("bravo", { secret: { sink: "vault" } }),
      confidential("charlie", { secret: { sink: "vault", key: "charlie-creds" } }),
      publicClient("delta"),
    ];
    await ws.writeDesired("apps.yaml", ACCOUNT_A, desired);

    const { value: failed, delta } = await measure(emu, () => ws.run("apply"));
    expect(failed.code).toBe(1);
    const lines = failed.stdout.split("\n").filter((l) => /^[✓✗] /.test(l));
    expect(lines.map((l) => l.slice(0, l.indexOf("]") + 1))).toEqual([
      `✓ create [${ACCOUNT_A}/alpha]`,
      `✗ create [${ACCOUNT_A}/bravo]`,
      `✗ create [${ACCOUNT_A}/charlie]`,
      `✓ create [${ACCOUNT_A}/delta]`,
      `✓ update [${ACCOUNT_A}/existing]`,
    ]);
    for (const line of lines.filter((l) => l.startsWith("✗"))) {
      expect(line).toContain("[E_SINK_NOT_WRITABLE]");
      expect(line).toContain("broken");
    }
    expect(failed.stdout).toContain("Apply: 3 applied, 2 failed.");
    // The refused creates were never sent: no client exists whose secret has nowhere to go.
    expect(delta.by_route[CREATE_ROUTE]).toBe(2);
    expect(delta.by_route[PATCH_ROUTE]).toBe(1);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(["alpha", "delta", "existing"]);
    expect((await ws.owned(ACCOUNT_A)).map((e) => e.client_name).sort()).toEqual([
      "alpha",
      "delta",
      "existing",
    ]);

    // The next plan starts from what actually happened: only the two failed creates are left.
    const pending = await ws.planJson(0);
    expect(pending.changes.map((c) => `${c.kind} ${c.client_name}`)).toEqual([
      "create bravo",
      "create charlie",
    ]);

    await rm(join(ws.dir, "broken"));
    await mkdir(join(ws.dir, "broken"));
    const fixed = await ws.run("apply");
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain("Apply: 2 applied, 0 failed.");
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual([
      "alpha",
      "bravo",
      "charlie",
      "delta",
      "existing",
    ]);
    expect(await expectSecretsWork(ws, { charlie: "charlie-creds" })).toBe(4);
  });

  it("connections dropped after the server committed: no duplicate clients, every secret known", async () => {
    const emu = await startTestEmulator({ seed: 11 });
    const ws = await makeWorkspace(emu);
    const desired = ["one", "two", "three", "four", "five", "six"].map((n, i) =>
      i % 3 === 2 ? publicClient(n) : confidential(n),
    );
    await ws.writeDesired("apps.yaml", ACCOUNT_A, desired);
    await setFaults(emu, { faultDropAfterCommitRate: 0.5 });
    const faulty = await ws.run("apply", ["--concurrency", "1"]);
    expect([0, 1]).toContain(faulty.code);
    const dropped = (await control<{ faults: { drop_after_commit: number } }>(emu, "GET", "stats")).faults;
    expect(dropped.drop_after_commit).toBeGreaterThan(0);

    await setFaults(emu, { faultDropAfterCommitRate: 0 });
    const clean = await ws.run("apply");
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(["five", "four", "one", "six", "three", "two"]);
    expect(await expectSecretsWork(ws)).toBe(4);
  });
});

function setFaults(emu: EmulatorHandle, faults: Record<string, number>): Promise<unknown> {
  return control(emu, "POST", "faults", faults);
}

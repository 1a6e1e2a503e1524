import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestEmulator } from "../helpers/emulator.js";
import { checkSecret, makeRotationWorkspace } from "./support.js";

/**
 * An exec sink whose read command prints the secret alone (a format src/sinks/exec-sink.ts documents):
 * the read-back after a write compares the secret, so creates and rotations publish, and no secret
 * is left waiting in the journal.
 */

const BARE_SINK = join(import.meta.dirname, "fixtures", "bare-secret-sink.mjs");

describe("exec sink whose read command prints only the secret", () => {
  it("publishes creates and rotations, and the journal keeps no secret", async () => {
    const emu = await startTestEmulator();
    const probe = await makeRotationWorkspace(emu);
    const store = join(probe.dir, "store");
    const sink = [process.execPath, BARE_SINK, store];
    const ws = await makeRotationWorkspace(emu, {
      sinks: { default: { type: "exec", command: sink, read_command: sink, check_command: sink } },
    });
    await ws.writeClients(["alpha"]);
    const stored = async () => (await readFile(join(store, ws.accountId, "alpha"), "utf8")).trim();

    const applied = await ws.run("apply");
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const clientId = Object.values((await ws.inventory()).accounts)[0]?.[0]?.client_id as string;
    const first = await stored();
    expect(await checkSecret(emu, ws.accountId, clientId, first)).toMatchObject({ valid: true });
    // A record that does not name its client tells no age: the journal's counts, and the secret is
    // not taken for missing.
    const idle = await ws.run("rotate", ["--status", "--format", "json"]);
    expect(JSON.parse(idle.stdout)).toMatchObject([
      { client_name: "alpha", phase: "idle", age_source: "journal" },
    ]);

    const rotated = await ws.run("rotate", ["--now", "--client", "alpha"]);
    expect(rotated.code, rotated.stdout + rotated.stderr).toBe(0);
    const second = await stored();
    expect(second).not.toBe(first);
    expect(await checkSecret(emu, ws.accountId, clientId, second)).toMatchObject({
      valid: true,
      slot: "current",
    });

    const journal = await ws.journalFiles();
    expect(journal.length).toBeGreaterThan(0);
    for (const f of journal) {
      expect(f.json["secret"] ?? null).toBeNull();
      expect(f.text).not.toContain(first);
      expect(f.text).not.toContain(second);
    }
    const status = await ws.run("rotate", ["--status", "--format", "json"]);
    expect(JSON.parse(status.stdout)).toMatchObject([{ client_name: "alpha", phase: "grace" }]);
  });
});

import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestEmulator } from "../helpers/emulator.js";
import { engineHarness } from "./harness.js";
import { checkSecret, makeRotationWorkspace, ROUTE, routeCount, stats } from "./support.js";

/**
 * The rotation engine over the emulator with an injected clock: the two phases, grace to the second,
 * and a sink that fails after the mint. Creates go through `apply` (in-process CLI) first.
 */

const FLAKY_SINK = join(import.meta.dirname, "fixtures", "flaky-sink.mjs");
const GRACE = 86_400;

describe("rotation: two phases with an injected clock", () => {
  it("keeps the old secret valid until published_at + grace, to the second, then deletes it", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu, { every: "10d", grace: "1d" });
    await ws.writeClients(["alpha"]);
    expect((await ws.run("apply")).code).toBe(0);
    const first = await ws.sinkRecord("alpha");
    if (!first) throw new Error("apply wrote no record");

    const start = new Date(Date.now() + 11 * 86_400_000);
    const engine = await engineHarness(ws, start);
    const rotated = await engine.run("auto");
    expect(rotated.results).toMatchObject([{ client_name: "alpha", status: "waiting" }]);
    const second = await ws.sinkRecord("alpha");
    expect(second?.client_secret).not.toBe(first.client_secret);
    expect(await checkSecret(emu, ws.accountId, first.client_id, first.client_secret)).toEqual({
      valid: true,
      slot: "rotated",
    });
    expect(await checkSecret(emu, ws.accountId, first.client_id, second?.client_secret ?? "")).toEqual({
      valid: true,
      slot: "current",
    });
    const publishedAt = Date.parse(
      String((await ws.journalFiles()).find((f) => f.json["op"] === "rotate")?.json["published_at"]),
    );
    expect(publishedAt).toBe(start.getTime());

    engine.clock.now = new Date(publishedAt + (GRACE - 1) * 1000);
    const early = await engine.run("auto");
    expect(early.results).toEqual([]);
    expect(early.statuses[0]?.phase).toBe("grace");
    expect(routeCount(await stats(emu), ROUTE.deleteRotated)).toBe(0);
    expect((await checkSecret(emu, ws.accountId, first.client_id, first.client_secret)).valid).toBe(true);

    engine.clock.now = new Date(publishedAt + GRACE * 1000);
    const due = await engine.run("auto");
    expect(due.results).toMatchObject([{ client_name: "alpha", status: "ok" }]);
    expect(routeCount(await stats(emu), ROUTE.deleteRotated)).toBe(1);
    expect((await checkSecret(emu, ws.accountId, first.client_id, first.client_secret)).valid).toBe(false);
    expect(await checkSecret(emu, ws.accountId, first.client_id, second?.client_secret ?? "")).toEqual({
      valid: true,
      slot: "current",
    });
    expect(due.statuses[0]).toMatchObject({ phase: "idle", age_source: "sink" });
  });

  it("does not rotate before `every` has passed since issued_at, and does at the second it has", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu, { every: "10d", grace: "1h" });
    await ws.writeClients(["alpha"]);
    expect((await ws.run("apply")).code).toBe(0);
    const issued = Date.parse((await ws.sinkRecord("alpha"))?.issued_at ?? "");
    const engine = await engineHarness(ws, new Date(issued + 10 * 86_400_000 - 1000));
    expect((await engine.run("auto")).results).toEqual([]);
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(0);
    engine.clock.now = new Date(issued + 10 * 86_400_000);
    expect((await engine.run("auto")).results).toMatchObject([{ status: "waiting" }]);
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(1);
  });
});

describe("rotation: a sink that fails after the mint", () => {
  it("keeps the new secret in the journal (0600), never deletes the old one, and publishes once the sink recovers", async () => {
    const emu = await startTestEmulator();
    const store = join((await makeRotationWorkspace(emu)).dir, "store");
    const ws = await makeRotationWorkspace(emu, {
      sinks: {
        default: {
          type: "exec",
          command: [process.execPath, FLAKY_SINK, store],
          read_command: [process.execPath, FLAKY_SINK, store],
          check_command: [process.execPath, FLAKY_SINK, store],
        },
      },
    });
    await ws.writeClients(["alpha"]);
    expect((await ws.run("apply")).code).toBe(0);
    const original = await readStored(store, ws.accountId, "alpha");

    await writeFile(join(store, "FAIL_WRITES"), "");
    const engine = await engineHarness(ws, new Date(Date.now() + 3_600_000));
    const failed = await engine.run("now");
    expect(failed.failed).toBe(1);
    expect(failed.results[0]).toMatchObject({ status: "failed", code: "E_SECRET_UNPUBLISHED" });
    expect(engine.sleeps).toEqual([250, 500]);
    const [pending] = (await ws.journalFiles()).filter((f) => f.json["step"] === "minted");
    expect(pending?.mode).toBe(0o600);
    const minted = String(pending?.json["secret"]);
    expect(await checkSecret(emu, ws.accountId, original.client_id, minted)).toEqual({
      valid: true,
      slot: "current",
    });
    expect(await checkSecret(emu, ws.accountId, original.client_id, original.client_secret)).toEqual({
      valid: true,
      slot: "rotated",
    });
    expect((await readStored(store, ws.accountId, "alpha")).client_secret).toBe(original.client_secret);

    // Days later, still failing: retried first, still kept, the old secret still untouched.
    engine.clock.now = new Date(engine.clock.now.getTime() + 3 * 86_400_000);
    const again = await engine.run("auto");
    expect(again.results[0]).toMatchObject({ status: "failed", code: "E_SECRET_UNPUBLISHED" });
    expect(routeCount(await stats(emu), ROUTE.deleteRotated)).toBe(0);
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(1);
    expect((await ws.journalFiles()).find((f) => f.json["step"] === "minted")?.json["publish_attempts"]).toBe(
      6,
    );

    await rm(join(store, "FAIL_WRITES"));
    const landed = await engine.run("auto");
    expect(landed.results[0]).toMatchObject({ status: "waiting" });
    expect((await readStored(store, ws.accountId, "alpha")).client_secret).toBe(minted);
    const files = await ws.journalFiles();
    expect(files.every((f) => f.json["secret"] === null && !f.text.includes(minted))).toBe(true);
    // Grace counts from the publish, not from the mint.
    expect(await checkSecret(emu, ws.accountId, original.client_id, original.client_secret)).toMatchObject({
      valid: true,
    });

    engine.clock.now = new Date(engine.clock.now.getTime() + GRACE * 1000);
    expect((await engine.run("auto")).results[0]).toMatchObject({ status: "ok" });
    expect((await checkSecret(emu, ws.accountId, original.client_id, original.client_secret)).valid).toBe(
      false,
    );
    expect((await checkSecret(emu, ws.accountId, original.client_id, minted)).valid).toBe(true);
  });
});

async function readStored(
  store: string,
  accountId: string,
  key: string,
): Promise<{ client_id: string; client_secret: string }> {
  const { readFile } = await import("node:fs/promises");
  return JSON.parse(await readFile(join(store, accountId, `${key}.json`), "utf8")) as {
    client_id: string;
    client_secret: string;
  };
}

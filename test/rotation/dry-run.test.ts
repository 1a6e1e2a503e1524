import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { SecretOp } from "../../src/core/rotation-plan.js";
import type { SecretOpResult } from "../../src/engine/rotate.js";
import { api, statsDelta } from "../e2e/support.js";
import { startTestEmulator } from "../helpers/emulator.js";
import { checkSecret, makeRotationWorkspace, ROUTE, type RotationWorkspace, stats } from "./support.js";

/**
 * `rotate --dry-run` against the emulator over HTTP, the CLI in-process with the clock moved by the
 * test: for each mode, what the dry run lists is what the next `rotate` with the same flags does (the
 * same clients, the same operations, as many rotate_secret and DELETE rotate_secret calls as it lists
 * mints and deletions, the old secrets kept or gone as it says), and the dry run itself only reads: GETs
 * only, no journal file, no sink file touched.
 */

const DAY = 86_400;

async function setup(names = ["alpha", "beta"]) {
  const emu = await startTestEmulator();
  const ws = await makeRotationWorkspace(emu, { every: "10d", grace: "1d" });
  await ws.writeClients(names);
  const applied = await ws.run("apply");
  expect(applied.code, applied.stderr).toBe(0);
  return { emu, ws };
}

/** Every file under the state and secrets directories with its content: what a write would change. */
async function snapshot(ws: RotationWorkspace): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else out[path] = await readFile(path, "utf8");
    }
  };
  await walk(ws.stateDir);
  await walk(ws.secretsDir);
  return out;
}

interface Planned {
  client: string;
  kinds: string[];
}

/** Runs `rotate --dry-run <flags>` and checks it only read. */
async function dryRun(ws: RotationWorkspace, flags: string[], offset: number): Promise<Planned[]> {
  const before = await stats(ws.emu);
  const files = await snapshot(ws);
  const text = await ws.run("rotate", [...flags, "--dry-run"], { offset });
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toContain("nothing was changed");
  const json = await ws.run("rotate", [...flags, "--dry-run", "--format", "json"], { offset });
  expect(json.code, json.stderr).toBe(0);
  const delta = statsDelta(before, await stats(ws.emu));
  expect(Object.keys(delta.by_method)).toEqual(["GET"]);
  expect(await snapshot(ws)).toEqual(files);
  const ops = (JSON.parse(json.stdout) as { ops: SecretOp[] }).ops;
  // The text lists the same operations, one line each.
  for (const op of ops) expect(text.stdout).toContain(`secret [${op.account_id}/${op.client_name}]`);
  expect(text.stdout.split("\n").filter((l) => l.startsWith("~ secret"))).toHaveLength(ops.length);
  return ops.map((op) => ({ client: op.client_name, kinds: op.actions.map((a) => a.kind) }));
}

/** Runs `rotate <flags>` and returns its results with what it did to the API. */
async function rotate(ws: RotationWorkspace, flags: string[], offset: number) {
  const before = await stats(ws.emu);
  const run = await ws.run("rotate", [...flags, "--format", "json"], { offset });
  const delta = statsDelta(before, await stats(ws.emu));
  const results = (JSON.parse(run.stdout) as { results: SecretOpResult[] }).results;
  return {
    code: run.code,
    results,
    mints: delta.by_route[ROUTE.rotate] ?? 0,
    deletes: delta.by_route[ROUTE.deleteRotated] ?? 0,
  };
}

/** The status a result of each planned operation must have, from how the plan ends it. */
function expectedStatus(kinds: string[]): SecretOpResult["status"] {
  const last = kinds.at(-1);
  if (last === "wait") return "waiting";
  return "ok";
}

/** Checks that `rotate` did what the dry run listed: operation by operation, call by call. */
async function expectSame(planned: Planned[], ws: RotationWorkspace, flags: string[], offset: number) {
  const sinkBefore = new Map<string, string>();
  for (const p of planned) {
    const r = await ws.sinkRecord(p.client);
    if (r) sinkBefore.set(p.client, r.client_secret);
  }
  const done = await rotate(ws, flags, offset);
  expect(done.results.map((r) => r.client_name)).toEqual(planned.map((p) => p.client));
  expect(done.results.map((r) => r.status)).toEqual(planned.map((p) => expectedStatus(p.kinds)));
  const count = (kind: string) => planned.flatMap((p) => p.kinds).filter((k) => k === kind).length;
  expect(done.mints).toBe(count("mint"));
  expect(done.deletes).toBe(count("delete-old-secret") + count("recover"));
  for (const p of planned) {
    const old = sinkBefore.get(p.client);
    const now = await ws.sinkRecord(p.client);
    if (!now || old === undefined) throw new Error(`no sink record for ${p.client}`);
    const oldCheck = await checkSecret(ws.emu, ws.accountId, now.client_id, old);
    if (p.kinds.includes("publish")) {
      expect(now.client_secret).not.toBe(old);
      expect((await checkSecret(ws.emu, ws.accountId, now.client_id, now.client_secret)).slot).toBe(
        "current",
      );
      // A wait keeps the replaced secret valid; a deletion ends it. A recover deletes the rotated
      // secret, which here is the one the sink held (the newest was kept elsewhere).
      expect(oldCheck.valid).toBe(p.kinds.at(-1) === "wait" && !p.kinds.includes("recover"));
    } else if (p.kinds.includes("delete-old-secret")) {
      expect(now.client_secret).toBe(old);
    }
  }
  return done;
}

describe("rotate --dry-run lists what the next rotate does", () => {
  it("auto: the due secrets, nothing else", async () => {
    const { ws } = await setup();
    // alpha is due at day 11; beta was rotated at day 5 and is not.
    expect((await ws.run("rotate", ["--now", "--client", "beta"], { offset: 5 * DAY })).code).toBe(0);
    const planned = await dryRun(ws, [], 11 * DAY);
    expect(planned).toEqual([
      { client: "beta", kinds: ["delete-old-secret"] }, // its grace ended at day 6: resumed first
      { client: "alpha", kinds: ["start", "mint", "publish", "wait"] },
    ]);
    await expectSame(planned, ws, [], 11 * DAY);
    expect(await dryRun(ws, [], 11 * DAY)).toEqual([]);
  });

  it("--now: every selected client, whatever its age", async () => {
    const { ws } = await setup();
    const planned = await dryRun(ws, ["--now", "--client", "alpha"], 60);
    expect(planned).toEqual([{ client: "alpha", kinds: ["start", "mint", "publish", "wait"] }]);
    await expectSame(planned, ws, ["--now", "--client", "alpha"], 60);
    // In grace now: a second --now says so and does nothing.
    const again = await dryRun(ws, ["--now", "--client", "alpha"], 120);
    expect(again).toEqual([{ client: "alpha", kinds: ["blocked"] }]);
    const done = await rotate(ws, ["--now", "--client", "alpha"], 120);
    expect([done.mints, done.deletes, done.results.map((r) => r.status)]).toEqual([0, 0, ["waiting"]]);
  });

  it("--finish: only the deletions whose grace has passed", async () => {
    const { ws } = await setup();
    expect((await ws.run("rotate", ["--now"], { offset: 60 })).code).toBe(0);
    expect(await dryRun(ws, ["--finish"], DAY / 2)).toEqual([]);
    const planned = await dryRun(ws, ["--finish"], 2 * DAY);
    expect(planned).toEqual([
      { client: "alpha", kinds: ["delete-old-secret"] },
      { client: "beta", kinds: ["delete-old-secret"] },
    ]);
    await expectSame(planned, ws, ["--finish"], 2 * DAY);
  });

  it("--compromised: the old secret of the grace goes now, then a fresh one replaces it at once", async () => {
    const { ws } = await setup();
    expect((await ws.run("rotate", ["--now", "--client", "alpha"], { offset: 60 })).code).toBe(0);
    const flags = ["--compromised", "--client", "alpha"];
    const planned = await dryRun(ws, flags, 120);
    expect(planned).toEqual([
      { client: "alpha", kinds: ["delete-old-secret", "start", "mint", "publish", "delete-old-secret"] },
    ]);
    await expectSame(planned, ws, flags, 120);
  });

  it("--recover: a rotated secret nobody told the tool about", async () => {
    const { emu, ws } = await setup();
    const alpha = await ws.sinkRecord("alpha");
    if (!alpha) throw new Error("no sink record");
    await api(emu, "POST", `/accounts/${ws.accountId}/oauth_clients/${alpha.client_id}/rotate_secret`);
    // Without --recover it is left alone, and the dry run says so.
    expect(await dryRun(ws, ["--now", "--client", "alpha"], 60)).toEqual([
      { client: "alpha", kinds: ["blocked"] },
    ]);
    const left = await rotate(ws, ["--now", "--client", "alpha"], 60);
    expect([left.mints, left.deletes, left.results.map((r) => r.status)]).toEqual([0, 0, ["attention"]]);

    const flags = ["--recover", "--client", "alpha"];
    const planned = await dryRun(ws, flags, 120);
    expect(planned).toEqual([{ client: "alpha", kinds: ["start", "recover", "mint", "publish", "wait"] }]);
    await expectSame(planned, ws, flags, 120);
  });
});

import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Plan } from "../../src/core/plan-types.js";
import type { SecretOp } from "../../src/core/rotation-plan.js";
import type { SecretOpResult } from "../../src/engine/rotate.js";
import { Secret } from "../../src/secret.js";
import { FileJournalStore, newJournalEntry } from "../../src/state/journal.js";
import { api, statsDelta } from "../e2e/support.js";
import { startTestEmulator } from "../helpers/emulator.js";
import { checkSecret, makeRotationWorkspace, ROUTE, type RotationWorkspace, stats } from "./support.js";

/**
 * `rotate --dry-run` against the emulator over HTTP, the CLI in-process with the clock moved by the
 * test: for each mode, what the dry run lists is what the next `rotate` with the same flags does (the
 * same clients, the same operations, as many rotate_secret and DELETE rotate_secret calls as it lists
 * mints and deletions, the old secrets kept or gone as it says), and the dry run itself only reads: GETs
 * only, no journal file, no sink file touched. `plan`'s rotation section lists the same operations as
 * the dry run of a plain `rotate`, and reads only as well.
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
async function dryRun(ws: RotationWorkspace, flags: string[], when: number | Date): Promise<Planned[]> {
  const ops = await dryRunOps(ws, flags, when);
  return ops.map((op) => ({ client: op.client_name, kinds: op.actions.map((a) => a.kind) }));
}

/** The operations `rotate --dry-run <flags>` lists (JSON), checked against its text and for reading only. */
async function dryRunOps(ws: RotationWorkspace, flags: string[], when: number | Date): Promise<SecretOp[]> {
  const clock = typeof when === "number" ? { offset: when } : { at: when };
  const before = await stats(ws.emu);
  const files = await snapshot(ws);
  const text = await ws.run("rotate", [...flags, "--dry-run"], clock);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toContain("nothing was changed");
  const json = await ws.run("rotate", [...flags, "--dry-run", "--format", "json"], clock);
  expect(json.code, json.stderr).toBe(0);
  const delta = statsDelta(before, await stats(ws.emu));
  expect(Object.keys(delta.by_method)).toEqual(["GET"]);
  expect(await snapshot(ws)).toEqual(files);
  const ops = (JSON.parse(json.stdout) as { ops: SecretOp[] }).ops;
  // The text lists the same operations, one line each.
  for (const op of ops) expect(text.stdout).toContain(`secret [${op.account_id}/${op.client_name}]`);
  expect(text.stdout.split("\n").filter((l) => l.startsWith("~ secret"))).toHaveLength(ops.length);
  return ops;
}

/** Runs `plan` (JSON and text) and checks it only read, as the dry run does. */
async function planOnly(ws: RotationWorkspace, at: Date): Promise<Plan> {
  const before = await stats(ws.emu);
  const files = await snapshot(ws);
  const json = await ws.run("plan", ["--format", "json"], { at });
  expect(json.code, json.stderr).toBe(0);
  const text = await ws.run("plan", [], { at });
  expect(text.code, text.stderr).toBe(0);
  expect(Object.keys(statsDelta(before, await stats(ws.emu)).by_method)).toEqual(["GET"]);
  expect(await snapshot(ws)).toEqual(files);
  const plan = JSON.parse(json.stdout) as Plan;
  expect(plan.summary.rotations).toBe(plan.rotations.length);
  // The text has one line per item, under the rotation heading.
  const lines = text.stdout.split("\n").filter((l) => /^ {4}\S+ ".*".*: (resume|rotate): /.test(l));
  expect(lines.map((l) => /"(.*)"/.exec(l)?.[1])).toEqual(plan.rotations.map((r) => r.client_name));
  for (const r of plan.rotations) {
    if (r.blocked?.code) expect(text.stdout).toContain(`[${r.blocked.code}]`);
  }
  return plan;
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
function expectedStatus(
  kinds: string[],
  blocked: SecretOpResult["status"] | undefined,
): SecretOpResult["status"] {
  const last = kinds.at(-1);
  if (last === "wait") return "waiting";
  if (last === "blocked" && blocked) return blocked;
  return "ok";
}

/**
 * Checks that `rotate` did what the dry run listed: operation by operation, call by call. `blocked`:
 * per client, how a blocked operation is reported.
 */
async function expectSame(
  planned: Planned[],
  ws: RotationWorkspace,
  flags: string[],
  offset: number,
  blocked: Record<string, SecretOpResult["status"]> = {},
) {
  const sinkBefore = new Map<string, string>();
  for (const p of planned) {
    const r = await ws.sinkRecord(p.client);
    if (r) sinkBefore.set(p.client, r.client_secret);
  }
  const done = await rotate(ws, flags, offset);
  expect(done.results.map((r) => r.client_name)).toEqual(planned.map((p) => p.client));
  expect(done.results.map((r) => r.status)).toEqual(
    planned.map((p) => expectedStatus(p.kinds, blocked[p.client])),
  );
  const count = (kind: string) => planned.flatMap((p) => p.kinds).filter((k) => k === kind).length;
  expect(done.mints).toBe(count("mint"));
  expect(done.deletes).toBe(count("delete-old-secret") + count("recover"));
  for (const p of planned) {
    const old = sinkBefore.get(p.client);
    const now = await ws.sinkRecord(p.client);
    if (!now) throw new Error(`no sink record for ${p.client}`);
    if (old === undefined) {
      // The sink had no record (no-secret): the one published now is the current secret.
      expect(p.kinds).toContain("publish");
      expect((await checkSecret(ws.emu, ws.accountId, now.client_id, now.client_secret)).slot).toBe(
        "current",
      );
      continue;
    }
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

describe("plan shows what the next rotate does", () => {
  it("the same operations and actions as `rotate --dry-run`, in every phase; then rotate does them", async () => {
    const names = ["deletedue", "due", "grace", "lost", "nosecret", "unknown", "unpub"];
    const { emu, ws } = await setup(names);
    const clientId = async (name: string) => {
      const r = await ws.sinkRecord(name);
      if (!r) throw new Error(`no sink record for ${name}`);
      return r.client_id;
    };
    const rotateSecret = (id: string) =>
      api<{ client_secret: string }>(
        emu,
        "POST",
        `/accounts/${ws.accountId}/oauth_clients/${id}/rotate_secret`,
      );
    // Every client was created at day 0 (every: 10d, grace: 1d); the plan is read at day 10.5.
    const T = 10.5 * DAY;
    // deletedue: rotated at day 9.4, its grace ended at day 10.4. grace: rotated at day 9.6, its grace
    // runs to day 10.6 (and deletedue's had not ended then, so that run left it alone).
    expect((await ws.run("rotate", ["--now", "--client", "deletedue"], { offset: 9.4 * DAY })).code).toBe(0);
    expect((await ws.run("rotate", ["--now", "--client", "grace"], { offset: 9.6 * DAY })).code).toBe(0);
    // nosecret: the sink lost its record of a client this tool created.
    await rm(join(ws.secretsDir, ws.accountId, "nosecret.json"));
    // unknown: rotated in the dashboard; the journal knows nothing of it.
    await rotateSecret(await clientId("unknown"));
    const journal = new FileJournalStore(ws.stateDir);
    const rotation = (name: string, id: string) => ({
      op: "rotate" as const,
      reason: "scheduled" as const,
      account_id: ws.accountId,
      client_name: name,
      client_id: id,
      target: { sink: "default", key: name },
      delete_old: "after-grace" as const,
      grace_seconds: DAY,
      unused: false,
      created_by_tool: true,
      existing_client_ids: [],
    });
    // unpub: a run was killed after rotate_secret answered and the journal took the new secret.
    const unpubId = await clientId("unpub");
    const minted = new Secret((await rotateSecret(unpubId)).client_secret);
    await journal.write(
      newJournalEntry(new Date(), {
        ...rotation("unpub", unpubId),
        step: "minted",
        secret: minted,
        fingerprint: minted.fingerprint(),
        minted_at: new Date().toISOString(),
      }),
    );
    // lost: a run was killed after sending rotate_secret and before its answer reached the journal.
    const lostId = await clientId("lost");
    await journal.write(newJournalEntry(new Date(), rotation("lost", lostId)));
    await rotateSecret(lostId);

    const at = new Date(Date.now() + T * 1000);
    const plan = await planOnly(ws, at);
    const ops = await dryRunOps(ws, [], at);
    // Item by item what the dry run lists: the client, the stage, the actions, the end of the grace a
    // wait keeps, the report a blocked client gets.
    const fromPlan = plan.rotations.map((r) => ({
      stage: r.stage,
      client: r.client_name,
      client_id: r.client_id,
      kinds: r.actions,
      until: r.wait_until ?? null,
      blocked: r.blocked ?? null,
    }));
    const fromDryRun = ops.map((op) => {
      const blocked = op.actions.find((a) => a.kind === "blocked");
      const wait = op.actions.find((a) => a.kind === "wait");
      return {
        stage: op.stage,
        client: op.client_name,
        client_id: op.client_id,
        kinds: op.actions.map((a) => a.kind),
        until: wait?.kind === "wait" ? wait.until : null,
        blocked:
          blocked?.kind === "blocked"
            ? { status: blocked.status, code: blocked.code, reason: blocked.reason }
            : null,
      };
    });
    expect(fromPlan).toEqual(fromDryRun);
    expect(
      plan.rotations.map((r) => [r.stage, r.client_name, r.phase, r.actions.join(","), r.blocked?.code]),
    ).toEqual([
      ["resume", "deletedue", "delete-due", "delete-old-secret", undefined],
      ["resume", "lost", "in-progress", "blocked", "E_ROTATION_SECRET_LOST"],
      ["resume", "unpub", "unpublished", "publish,wait", undefined],
      ["act", "due", "due", "start,mint,publish,wait", undefined],
      // Published once before (the create), so the replacement keeps a grace too.
      ["act", "nosecret", "no-secret", "start,mint,publish,wait", undefined],
      ["act", "unknown", "unknown-rotated", "blocked", "E_UNKNOWN_ROTATED_SECRET"],
    ]);
    // grace: nothing until its grace ends at day 10.6, in the plan as in the dry run (its wait was
    // listed by the rotation that started it).
    expect(plan.rotations.some((r) => r.client_name === "grace")).toBe(false);
    // Due times: the rotation's (day 10, from the create), the end of deletedue's grace (day 10.4).
    const dueAt = (name: string) =>
      Date.parse(plan.rotations.find((r) => r.client_name === name)?.due_at ?? "");
    const created = Date.parse(
      (await ws.inventory()).accounts[ws.accountId]?.find((e) => e.client_name === "due")?.since ?? "",
    );
    expect(Math.abs(dueAt("due") - (created + 10 * DAY * 1000))).toBeLessThan(60_000);
    expect(Math.abs(dueAt("deletedue") - (created + 10.4 * DAY * 1000))).toBeLessThan(60_000);

    // The rotate the plan described does exactly that (two mints, one deletion, two clients left for
    // an operator: exit 1), and the old secret in the sink before it was published is kept for grace.
    const done = await expectSame(
      fromDryRun.map((p) => ({ client: p.client, kinds: p.kinds })),
      ws,
      [],
      T,
      { lost: "attention", unknown: "attention" },
    );
    expect([done.code, done.mints, done.deletes]).toEqual([1, 2, 1]);
    // Second round: what is left is what the plan and the dry run both still list.
    const next = new Date(Date.now() + T * 1000 + 60_000);
    const again = await planOnly(ws, next);
    expect(again.rotations.map((r) => [r.stage, r.client_name, r.phase, r.actions])).toEqual([
      ["resume", "lost", "secret-lost", ["blocked"]],
      ["act", "unknown", "unknown-rotated", ["blocked"]],
    ]);
    expect(again.rotations.map((r) => ({ client: r.client_name, kinds: r.actions }))).toEqual(
      await dryRun(ws, [], next),
    );
  });
});

import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { Plan } from "../../src/core/plan-types.js";
import { FileJournalStore, newJournalEntry, type JournalEntry } from "../../src/state/journal.js";
import { api, type CreatedClient } from "../e2e/support.js";
import { startTestEmulator } from "../helpers/emulator.js";
import {
  checkSecret,
  confidentialClient,
  makeRotationWorkspace,
  ROUTE,
  routeCount,
  type RotationWorkspace,
  stats,
} from "./support.js";

/**
 * `rotate` and the journaled create through the CLI (in-process), against the emulator over HTTP with
 * real files: preflight, unknown rotated secrets, recover, break-glass, crash recovery of creates,
 * and the plan's rotation items. The clock is moved by passing the CLI a clock of the test's own.
 */

const DAY = 86_400;

async function setup(names: string[] = ["alpha"]) {
  const emu = await startTestEmulator();
  const ws = await makeRotationWorkspace(emu, { every: "10d", grace: "1d" });
  await ws.writeClients(names);
  const applied = await ws.run("apply");
  expect(applied.code, applied.stderr).toBe(0);
  return { emu, ws };
}

async function record(ws: RotationWorkspace, key: string) {
  const r = await ws.sinkRecord(key);
  if (!r) throw new Error(`no sink record for ${key}`);
  return r;
}

/** A journal entry as an interrupted run would have left it. */
function interrupted(
  fields: Partial<JournalEntry> & Pick<JournalEntry, "op" | "client_name" | "account_id">,
): JournalEntry {
  return newJournalEntry(new Date(), {
    reason: fields.op === "create" ? "create" : "scheduled",
    client_id: null,
    target: { sink: "default", key: fields.client_name },
    delete_old: fields.op === "create" ? "none" : "after-grace",
    grace_seconds: DAY,
    unused: fields.op === "create",
    created_by_tool: fields.op === "create",
    existing_client_ids: [],
    ...fields,
  });
}

describe("rotate: preflight", () => {
  it("a sink that refuses writes: apply sends no create, rotate sends no rotate_secret", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu);
    await ws.writeClients(["alpha"]);
    // The account's directory is a regular file: the file sink cannot create it (real files, root or not).
    await mkdir(ws.secretsDir, { recursive: true });
    await writeFile(join(ws.secretsDir, ws.accountId), "not a directory");
    const apply = await ws.run("apply");
    expect(apply.code).toBe(1);
    expect(apply.stdout).toContain("E_SINK_NOT_WRITABLE");
    expect(routeCount(await stats(emu), ROUTE.create)).toBe(0);
    expect(await ws.journalFiles()).toEqual([]);

    await rm(join(ws.secretsDir, ws.accountId));
    expect((await ws.run("apply")).code).toBe(0);
    await rm(join(ws.secretsDir, ws.accountId), { recursive: true });
    await writeFile(join(ws.secretsDir, ws.accountId), "not a directory");
    const rotate = await ws.run("rotate", ["--now"]);
    expect(rotate.code).toBe(1);
    expect(rotate.stdout).toContain("E_SINK_NOT_WRITABLE");
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(0);
  });
});

describe("rotate: clients with a rotated secret the tool does not know", () => {
  it("are reported and left alone (exit 1); --recover deletes the older one and mints a known secret", async () => {
    const { emu, ws } = await setup();
    const before = await record(ws, "alpha");
    // Someone rotated in the dashboard and kept the new secret: the sink still holds the old one.
    const theirs = await api<{ client_secret: string }>(
      emu,
      "POST",
      `/accounts/${ws.accountId}/oauth_clients/${before.client_id}/rotate_secret`,
    );
    const run = await ws.run("rotate", [], { offset: 20 * DAY });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("E_UNKNOWN_ROTATED_SECRET");
    expect(run.stderr).toContain("need an operator");
    expect(routeCount(await stats(emu), ROUTE.deleteRotated)).toBe(0);
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(1); // the dashboard's
    expect((await checkSecret(emu, ws.accountId, before.client_id, before.client_secret)).valid).toBe(true);

    const status = await ws.run("rotate", ["--status", "--format", "json"]);
    expect(JSON.parse(status.stdout)).toMatchObject([{ client_name: "alpha", phase: "unknown-rotated" }]);
    // The plan says what rotate does with it: nothing, and why, with the way out.
    const plan = JSON.parse((await ws.run("plan", ["--format", "json"])).stdout) as Plan;
    expect(plan.rotations).toEqual([
      {
        stage: "act",
        account_id: ws.accountId,
        client_id: before.client_id,
        client_name: "alpha",
        phase: "unknown-rotated",
        due_at: null,
        actions: ["blocked"],
        blocked: {
          status: "attention",
          code: "E_UNKNOWN_ROTATED_SECRET",
          reason: expect.stringContaining("rotate --recover --client alpha") as unknown as string,
        },
      },
    ]);

    const noClient = await ws.run("rotate", ["--recover"]);
    expect(noClient.code).toBe(1);
    expect(noClient.stderr).toContain("E_USAGE");

    const recovered = await ws.run("rotate", ["--recover", "--client", "alpha"]);
    expect(recovered.code, recovered.stdout).toBe(0);
    const after = await record(ws, "alpha");
    // The operator vouched for the newest (theirs): it survives the recover for the grace period.
    expect(await checkSecret(emu, ws.accountId, before.client_id, theirs.client_secret)).toEqual({
      valid: true,
      slot: "rotated",
    });
    expect(await checkSecret(emu, ws.accountId, before.client_id, after.client_secret)).toEqual({
      valid: true,
      slot: "current",
    });
    expect((await checkSecret(emu, ws.accountId, before.client_id, before.client_secret)).valid).toBe(false);
    expect((await ws.run("rotate", [], { offset: DAY + 60 })).code).toBe(0);
    expect((await checkSecret(emu, ws.accountId, before.client_id, theirs.client_secret)).valid).toBe(false);
  });

  it("a rotation of ours whose new secret was lost is blocked (old secret kept) until --recover", async () => {
    const { emu, ws } = await setup();
    const before = await record(ws, "alpha");
    // What a kill between rotate_secret's answer and the journal write leaves behind:
    await new FileJournalStore(ws.stateDir).write(
      interrupted({
        op: "rotate",
        account_id: ws.accountId,
        client_name: "alpha",
        client_id: before.client_id,
      }),
    );
    await api(emu, "POST", `/accounts/${ws.accountId}/oauth_clients/${before.client_id}/rotate_secret`);

    for (const args of [[], ["--now"], ["--finish"]]) {
      const run = await ws.run("rotate", args, { offset: 20 * DAY });
      expect(run.code).toBe(1);
      expect(run.stdout).toContain("E_ROTATION_SECRET_LOST");
    }
    const apply = await ws.run("apply");
    expect(apply.code).toBe(1);
    expect(apply.stdout).toContain("E_ROTATION_SECRET_LOST");
    expect(routeCount(await stats(emu), ROUTE.deleteRotated)).toBe(0);
    expect((await checkSecret(emu, ws.accountId, before.client_id, before.client_secret)).valid).toBe(true);

    const recovered = await ws.run("rotate", ["--recover", "--client", "alpha"], { offset: 20 * DAY });
    expect(recovered.code, recovered.stdout).toBe(0);
    const after = await record(ws, "alpha");
    expect((await checkSecret(emu, ws.accountId, before.client_id, after.client_secret)).valid).toBe(true);
    expect((await ws.run("rotate", [], { offset: 20 * DAY })).code).toBe(0);
  });
});

describe("rotate: modes", () => {
  it("--compromised deletes every old secret at once, also during a grace period", async () => {
    const { emu, ws } = await setup(["alpha", "beta"]);
    const first = await record(ws, "alpha");
    const beta = await record(ws, "beta");
    expect((await ws.run("rotate", ["--now", "--client", "alpha"])).code).toBe(0);
    const second = await record(ws, "alpha");
    expect((await checkSecret(emu, ws.accountId, first.client_id, first.client_secret)).valid).toBe(true);

    const now = await ws.run("rotate", ["--now", "--client", "alpha"]);
    expect(now.code).toBe(0);
    expect(now.stdout).toContain("grace period");

    const broken = await ws.run("rotate", ["--compromised", "--client", "alpha"]);
    expect(broken.code, broken.stdout).toBe(0);
    const third = await record(ws, "alpha");
    expect((await checkSecret(emu, ws.accountId, first.client_id, first.client_secret)).valid).toBe(false);
    expect((await checkSecret(emu, ws.accountId, first.client_id, second.client_secret)).valid).toBe(false);
    expect(await checkSecret(emu, ws.accountId, first.client_id, third.client_secret)).toEqual({
      valid: true,
      slot: "current",
    });
    // Only the named client was touched.
    expect((await record(ws, "beta")).client_secret).toBe(beta.client_secret);
    expect((await ws.run("rotate", ["--compromised"])).code).toBe(1);
  });

  it("--finish deletes due old secrets and starts nothing; --client names must exist", async () => {
    const { emu, ws } = await setup(["alpha", "beta"]);
    expect((await ws.run("rotate", ["--now", "--client", "alpha"])).code).toBe(0);
    const finishEarly = await ws.run("rotate", ["--finish"], { offset: 20 * DAY });
    expect(finishEarly.code).toBe(0);
    expect(routeCount(await stats(emu), ROUTE.deleteRotated)).toBe(1);
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(1); // beta is due but --finish starts nothing
    const unknown = await ws.run("rotate", ["--now", "--client", "nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain("E_UNKNOWN_CLIENT");
    const both = await ws.run("rotate", ["--now", "--finish"]);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain("cannot be combined");
  });
});

describe("creates: crash recovery across processes", () => {
  it("a create whose POST landed but whose answer was lost is adopted by name with a known secret", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu);
    await ws.writeClients(["alpha"]);
    await new FileJournalStore(ws.stateDir).write(
      interrupted({ op: "create", account_id: ws.accountId, client_name: "alpha" }),
    );
    // The POST reached the API; the process died before the answer was journaled.
    const created = await api<CreatedClient>(emu, "POST", `/accounts/${ws.accountId}/oauth_clients`, {
      ...confidentialClient("alpha"),
    });
    const apply = await ws.run("apply");
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain("found the created client by name");
    expect(routeCount(await stats(emu), ROUTE.create)).toBe(1); // the one above: no duplicate
    const live = await api<LiveClient[]>(emu, "GET", `/accounts/${ws.accountId}/oauth_clients`);
    expect(live.filter((c) => c.client_name === "alpha")).toHaveLength(1);
    expect(await ws.inventory()).toMatchObject({
      accounts: { [ws.accountId]: [{ client_id: created.client_id, origin: "created" }] },
    });
    const sink = await record(ws, "alpha");
    expect(await checkSecret(emu, ws.accountId, created.client_id, sink.client_secret)).toEqual({
      valid: true,
      slot: "current",
    });
    // Nobody could hold the lost one: it is gone at once.
    expect((await checkSecret(emu, ws.accountId, created.client_id, created.client_secret ?? "")).valid).toBe(
      false,
    );
    expect((await ws.journalFiles()).map((f) => f.json["step"])).toEqual(["done"]);
  });

  it("a create interrupted before its POST is dropped and planned again, once", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu);
    await ws.writeClients(["alpha"]);
    await new FileJournalStore(ws.stateDir).write(
      interrupted({ op: "create", account_id: ws.accountId, client_name: "alpha" }),
    );
    const apply = await ws.run("apply");
    expect(apply.code, apply.stdout).toBe(0);
    expect(apply.stdout).toContain("never reached the API");
    expect(routeCount(await stats(emu), ROUTE.create)).toBe(1);
    const sink = await record(ws, "alpha");
    expect((await checkSecret(emu, ws.accountId, sink.client_id, sink.client_secret)).valid).toBe(true);
  });

  it("a created client whose sink record vanished gets a known secret; the lost one keeps its grace", async () => {
    const { emu, ws } = await setup();
    const before = await record(ws, "alpha");
    await rm(join(ws.secretsDir, ws.accountId, "alpha.json"));
    const plan = JSON.parse((await ws.run("plan", ["--format", "json"])).stdout) as Plan;
    expect(plan.rotations.map((r) => [r.client_name, r.phase, r.actions])).toEqual([
      ["alpha", "no-secret", ["start", "mint", "publish", "wait"]],
    ]);
    const run = await ws.run("rotate");
    expect(run.code, run.stdout).toBe(0);
    const after = await record(ws, "alpha");
    expect((await checkSecret(emu, ws.accountId, before.client_id, after.client_secret)).valid).toBe(true);
    expect((await checkSecret(emu, ws.accountId, before.client_id, before.client_secret)).valid).toBe(true);
  });

  it("an adopted client without a sink record is not minted at once, only rotated when due (with grace)", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu);
    const theirs = await api<CreatedClient>(emu, "POST", `/accounts/${ws.accountId}/oauth_clients`, {
      ...confidentialClient("legacy"),
    });
    await ws.writeClients(["legacy"]);
    expect((await ws.run("apply")).code).toBe(0);
    expect((await ws.run("rotate")).code).toBe(0);
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(0);
    expect((await ws.run("rotate", [], { offset: 11 * DAY })).code).toBe(0);
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(1);
    expect((await checkSecret(emu, ws.accountId, theirs.client_id, theirs.client_secret ?? "")).valid).toBe(
      true,
    );
  });
});

describe("plan: rotation items", () => {
  it("shows what the next rotate does, without changing the checksum", async () => {
    const { ws } = await setup(["alpha", "beta"]);
    const today = JSON.parse((await ws.run("plan", ["--format", "json"])).stdout) as Plan;
    expect(today.rotations).toEqual([]);
    expect((await ws.run("rotate", ["--now", "--client", "alpha"])).code).toBe(0);
    // Day 11: alpha's grace ended at day 1, so its old secret goes first, and its new secret (from
    // day 0) is due again; beta's create-time secret is due.
    const later = JSON.parse(
      (await ws.run("plan", ["--format", "json"], { offset: 11 * DAY })).stdout,
    ) as Plan;
    expect(later.rotations.map((r) => [r.stage, r.client_name, r.phase, r.actions])).toEqual([
      ["resume", "alpha", "delete-due", ["delete-old-secret"]],
      ["act", "alpha", "due", ["start", "mint", "publish", "wait"]],
      ["act", "beta", "due", ["start", "mint", "publish", "wait"]],
    ]);
    expect(later.summary.rotations).toBe(3);
    expect(later.checksum).toBe(today.checksum);
    const text = await ws.run("plan", [], { offset: 11 * DAY });
    expect(text.stdout).toContain("Secret rotations");
    expect(text.stdout).toMatch(
      /"alpha" \(id \w+\) \[delete-due since [^\]]+\]: resume: delete the old secret\n/,
    );
    expect(text.stdout).toContain("3 secret operations for rotate");
    const markdown = await ws.run("plan", ["--format", "markdown"], { offset: 11 * DAY });
    expect(markdown.stdout).toContain("**Secret rotations**");
    expect(markdown.stdout).toContain("3 secret operations for rotate");
  });
});

import { describe, expect, it } from "vitest";
import { ACCOUNT_A, ACCOUNT_B, startTestEmulator } from "../helpers/emulator.js";
import {
  DELETE_ROUTE,
  confidential,
  createDirect,
  liveClients,
  makeWorkspace,
  measure,
  names,
  publicClient,
  type Workspace,
} from "./support.js";

/**
 * Each prune mode end to end (README table): `none` reports a removed entry as orphaned and leaves it;
 * `owned` deletes what the tool created or adopted and never touches the rest; `all` deletes everything
 * not desired except `ignore:` names and ids. And `ensure: absent` in each situation.
 */

const SAFETY = { max_deletes: 10, max_change_percent: 100 };

/** `keep` and `gone` applied (owned), plus `dashboard-made`, created by hand. */
async function setUp(
  prune: "none" | "owned" | "all",
  ignore?: string[],
): Promise<{ ws: Workspace; foreignId: string }> {
  const emu = await startTestEmulator();
  const foreign = await createDirect(emu, ACCOUNT_A, confidential("dashboard-made"));
  const ws = await makeWorkspace(emu, { prune: "none", safety: SAFETY });
  await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("keep"), publicClient("gone")]);
  const first = await ws.run("apply");
  expect(first.code, first.stderr).toBe(0);
  await ws.writeConfig({ prune, safety: SAFETY, ...(ignore ? { ignore } : {}) });
  await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("keep")]);
  return { ws, foreignId: foreign.client_id };
}

describe("prune: none", () => {
  it("a removed entry is reported orphaned and stays live; nothing to apply", async () => {
    const { ws, foreignId } = await setUp("none");
    const gone = (await ws.owned(ACCOUNT_A)).find((e) => e.client_name === "gone")!;
    const plan = await ws.planJson(0, ["--detailed-exitcode"]);
    expect(plan.changes).toEqual([]);
    expect(plan.orphaned).toEqual([
      expect.objectContaining({ code: "orphaned", client_name: "gone", client_id: gone.client_id }),
    ]);
    expect(plan.unmanaged).toEqual([
      expect.objectContaining({ code: "unmanaged", client_name: "dashboard-made", client_id: foreignId }),
    ]);
    const text = await ws.run("plan");
    expect(text.stdout).toContain("gone");

    const { value, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(value.code).toBe(0);
    expect(value.stdout).toContain("Nothing to apply.");
    expect(delta.by_method).toEqual({ GET: 1 });
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["dashboard-made", "gone", "keep"]);
    // Still owned: switching to prune: owned later deletes it.
    expect((await ws.owned(ACCOUNT_A)).map((e) => e.client_name).sort()).toEqual(["gone", "keep"]);
  });
});

describe("prune: owned", () => {
  it("deletes the removed owned client; the unowned one is untouched", async () => {
    const { ws, foreignId } = await setUp("owned");
    const plan = await ws.planJson(2, ["--detailed-exitcode"]);
    expect(plan.changes).toEqual([
      expect.objectContaining({ kind: "delete", client_name: "gone", reason: "prune-owned" }),
    ]);
    expect(plan.unmanaged.map((i) => i.client_id)).toEqual([foreignId]);

    const { value, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(value.code, value.stderr).toBe(0);
    expect(delta.by_route[DELETE_ROUTE]).toBe(1);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["dashboard-made", "keep"]);
    expect((await ws.owned(ACCOUNT_A)).map((e) => e.client_name)).toEqual(["keep"]);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
  });

  it("an adopted client counts as owned: dropping its entry deletes it", async () => {
    const { ws, foreignId } = await setUp("owned");
    // Adopt the hand-made client by naming it with its exact fields.
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("keep"), confidential("dashboard-made")]);
    const adopt = await ws.run("apply");
    expect(adopt.code, adopt.stderr).toBe(0);
    expect(await ws.owned(ACCOUNT_A)).toContainEqual(
      expect.objectContaining({ client_id: foreignId, client_name: "dashboard-made", origin: "adopted" }),
    );
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("keep")]);
    expect((await ws.run("apply")).code).toBe(0);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["keep"]);
  });
});

describe("prune: all", () => {
  it("deletes everything not desired except ignore: names and ids; other accounts untouched", async () => {
    const emu = await startTestEmulator();
    const byName = await createDirect(emu, ACCOUNT_A, confidential("break-glass"));
    const byId = await createDirect(emu, ACCOUNT_A, confidential("legacy-sso"));
    const doomed = await createDirect(emu, ACCOUNT_A, confidential("old-portal"));
    const elsewhere = await createDirect(emu, ACCOUNT_B, confidential("other-account-app"));
    const ws = await makeWorkspace(emu, {
      prune: "all",
      ignore: ["break-glass", byId.client_id],
      safety: SAFETY,
    });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("keep")]);

    const plan = await ws.planJson(0);
    expect(plan.changes.map((c) => [c.kind, c.client_name, c.kind === "delete" ? c.reason : null])).toEqual([
      ["create", "keep", null],
      ["delete", "old-portal", "prune-all"],
    ]);
    expect(plan.skipped.map((i) => [i.code, i.client_id]).sort()).toEqual(
      [
        ["ignored", byName.client_id],
        ["ignored", byId.client_id],
      ].sort(),
    );

    const result = await ws.run("apply");
    expect(result.code, result.stderr).toBe(0);
    const live = await liveClients(emu, ACCOUNT_A);
    expect(names(live)).toEqual(["break-glass", "keep", "legacy-sso"]);
    expect(live.map((c) => c.client_id)).not.toContain(doomed.client_id);
    expect((await liveClients(emu, ACCOUNT_B)).map((c) => c.client_id)).toEqual([elsewhere.client_id]);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
  });

  it("also deletes a removed owned client", async () => {
    const { ws } = await setUp("all");
    expect((await ws.run("apply")).code).toBe(0);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["keep"]);
  });
});

describe("ensure: absent", () => {
  it("deletes an owned client even under prune: none", async () => {
    const { ws } = await setUp("none");
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("keep"),
      { client_name: "gone", ensure: "absent" },
    ]);
    const plan = await ws.planJson(0);
    expect(plan.changes).toEqual([
      expect.objectContaining({ kind: "delete", client_name: "gone", reason: "ensure-absent" }),
    ]);
    expect((await ws.run("apply")).code).toBe(0);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["dashboard-made", "keep"]);
  });

  it("a foreign client matched by name only is skipped (not owned); pinned by id it is deleted", async () => {
    const { ws, foreignId } = await setUp("owned");
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("keep"),
      publicClient("gone"),
      { client_name: "dashboard-made", ensure: "absent" },
      { client_name: "never-existed", ensure: "absent" },
    ]);
    const plan = await ws.planJson(0);
    expect(plan.changes).toEqual([]);
    expect(plan.skipped).toEqual([
      expect.objectContaining({ code: "not-owned", client_name: "dashboard-made", client_id: foreignId }),
    ]);
    expect((await ws.run("apply")).code).toBe(0);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["dashboard-made", "gone", "keep"]);

    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("keep"),
      publicClient("gone"),
      { client_id: foreignId, ensure: "absent" },
    ]);
    const { value, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(value.code, value.stderr).toBe(0);
    expect(delta.by_route[DELETE_ROUTE]).toBe(1);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["gone", "keep"]);
    // Already gone: the pinned absent entry is satisfied, nothing more to do.
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
  });

  it("under prune: all a foreign client named absent is deleted", async () => {
    const { ws } = await setUp("all");
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("keep"),
      publicClient("gone"),
      { client_name: "dashboard-made", ensure: "absent" },
    ]);
    const plan = await ws.planJson(0);
    expect(plan.changes).toEqual([
      expect.objectContaining({ kind: "delete", client_name: "dashboard-made", reason: "ensure-absent" }),
    ]);
    expect((await ws.run("apply")).code).toBe(0);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["gone", "keep"]);
  });
});

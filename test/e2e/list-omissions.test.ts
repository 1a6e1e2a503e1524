import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { ACCOUNT_A, control, startTestEmulator } from "../helpers/emulator.js";
import {
  api,
  confidential,
  CREATE_ROUTE,
  DELETE_ROUTE,
  filesUnder,
  liveClients,
  makeWorkspace,
  measure,
  names,
  type Workspace,
} from "./support.js";

/**
 * Ownership survives a bad answer (README, "Ownership, prune and safety valves"): a list answer that
 * is `success: true` but leaves owned clients out, or whose `result_info.total_count` disagrees with
 * it, plans nothing and changes nothing, as the real program run as a process shows: no create, no
 * delete, the state directory (inventory and journal) byte for byte as it was, exit 1 and a message
 * that says what was seen. Only a GET answering 404 lets the inventory forget a client, and most of an
 * account's owned clients vanishing at once is refused (exit 3) until `--force`.
 */

const GET_CLIENT_ROUTE = "GET /accounts/:account_id/oauth_clients/:client_id";
const THREE = ["a", "b", "c"];

/** Three clients created and owned by `apply`, under `prune: owned` (so a wrong view could delete). */
async function threeOwned(emu: EmulatorHandle): Promise<Workspace> {
  const ws = await makeWorkspace(emu, { prune: "owned" });
  await ws.writeDesired(
    "apps.yaml",
    ACCOUNT_A,
    THREE.map((n) => confidential(n)),
  );
  const first = await ws.run("apply");
  expect(first.code, first.stderr).toBe(0);
  expect((await ws.owned(ACCOUNT_A)).map((e) => e.client_name).sort()).toEqual(THREE);
  return ws;
}

/** Every file of the state directory (inventory, journal), path -> bytes. */
async function stateBytes(ws: Workspace): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const path of (await filesUnder(ws.stateDir)).sort()) {
    out.set(path.slice(ws.stateDir.length), (await readFile(path)).toString("base64"));
  }
  return out;
}

async function idOf(emu: EmulatorHandle, name: string): Promise<string> {
  const client = (await liveClients(emu, ACCOUNT_A)).find((c) => c.client_name === name);
  if (!client) throw new Error(`no live client ${name}`);
  return client.client_id;
}

describe("a list answer that leaves owned clients out", () => {
  it("an empty list (`result: []`): apply exits 1 with E_LIST_INCOMPLETE; no create, no delete, state unchanged", async () => {
    const emu = await startTestEmulator();
    const ws = await threeOwned(emu);
    const before = await stateBytes(ws);
    expect([...before.keys()]).toContain("/inventory.json");
    expect([...before.keys()].some((k) => k.startsWith("/journal/"))).toBe(true);

    await control(emu, "POST", "faults", { listDropRate: 1 });
    const { value: apply, delta } = await measure(emu, () => ws.runChild("apply"));
    expect(apply.code, apply.stdout + apply.stderr).toBe(1);
    expect(apply.stderr).toContain("[E_LIST_INCOMPLETE]");
    expect(apply.stderr).toContain(
      `account ${ACCOUNT_A}: the list showed 0 clients and the inventory owns 3; clients `,
    );
    expect(apply.stderr).toContain("exist but were not listed");
    expect(apply.stderr).toContain("nothing is planned or changed");
    expect(apply.stdout).not.toContain("stale inventory");
    expect(delta.by_method["POST"]).toBeUndefined();
    expect(delta.by_method["DELETE"]).toBeUndefined();
    expect(delta.by_method["PATCH"]).toBeUndefined();
    expect(delta.by_route[CREATE_ROUTE]).toBeUndefined();
    expect(delta.by_route[DELETE_ROUTE]).toBeUndefined();
    expect(await stateBytes(ws)).toEqual(before);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(THREE);

    // plan says the same (exit 1), and rotate refuses to act on the view too.
    const plan = await ws.runChild("plan");
    expect(plan.code).toBe(1);
    expect(plan.stderr).toContain("[E_LIST_INCOMPLETE]");
    const rotate = await ws.run("rotate");
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toContain("[E_LIST_INCOMPLETE]");
    expect(await stateBytes(ws)).toEqual(before);

    // Once the answers are whole again, nothing was lost: no changes, the same three owned clients.
    await control(emu, "POST", "faults", { listDropRate: 0 });
    const again = await ws.run("plan", ["--detailed-exitcode"]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain("No changes.");
  });

  it("one client left out: names it, and the prune of a `prune: all` account does not happen either", async () => {
    const emu = await startTestEmulator();
    const ws = await threeOwned(emu);
    await ws.writeConfig({ prune: "all" });
    const hidden = await idOf(emu, "b");
    const before = await stateBytes(ws);

    await control(emu, "POST", "faults", { listDropIds: [hidden] });
    const { value: apply, delta } = await measure(emu, () => ws.runChild("apply"));
    expect(apply.code, apply.stdout + apply.stderr).toBe(1);
    expect(apply.stderr).toContain(
      `[E_LIST_INCOMPLETE]: account ${ACCOUNT_A}: the list showed 2 clients and the inventory owns 3; client ${hidden} exists but was not listed`,
    );
    // The list, then one GET of the client it left out: nothing else.
    expect(delta.by_route).toEqual({
      "GET /accounts/:account_id/oauth_clients": 1,
      [GET_CLIENT_ROUTE]: 1,
    });
    expect(await stateBytes(ws)).toEqual(before);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(THREE);
  });
});

describe("a list whose result_info.total_count disagrees with it", () => {
  it("is a failed read: apply exits 1 with E_API_LIST_COUNT_MISMATCH; no create, state unchanged", async () => {
    const emu = await startTestEmulator();
    const ws = await threeOwned(emu);
    await ws.writeDesired(
      "apps.yaml",
      ACCOUNT_A,
      [...THREE, "d"].map((n) => confidential(n)),
    );
    const before = await stateBytes(ws);

    await control(emu, "POST", "faults", { listTotalCountOffset: 5 });
    const { value: apply, delta } = await measure(emu, () => ws.runChild("apply"));
    expect(apply.code, apply.stdout + apply.stderr).toBe(1);
    expect(apply.stderr).toContain("[E_API_LIST_COUNT_MISMATCH]");
    expect(apply.stderr).toContain("the list holds 3 clients but result_info.total_count says 8");
    expect(delta.by_method["POST"]).toBeUndefined();
    expect(delta.by_method["DELETE"]).toBeUndefined();
    expect(await stateBytes(ws)).toEqual(before);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(THREE);

    await control(emu, "POST", "faults", { listTotalCountOffset: 0 });
    const healed = await ws.run("apply");
    expect(healed.code, healed.stdout + healed.stderr).toBe(0);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual([...THREE, "d"]);
  });
});

describe("a client confirmed gone (GET answers 404)", () => {
  it("is forgotten by the inventory and re-created from the desired state", async () => {
    const emu = await startTestEmulator();
    const ws = await threeOwned(emu);
    const goneId = await idOf(emu, "c");
    await api(emu, "DELETE", `/accounts/${ACCOUNT_A}/oauth_clients/${goneId}`);

    const { value: apply, delta } = await measure(emu, () => ws.runChild("apply"));
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain("1 stale inventory entries dropped");
    expect(delta.by_route[GET_CLIENT_ROUTE]).toBe(1);
    expect(delta.by_route[CREATE_ROUTE]).toBe(1);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(THREE);
    const owned = await ws.owned(ACCOUNT_A);
    expect(owned.map((e) => e.client_id)).not.toContain(goneId);
    expect(owned.map((e) => e.client_name).sort()).toEqual(THREE);
    // Its journal record went with it: nothing in the state directory names the gone client.
    for (const path of await filesUnder(ws.stateDir)) {
      expect(await readFile(path, "utf8"), path).not.toContain(goneId);
    }
  });

  it("most of an account's owned clients gone at once: exit 3 (owned-vanished), inventory unchanged; --force accepts", async () => {
    const emu = await startTestEmulator();
    const ws = await threeOwned(emu);
    for (const name of ["b", "c"]) {
      await api(emu, "DELETE", `/accounts/${ACCOUNT_A}/oauth_clients/${await idOf(emu, name)}`);
    }
    const before = (await stateBytes(ws)).get("/inventory.json");

    const { value: refused, delta } = await measure(emu, () => ws.runChild("apply"));
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.stderr).toContain("[E_UNSAFE_PLAN]");
    expect(refused.stderr).toContain(
      "2 of the 3 clients this tool owns (66.7%) are gone (a GET of each answered 404)",
    );
    expect(delta.by_method["POST"]).toBeUndefined();
    expect(delta.by_method["DELETE"]).toBeUndefined();
    // The inventory still owns all three (the journal's records of the two gone clients are moot and
    // dropped: their 404s are confirmed).
    expect((await stateBytes(ws)).get("/inventory.json")).toEqual(before);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(["a"]);

    const forced = await ws.runChild("apply", ["--force"]);
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stdout).toContain("2 stale inventory entries dropped");
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(THREE);
    expect((await ws.owned(ACCOUNT_A)).map((e) => e.client_name).sort()).toEqual(THREE);
  });
});

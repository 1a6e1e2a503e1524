import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Plan } from "../../src/core/plan-types.js";
import { ACCOUNT_A, startTestEmulator } from "../helpers/emulator.js";
import {
  LIST_ROUTE,
  confidential,
  liveClients,
  makeWorkspace,
  measure,
  names,
  patchDirect,
  type Workspace,
} from "./support.js";

/**
 * `plan --out FILE` then `apply --plan FILE` (README, "CLI"): the reviewed plan is applied only while
 * the account and the desired state still give the same plan (checksum over the changes and each
 * touched client's updated_at); an edited file is refused as tampered. A refusal writes nothing.
 */

/** An emulator clock that moves one second per reading, so every write gets a new updated_at. */
function tickingClock(): () => Date {
  let t = Date.parse("2025-01-01T00:00:00Z");
  return () => new Date((t += 1000));
}

/** `web` and `api` applied; then `web` drifts in the desired state and `jobs` is added. */
async function reviewedWorkspace(): Promise<{ ws: Workspace; planFile: string }> {
  const emu = await startTestEmulator({ now: tickingClock() });
  const ws = await makeWorkspace(emu);
  await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("web"), confidential("api")]);
  const first = await ws.run("apply");
  expect(first.code, first.stderr + first.stdout).toBe(0);
  await ws.writeDesired("apps.yaml", ACCOUNT_A, [
    confidential("web", { redirect_uris: ["https://web.example.com/v2/callback"] }),
    confidential("api"),
    confidential("jobs"),
  ]);
  const planFile = join(ws.dir, "p.json");
  const saved = await ws.run("plan", ["--out", planFile, "--detailed-exitcode"]);
  expect(saved.code).toBe(2);
  expect(saved.stdout).toContain("Plan: 1 to create, 1 to update, 0 to delete.");
  return { ws, planFile };
}

/** The writes a run made: every counted request that is not a GET. */
function writesOf(delta: { by_method: Record<string, number> }): Record<string, number> {
  return Object.fromEntries(Object.entries(delta.by_method).filter(([method]) => method !== "GET"));
}

describe("apply --plan", () => {
  it("an untouched saved plan applies: exit 0, exactly the reviewed changes", async () => {
    const { ws, planFile } = await reviewedWorkspace();
    const saved = JSON.parse(await readFile(planFile, "utf8")) as Plan;
    expect(saved.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    const { value: result, delta } = await measure(ws.emu, () => ws.run("apply", ["--plan", planFile]));
    expect(result.code, result.stderr).toBe(0);
    expect(writesOf(delta)).toEqual({ POST: 1, PATCH: 1 });
    const live = await liveClients(ws.emu, ACCOUNT_A);
    expect(names(live)).toEqual(["api", "jobs", "web"]);
    expect(live.find((c) => c.client_name === "web")?.redirect_uris).toEqual([
      "https://web.example.com/v2/callback",
    ]);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);

    // The same file again: what it describes is done, so it is stale now.
    const again = await ws.run("apply", ["--plan", planFile]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("[E_PLAN_STALE]");
  });

  it("a client edited in the dashboard since the review: E_PLAN_STALE, exit 1, no write", async () => {
    const { ws, planFile } = await reviewedWorkspace();
    const web = (await liveClients(ws.emu, ACCOUNT_A)).find((c) => c.client_name === "web")!;
    // An empty PATCH changes nothing but updated_at: the reviewed plan is still refused.
    const touched = await patchDirect(ws.emu, ACCOUNT_A, web.client_id, {});
    expect(touched.updated_at).not.toBe(web.updated_at);

    const { value: result, delta } = await measure(ws.emu, () => ws.run("apply", ["--plan", planFile]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("error [E_PLAN_STALE]");
    expect(result.stderr).toContain(
      `update ${ACCOUNT_A}/web: live updated_at ${web.updated_at} -> ${touched.updated_at}`,
    );
    expect(result.stderr).toContain("nothing was applied; run plan again");
    expect(writesOf(delta)).toEqual({});
    expect(delta.by_route[LIST_ROUTE]).toBe(1);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["api", "web"]);

    // A fresh review of the new state applies.
    const fresh = join(ws.dir, "p2.json");
    expect((await ws.run("plan", ["--out", fresh])).code).toBe(0);
    expect((await ws.run("apply", ["--plan", fresh])).code).toBe(0);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["api", "jobs", "web"]);
  });

  it("a desired file edited since the review: E_PLAN_STALE naming the new change", async () => {
    const { ws, planFile } = await reviewedWorkspace();
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("web", { redirect_uris: ["https://web.example.com/v2/callback"] }),
      confidential("api"),
      confidential("jobs"),
      confidential("mail"),
    ]);
    const { value: result, delta } = await measure(ws.emu, () => ws.run("apply", ["--plan", planFile]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("[E_PLAN_STALE]");
    expect(result.stderr).toContain(`create ${ACCOUNT_A}/mail: newly planned`);
    expect(writesOf(delta)).toEqual({});
  });

  it("a plan file edited after it was saved: E_PLAN_TAMPERED, exit 1, no write", async () => {
    const { ws, planFile } = await reviewedWorkspace();
    const plan = JSON.parse(await readFile(planFile, "utf8")) as Plan;
    const create = plan.changes.find((c) => c.kind === "create");
    if (create?.kind !== "create") throw new Error("the reviewed plan has no create");
    create.body.redirect_uris = ["https://attacker.example.net/callback"];
    await writeFile(planFile, JSON.stringify(plan, null, 2));

    const { value: result, delta } = await measure(ws.emu, () => ws.run("apply", ["--plan", planFile]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("error [E_PLAN_TAMPERED]");
    expect(result.stderr).toContain(`it records ${plan.checksum}`);
    expect(writesOf(delta)).toEqual({});
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["api", "web"]);
  });

  it("a file that is not a plan: exit 1 before any API call", async () => {
    const { ws, planFile } = await reviewedWorkspace();
    await writeFile(planFile, "{ not json");
    const { value: result, delta } = await measure(ws.emu, () => ws.run("apply", ["--plan", planFile]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("[E_PLAN_READ]");
    expect(delta.total).toBe(0);
  });

  it("a plan saved in an older format (version 1): E_PLAN_VERSION, exit 1 before any API call", async () => {
    const { ws, planFile } = await reviewedWorkspace();
    const plan = JSON.parse(await readFile(planFile, "utf8")) as Record<string, unknown>;
    // Version 1 rotation items said `phase: rotate | delete-old` and had no actions.
    plan["version"] = 1;
    plan["rotations"] = [
      {
        account_id: ACCOUNT_A,
        client_id: "x",
        client_name: "web",
        due_at: "2025-01-01T00:00:00Z",
        phase: "rotate",
      },
    ];
    await writeFile(planFile, JSON.stringify(plan, null, 2));
    const { value: result, delta } = await measure(ws.emu, () => ws.run("apply", ["--plan", planFile]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `[E_PLAN_VERSION]: ${planFile}: a version 1 plan; this build reads version 2`,
    );
    expect(result.stderr).toContain("run plan again");
    expect(delta.total).toBe(0);
  });

  it("the real program refuses a stale plan with exit 1", async () => {
    const { ws, planFile } = await reviewedWorkspace();
    const web = (await liveClients(ws.emu, ACCOUNT_A)).find((c) => c.client_name === "web")!;
    await patchDirect(ws.emu, ACCOUNT_A, web.client_id, { logo_uri: "https://web.example.com/logo.png" });
    const { value: result, delta } = await measure(ws.emu, () => ws.runChild("apply", ["--plan", planFile]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("[E_PLAN_STALE]");
    expect(writesOf(delta)).toEqual({});
  });
});

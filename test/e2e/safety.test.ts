import { describe, expect, it } from "vitest";
import type { Plan } from "../../src/core/plan-types.js";
import { ACCOUNT_A, startTestEmulator } from "../helpers/emulator.js";
import {
  DELETE_ROUTE,
  PATCH_ROUTE,
  confidential,
  createDirect,
  liveClients,
  makeWorkspace,
  measure,
  names,
  type ConfigOptions,
  type Workspace,
} from "./support.js";

/**
 * Safety valves end to end (README, "Ownership, prune and safety valves"): a refused plan exits 3 with
 * the numbers in the message and applies nothing; `--force` applies it; the percentage valve only
 * counts once an account has `min_clients_for_percent` clients, and counts creates as well as updates
 * and deletes; an empty desired set never deletes unless `allow_empty`.
 */

const FOUR = ["a", "b", "c", "d"];

/** Four owned clients a..d, applied with `options`. */
async function fourOwned(options: ConfigOptions): Promise<Workspace> {
  const emu = await startTestEmulator();
  const ws = await makeWorkspace(emu, options);
  await ws.writeDesired(
    "apps.yaml",
    ACCOUNT_A,
    FOUR.map((n) => confidential(n)),
  );
  const first = await ws.run("apply");
  expect(first.code, first.stderr).toBe(0);
  return ws;
}

/** Every name redirected to a v2 callback when listed in `changed`. */
function withChanged(changed: string[]): Record<string, unknown>[] {
  return FOUR.map((n) =>
    confidential(n, changed.includes(n) ? { redirect_uris: [`https://${n}.example.com/v2/callback`] } : {}),
  );
}

describe("max_deletes", () => {
  it("exceeded: exit 3 with the numbers, nothing deleted; --force deletes", async () => {
    const ws = await fourOwned({ prune: "owned", safety: { max_deletes: 2 } });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("a")]);

    const plan = await ws.planJson(3);
    expect(plan.safety).toEqual({
      ok: false,
      violations: [
        {
          rule: "max-deletes",
          message: "3 clients would be deleted in this run; the limit is 2; use --force to apply anyway",
          count: 3,
          limit: 2,
          overridden: false,
        },
      ],
    });
    const { value: refused, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("3 clients would be deleted in this run; the limit is 2");
    expect(delta.by_route[DELETE_ROUTE]).toBeUndefined();
    expect(delta.by_method).toEqual({ GET: 1 });
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(FOUR);

    const forced = await ws.run("apply", ["--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain("Apply: 3 applied, 0 failed.");
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["a"]);
    expect((await ws.owned(ACCOUNT_A)).map((e) => e.client_name)).toEqual(["a"]);
  });

  it("at the limit: applies without --force", async () => {
    const ws = await fourOwned({ prune: "owned", safety: { max_deletes: 2 } });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("a"), confidential("b")]);
    const result = await ws.run("apply");
    expect(result.code, result.stderr).toBe(0);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(["a", "b"]);
  });
});

describe("max_change_percent and min_clients_for_percent", () => {
  it("3 of 4 changed against a 50% limit: exit 3 with the numbers; --force patches", async () => {
    const ws = await fourOwned({ safety: { max_change_percent: 50, min_clients_for_percent: 4 } });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, withChanged(["a", "b", "c"]));
    const plan = await ws.planJson(3);
    expect(plan.safety.violations).toEqual([
      {
        rule: "max-change-percent",
        account_id: ACCOUNT_A,
        message:
          "account 01234567…: 3 of 4 clients (75%) would change; the limit is 50% once an account has 4 or more; use --force to apply anyway",
        count: 3,
        limit: 50,
        overridden: false,
      },
    ]);
    const { value: refused, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("3 of 4 clients (75%) would change; the limit is 50%");
    expect(delta.by_route[PATCH_ROUTE]).toBeUndefined();

    const forced = await measure(ws.emu, () => ws.run("apply", ["--force"]));
    expect(forced.value.code).toBe(0);
    expect(forced.delta.by_route[PATCH_ROUTE]).toBe(3);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
  });

  it("the same change in an account below min_clients_for_percent is not limited", async () => {
    const ws = await fourOwned({ safety: { max_change_percent: 50, min_clients_for_percent: 5 } });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, withChanged(["a", "b", "c"]));
    const plan = await ws.planJson(0);
    expect(plan.safety).toEqual({ ok: true, violations: [] });
    expect(plan.summary.update).toBe(3);
    const { value, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(value.code, value.stderr).toBe(0);
    expect(delta.by_route[PATCH_ROUTE]).toBe(3);
  });

  it("exactly at the percentage (2 of 4 at 50%) applies", async () => {
    const ws = await fourOwned({ safety: { max_change_percent: 50, min_clients_for_percent: 4 } });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, withChanged(["a", "b"]));
    expect((await ws.run("apply")).code).toBe(0);
  });

  it("creates, updates and deletes all count toward the percentage", async () => {
    const ws = await fourOwned({
      prune: "owned",
      safety: { max_change_percent: 100, min_clients_for_percent: 4, max_deletes: 10 },
    });
    // One update, one delete and three creates against four live clients: 125% > 100%.
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      ...withChanged(["a"]).filter((c) => c["client_name"] !== "d"),
      confidential("e"),
      confidential("f"),
      confidential("g"),
    ]);
    const plan: Plan = await ws.planJson(3);
    expect(plan.summary).toMatchObject({ create: 3, update: 1, delete: 1 });
    expect(plan.safety.violations).toEqual([
      expect.objectContaining({
        rule: "max-change-percent",
        count: 5,
        message: expect.stringContaining(
          "5 changes (3 to create, 1 to update, 1 to delete) against 4 live clients (125%); the limit is 100%",
        ),
      }),
    ]);
    const { value, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(value.code).toBe(3);
    expect(Object.keys(delta.by_method)).toEqual(["GET"]);
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(FOUR);
  });
});

describe("empty desired set", () => {
  it("an emptied file never prunes owned clients unless allow_empty", async () => {
    const ws = await fourOwned({ prune: "owned", safety: { max_deletes: 10 } });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, []);
    const plan = await ws.planJson(3);
    expect(plan.safety.violations).toEqual([
      expect.objectContaining({
        rule: "empty-desired",
        count: 4,
        message: expect.stringContaining(
          "the desired set is empty (no present clients) and 4 clients would be pruned; set safety.allow_empty",
        ),
      }),
    ]);
    const { value, delta } = await measure(ws.emu, () => ws.run("apply"));
    expect(value.code).toBe(3);
    expect(delta.by_route[DELETE_ROUTE]).toBeUndefined();
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(FOUR);

    // The file deleted altogether: the same refusal (the inventory keeps the account in scope).
    await ws.removeDesired("apps.yaml");
    await ws.writeDesired("other.yaml", "fedcba9876543210fedcba9876543210", [confidential("elsewhere")]);
    const gone = await ws.run("apply");
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain("the desired set is empty");
    expect(names(await liveClients(ws.emu, ACCOUNT_A))).toEqual(FOUR);

    await ws.writeConfig({ prune: "owned", safety: { max_deletes: 10, allow_empty: true } });
    const allowed = await ws.run("apply");
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(await liveClients(ws.emu, ACCOUNT_A)).toEqual([]);
  });

  it("an ensure: absent entry is not an empty-set prune: it deletes without allow_empty", async () => {
    const ws = await fourOwned({ prune: "owned", safety: { max_deletes: 10 } });
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [{ client_name: "a", ensure: "absent" }]);
    const plan = await ws.planJson(3);
    // b, c, d are pruned by the empty set (refused); a alone would have been fine.
    expect(plan.safety.violations.map((v) => [v.rule, v.count])).toEqual([["empty-desired", 3]]);
  });

  // A document with `clients: []` puts its account in scope: an explicitly emptied account is pruned
  // under `prune: all`, but only with allow_empty.
  it("prune: all and `clients: []`: refused without allow_empty, pruned with it", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu, { prune: "all", safety: { max_deletes: 10 } });
    await createDirect(emu, ACCOUNT_A, confidential("dashboard-made"));
    await ws.writeDesired("apps.yaml", ACCOUNT_A, []);
    const plan = await ws.planJson(3);
    expect(plan.safety.violations.map((v) => v.rule)).toEqual(["empty-desired"]);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(["dashboard-made"]);
    await ws.writeConfig({ prune: "all", safety: { max_deletes: 10, allow_empty: true } });
    expect((await ws.run("apply")).code).toBe(0);
    expect(await liveClients(emu, ACCOUNT_A)).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import { evaluateSafety, type AccountTally } from "../../src/core/safety.js";
import { ACCOUNT_A, ACCOUNT_B, absent, desired, id, live, owned, planOf, policy } from "./fixtures.js";

/** `n` live clients named c0..c(n-1), all owned. */
function fleet(n: number, account = ACCOUNT_A): { clients: LiveClient[]; inv: ReturnType<typeof owned>[] } {
  const clients = Array.from({ length: n }, (_, i) =>
    live(id(`${account.slice(0, 1)}c${i}x`), { client_name: `c${i}` }),
  );
  return { clients, inv: clients.map((c) => owned(c.client_id, c.client_name!)) };
}

/** One account's tally: zero everywhere but `fields`. */
function tally(fields: Partial<AccountTally>): AccountTally {
  return {
    account_id: ACCOUNT_A,
    live: 0,
    creates: 0,
    updates: 0,
    deletes: 0,
    prune_deletes: 0,
    present: 0,
    owned: 0,
    vanished: 0,
    ...fields,
  };
}

describe("safety valves", () => {
  it("max-change-percent: the message carries the numbers", () => {
    const { clients, inv } = fleet(20);
    // 12 of 20 change: 8 kept unchanged, 4 updated (tos_uri), 8 pruned.
    const entries = clients
      .slice(0, 12)
      .map((c, i) => desired(c.client_name!, i < 4 ? { tos_uri: "https://t" } : {}));
    const plan = planOf({
      desired: entries,
      live: { [ACCOUNT_A]: clients },
      inventory: { [ACCOUNT_A]: inv },
      policy: policy({ prune: "owned", safety: { max_change_percent: 30, min_clients_for_percent: 10 } }),
    });
    expect(plan.summary).toMatchObject({ update: 4, delete: 8 });
    expect(plan.safety).toEqual({
      ok: false,
      violations: [
        {
          rule: "max-change-percent",
          account_id: ACCOUNT_A,
          count: 12,
          limit: 30,
          overridden: false,
          message:
            "account aaaaaaaa…: 12 of 20 clients (60%) would change; the limit is 30% once an account has 10 or more; use --force to apply anyway",
        },
      ],
    });
  });

  it("max-change-percent does not apply below min_clients_for_percent, nor at exactly the limit", () => {
    const { clients, inv } = fleet(9);
    const few = planOf({
      desired: [],
      emptyAccounts: [ACCOUNT_A],
      live: { [ACCOUNT_A]: clients },
      inventory: { [ACCOUNT_A]: inv },
      policy: policy({ prune: "owned", safety: { max_change_percent: 10, allow_empty: true } }),
    });
    expect(few.safety).toEqual({ ok: true, violations: [] });
    const verdict = evaluateSafety(
      [tally({ live: 10, updates: 3, present: 10 })],
      { max_deletes: 5, max_change_percent: 30, min_clients_for_percent: 10, allow_empty: false },
      false,
    );
    expect(verdict.ok).toBe(true);
  });

  it("shows a decimal when rounding would hide the excess", () => {
    const verdict = evaluateSafety(
      [tally({ live: 23, updates: 7, present: 23 })],
      { max_deletes: 5, max_change_percent: 30, min_clients_for_percent: 10, allow_empty: false },
      false,
    );
    expect(verdict.violations[0]?.message).toContain("7 of 23 clients (30.4%)");
  });

  it("max-deletes counts deletes across accounts", () => {
    const a = fleet(3, ACCOUNT_A);
    const b = fleet(2, ACCOUNT_B);
    const plan = planOf({
      desired: [desired("keep-a"), desired("keep-b", {}, { account_id: ACCOUNT_B })],
      live: { [ACCOUNT_A]: a.clients, [ACCOUNT_B]: b.clients },
      inventory: { [ACCOUNT_A]: a.inv, [ACCOUNT_B]: b.inv },
      policy: policy({ prune: "owned", safety: { max_deletes: 4 } }),
    });
    expect(plan.safety.violations).toEqual([
      {
        rule: "max-deletes",
        count: 5,
        limit: 4,
        overridden: false,
        message: "5 clients would be deleted in this run; the limit is 4; use --force to apply anyway",
      },
    ]);
    expect(plan.safety.ok).toBe(false);
  });

  it("an empty desired set never prunes unless allow_empty", () => {
    const { clients, inv } = fleet(2);
    const scenario = {
      desired: [],
      emptyAccounts: [ACCOUNT_A],
      live: { [ACCOUNT_A]: clients },
      inventory: { [ACCOUNT_A]: inv },
    };
    const refused = planOf({ ...scenario, policy: policy({ prune: "owned" }) });
    expect(refused.safety.ok).toBe(false);
    expect(refused.safety.violations).toEqual([
      expect.objectContaining({
        rule: "empty-desired",
        account_id: ACCOUNT_A,
        count: 2,
        limit: 0,
        message:
          "account aaaaaaaa…: the desired set is empty (no present clients) and 2 clients would be pruned; set safety.allow_empty to allow it, or use --force to apply anyway",
      }),
    ]);
    const allowed = planOf({
      ...scenario,
      policy: policy({ prune: "owned", safety: { allow_empty: true } }),
    });
    expect(allowed.safety).toEqual({ ok: true, violations: [] });
  });

  it("explicit ensure: absent deletes do not trip the empty-desired valve", () => {
    const { clients, inv } = fleet(1);
    const plan = planOf({
      desired: [absent("c0")],
      live: { [ACCOUNT_A]: clients },
      inventory: { [ACCOUNT_A]: inv },
      policy: policy({ prune: "owned" }),
    });
    expect(plan.summary.delete).toBe(1);
    expect(plan.safety).toEqual({ ok: true, violations: [] });
  });

  it("force lets the plan through and keeps the violations, marked overridden", () => {
    const { clients, inv } = fleet(3);
    const plan = planOf({
      desired: [],
      emptyAccounts: [ACCOUNT_A],
      live: { [ACCOUNT_A]: clients },
      inventory: { [ACCOUNT_A]: inv },
      policy: policy({ prune: "owned", safety: { max_deletes: 1 } }),
      force: true,
    });
    expect(plan.safety.ok).toBe(true);
    expect(plan.safety.violations.map((v) => [v.rule, v.overridden])).toEqual([
      ["max-deletes", true],
      ["empty-desired", true],
    ]);
  });

  it("max-change-percent counts creates too, and says so", () => {
    const { clients, inv } = fleet(10);
    const plan = planOf({
      desired: [
        ...clients.map((c) => desired(c.client_name!)),
        desired("new-1"),
        desired("new-2"),
        desired("new-3"),
        desired("new-4"),
      ],
      live: { [ACCOUNT_A]: clients },
      inventory: { [ACCOUNT_A]: inv },
      policy: policy({ safety: { max_change_percent: 30, min_clients_for_percent: 10 } }),
    });
    expect(plan.summary).toMatchObject({ create: 4, update: 0, delete: 0 });
    expect(plan.safety.violations).toEqual([
      {
        rule: "max-change-percent",
        account_id: ACCOUNT_A,
        count: 4,
        limit: 30,
        overridden: false,
        message:
          "account aaaaaaaa…: 4 changes (4 to create, 0 to update, 0 to delete) against 10 live clients (40%); the limit is 30% once an account has 10 or more; use --force to apply anyway",
      },
    ]);
    // Three creates (30%) are at the limit, not over it.
    expect(evaluateSafety([tally({ live: 10, creates: 3 })], policy().safety, false).ok).toBe(true);
  });

  it("owned-vanished: most owned clients confirmed gone at once is refused, whatever min_clients_for_percent", () => {
    const { clients, inv } = fleet(3);
    // The inventory owns three; only one is still live: two are gone (the plan's stale entries).
    const plan = planOf({
      desired: clients.map((c) => desired(c.client_name!)),
      live: { [ACCOUNT_A]: clients.slice(0, 1) },
      inventory: { [ACCOUNT_A]: inv },
      policy: policy({ safety: { min_clients_for_percent: 100 } }),
    });
    expect(plan.stale_inventory.map((s) => s.client_name)).toEqual(["c1", "c2"]);
    expect(plan.safety).toEqual({
      ok: false,
      violations: [
        {
          rule: "owned-vanished",
          account_id: ACCOUNT_A,
          count: 2,
          limit: 50,
          overridden: false,
          message:
            "account aaaaaaaa…: 2 of the 3 clients this tool owns (66.7%) are gone (a GET of each answered 404); more than 50% vanishing at once is refused, so check the account and the credentials, then use --force to forget them (and re-create what the desired state still names)",
        },
      ],
    });
    const forced = evaluateSafety([tally({ owned: 3, vanished: 2 })], policy().safety, true);
    expect(forced).toMatchObject({ ok: true, violations: [{ rule: "owned-vanished", overridden: true }] });
  });

  it("owned-vanished: half or fewer gone, or nothing owned, passes", () => {
    const safety = policy().safety;
    expect(evaluateSafety([tally({ owned: 4, vanished: 2 })], safety, false).ok).toBe(true);
    expect(evaluateSafety([tally({ owned: 0, vanished: 0 })], safety, false).ok).toBe(true);
    expect(evaluateSafety([tally({ owned: 1, vanished: 1 })], safety, false).violations).toEqual([
      expect.objectContaining({ rule: "owned-vanished", count: 1 }),
    ]);
  });
});

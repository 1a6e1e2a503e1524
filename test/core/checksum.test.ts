import { describe, expect, it } from "vitest";
import { GitOpsError } from "../../src/errors.js";
import { canonicalJson, checksumOf, verifyPlanFresh } from "../../src/core/checksum.js";
import { parsePlan } from "../../src/core/plan-schema.js";
import { ACCOUNT_A, desired, id, live, owned, planOf, policy, type Scenario } from "./fixtures.js";

const scenario = (updatedAt: string): Scenario => ({
  desired: [desired("upd", { tos_uri: "https://t" }), desired("new")],
  live: {
    [ACCOUNT_A]: [
      live(id("u"), { client_name: "upd" }, { updated_at: updatedAt }),
      live(id("d"), { client_name: "del" }, { updated_at: "2025-01-01T00:00:00Z" }),
    ],
  },
  inventory: { [ACCOUNT_A]: [owned(id("u"), "upd"), owned(id("d"), "del")] },
  policy: policy({ prune: "owned" }),
});

describe("plan checksum", () => {
  it("is sha256 over the canonical changes and stable across runs", () => {
    const plan = planOf(scenario("2025-02-01T00:00:00Z"));
    expect(plan.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(checksumOf(plan)).toBe(plan.checksum);
    expect(planOf(scenario("2025-02-01T00:00:00Z")).checksum).toBe(plan.checksum);
  });

  it("changes when a touched client's updated_at changes", () => {
    const before = planOf(scenario("2025-02-01T00:00:00Z"));
    const after = planOf(scenario("2025-02-02T00:00:00Z"));
    expect(after.changes.map((c) => c.kind)).toEqual(before.changes.map((c) => c.kind));
    expect(after.checksum).not.toBe(before.checksum);
  });

  it("ignores source locations (a comment added to a file)", () => {
    const a = planOf(scenario("2025-02-01T00:00:00Z"));
    const b = planOf(scenario("2025-02-01T00:00:00Z"));
    expect(a.changes[0]!.kind === "create" && b.changes[0]!.kind === "create").toBe(true);
    expect(a.changes[0]).not.toEqual(b.changes[0]); // different fixture line numbers
    expect(a.checksum).toBe(b.checksum);
  });

  it("canonicalJson sorts keys at every level and drops undefined", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined, x: null }], c: "s" } })).toBe(
      '{"a":{"c":"s","d":[2,{"x":null,"z":1}]},"b":1}',
    );
  });
});

describe("verifyPlanFresh", () => {
  it("accepts an unchanged world", () => {
    const saved = planOf(scenario("2025-02-01T00:00:00Z"));
    const now = planOf(scenario("2025-02-01T00:00:00Z"));
    expect(verifyPlanFresh(saved, now)).toEqual({ fresh: true });
  });

  it("refuses a plan whose touched client changed since, and says which", () => {
    const saved = planOf(scenario("2025-02-01T00:00:00Z"));
    const now = planOf(scenario("2025-03-01T00:00:00Z"));
    const verdict = verifyPlanFresh(saved, now);
    expect(verdict.fresh).toBe(false);
    if (verdict.fresh) return;
    expect(verdict.code).toBe("E_PLAN_STALE");
    expect(verdict.differences).toEqual([
      `update ${ACCOUNT_A}/upd: live updated_at 2025-02-01T00:00:00Z -> 2025-03-01T00:00:00Z`,
    ]);
  });

  it("refuses a saved plan edited after it was written", () => {
    const saved = planOf(scenario("2025-02-01T00:00:00Z"));
    const edited = structuredClone(saved);
    const del = edited.changes.find((c) => c.kind === "delete")!;
    del.client_id = id("someone-else");
    const verdict = verifyPlanFresh(edited, saved);
    expect(verdict).toMatchObject({ fresh: false, code: "E_PLAN_TAMPERED" });
  });

  it("round-trips through JSON and parsePlan, still fresh", () => {
    const saved = planOf(scenario("2025-02-01T00:00:00Z"));
    const reloaded = parsePlan(JSON.parse(JSON.stringify(saved)), "plan.json");
    expect(reloaded).toEqual(saved);
    expect(verifyPlanFresh(reloaded, planOf(scenario("2025-02-01T00:00:00Z")))).toEqual({ fresh: true });
  });

  it("parsePlan names the bad path", () => {
    const saved = planOf(scenario("2025-02-01T00:00:00Z"));
    const broken = JSON.parse(JSON.stringify(saved)) as Record<string, unknown>;
    broken["rotations"] = [{ stage: "later", account_id: ACCOUNT_A }];
    expect(() => parsePlan(broken, "plan.json")).toThrow(GitOpsError);
    try {
      parsePlan(broken, "plan.json");
    } catch (error) {
      expect((error as GitOpsError).code).toBe("E_PLAN_INVALID");
      expect((error as GitOpsError).message).toContain(
        "plan.json: not a valid version 2 plan: rotations.0.stage",
      );
    }
  });

  it("parsePlan refuses a plan of another format version, naming both", () => {
    const saved = planOf(scenario("2025-02-01T00:00:00Z"));
    // A version 1 plan: its rotation items had `phase: rotate | delete-old` and no actions.
    const v1 = {
      ...JSON.parse(JSON.stringify(saved)),
      version: 1,
      rotations: [
        {
          account_id: ACCOUNT_A,
          client_id: "x",
          client_name: "a",
          due_at: "2025-01-01T00:00:00Z",
          phase: "rotate",
        },
      ],
    };
    expect(() => parsePlan(v1, "plan.json")).toThrow(GitOpsError);
    try {
      parsePlan(v1, "plan.json");
    } catch (error) {
      expect((error as GitOpsError).code).toBe("E_PLAN_VERSION");
      expect((error as GitOpsError).message).toBe(
        "plan.json: a version 1 plan; this build reads version 2 plans only: run plan again with this build and review that plan",
      );
    }
  });
});

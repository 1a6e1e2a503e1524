import { describe, expect, it } from "vitest";
import { deferDeletes, deferredDeleteKey } from "../../src/core/deferred-deletes.js";
import type { DeleteChange } from "../../src/core/plan-types.js";
import { ACCOUNT_A, ACCOUNT_B, id } from "./fixtures.js";

function del(name: string, account = ACCOUNT_A): DeleteChange {
  return {
    kind: "delete",
    account_id: account,
    client_id: id(name),
    client_name: name,
    updated_at: null,
    reason: "prune-owned",
  };
}

const DELAY = 60_000;
const T0 = Date.UTC(2026, 0, 1);

describe("deferDeletes", () => {
  const cases: {
    name: string;
    deletes: DeleteChange[];
    seen: [DeleteChange, number][];
    now: number;
    delay?: number;
    eligible: string[];
    held: [string, number][];
  }[] = [
    {
      name: "a delete seen for the first time waits the whole delay",
      deletes: [del("a")],
      seen: [],
      now: T0,
      eligible: [],
      held: [["a", T0 + DELAY]],
    },
    {
      name: "one millisecond short of the delay still waits",
      deletes: [del("a")],
      seen: [[del("a"), T0]],
      now: T0 + DELAY - 1,
      eligible: [],
      held: [["a", T0 + DELAY]],
    },
    {
      name: "absent for exactly the delay goes ahead",
      deletes: [del("a")],
      seen: [[del("a"), T0]],
      now: T0 + DELAY,
      eligible: ["a"],
      held: [],
    },
    {
      name: "each client keeps its own clock; held ones soonest first",
      deletes: [del("new"), del("old"), del("mid")],
      seen: [
        [del("old"), T0 - DELAY],
        [del("mid"), T0 - 10_000],
      ],
      now: T0,
      eligible: ["old"],
      held: [
        ["mid", T0 - 10_000 + DELAY],
        ["new", T0 + DELAY],
      ],
    },
    {
      name: "a client back in the desired state (not planned) drops out of the map",
      deletes: [del("still-gone")],
      seen: [
        [del("still-gone"), T0 - 1_000],
        [del("came-back"), T0 - 1_000],
      ],
      now: T0,
      eligible: [],
      held: [["still-gone", T0 - 1_000 + DELAY]],
    },
    {
      name: "the same name in another account is another client",
      deletes: [del("a", ACCOUNT_B)],
      seen: [[del("a", ACCOUNT_A), T0 - DELAY]],
      now: T0,
      eligible: [],
      held: [["a", T0 + DELAY]],
    },
    {
      name: "a delay of 0 deletes at once",
      deletes: [del("a")],
      seen: [],
      now: T0,
      delay: 0,
      eligible: ["a"],
      held: [],
    },
    {
      name: "no deletes: nothing held, the map empties",
      deletes: [],
      seen: [[del("a"), T0]],
      now: T0,
      eligible: [],
      held: [],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const decision = deferDeletes({
        deletes: c.deletes,
        absentSince: new Map(c.seen.map(([change, at]) => [deferredDeleteKey(change), at])),
        nowMs: c.now,
        delayMs: c.delay ?? DELAY,
      });
      expect(decision.eligible.map((d) => d.client_name)).toEqual(c.eligible);
      expect(decision.held.map((h) => [h.change.client_name, h.eligibleAtMs])).toEqual(c.held);
      expect(decision.nextEligibleAtMs).toBe(c.held[0]?.[1] ?? null);
      expect([...decision.absentSince.keys()]).toEqual(c.deletes.map(deferredDeleteKey));
      for (const h of decision.held) expect(h.eligibleAtMs - h.absentSinceMs).toBe(c.delay ?? DELAY);
    });
  }

  it("does not change the map it was given", () => {
    const seen = new Map([[deferredDeleteKey(del("gone")), T0]]);
    deferDeletes({ deletes: [del("a")], absentSince: seen, nowMs: T0, delayMs: DELAY });
    expect([...seen.keys()]).toEqual([deferredDeleteKey(del("gone"))]);
  });
});

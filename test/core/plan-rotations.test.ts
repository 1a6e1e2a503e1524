import { describe, expect, it } from "vitest";
import { computePlanRotations } from "../../src/core/plan-rotations.js";
import type { RotationItem } from "../../src/core/plan-types.js";
import { planSecrets } from "../../src/core/rotation-plan.js";
import {
  ACC,
  DAY,
  entry,
  ID,
  NOW,
  ago,
  later,
  situationInput as input,
  type Situation,
} from "../helpers/secret-situations.js";

/**
 * The plan's rotation section, by table: for each situation a client's secret can be in, the item the
 * plan shows, which is the operation the next `rotate` (mode auto) carries out, with the client's
 * phase, when the work fell due, the action kinds, the end of the grace a wait keeps, and for a
 * blocked client the code and the way out.
 */

const ref = { account_id: ACC, client_id: ID, client_name: "app" };

const TABLE: [string, Situation, RotationItem[]][] = [
  ["idle: nothing", { entries: [entry({})], issued: ago(2 * DAY) }, []],
  [
    "due: a scheduled rotation that ends waiting out the grace",
    { entries: [entry({ published_at: ago(11 * DAY) })], issued: ago(11 * DAY) },
    [
      {
        stage: "act",
        ...ref,
        phase: "due",
        due_at: ago(DAY),
        actions: ["start", "mint", "publish", "wait"],
        wait_until: later(DAY),
      },
    ],
  ],
  [
    "no-secret: a known secret is minted, due now; nothing to keep",
    {
      entries: [entry({ op: "create", reason: "create", created_by_tool: true, published_at: null })],
      issued: null,
    },
    [
      {
        stage: "act",
        ...ref,
        phase: "no-secret",
        due_at: NOW.toISOString(),
        actions: ["start", "mint", "publish", "delete-old-secret"],
      },
    ],
  ],
  [
    "grace running: rotate does nothing yet, so the plan shows nothing",
    { entries: [entry({ step: "published", published_at: ago(3600) })], issued: ago(3600) },
    [],
  ],
  [
    "delete-due: the resume deletes the old secret, due since the grace ended",
    {
      entries: [entry({ step: "published", published_at: ago(2 * DAY) })],
      live: { has_rotated_secret: true },
      issued: ago(2 * DAY),
    },
    [{ stage: "resume", ...ref, phase: "delete-due", due_at: ago(DAY), actions: ["delete-old-secret"] }],
  ],
  [
    "unpublished: the minted secret is published first, then the grace runs",
    {
      entries: [entry({ step: "minted", published_at: null, minted_at: ago(60) })],
      live: { has_rotated_secret: true },
      issued: ago(11 * DAY),
    },
    [
      {
        stage: "resume",
        ...ref,
        phase: "unpublished",
        due_at: null,
        actions: ["publish", "wait"],
        wait_until: later(DAY),
      },
    ],
  ],
  [
    "secret-lost: reported with its code and the way out, nothing done",
    {
      entries: [entry({ step: "intent", blocked: "secret-lost", minted_at: null, published_at: null })],
      live: { has_rotated_secret: true },
      issued: ago(DAY),
    },
    [
      {
        stage: "resume",
        ...ref,
        phase: "secret-lost",
        due_at: null,
        actions: ["blocked"],
        blocked: {
          status: "attention",
          code: "E_ROTATION_SECRET_LOST",
          reason: expect.stringContaining("rotate --recover --client app") as unknown as string,
        },
      },
    ],
  ],
  [
    "an interrupted rotate_secret whose answer was lost: in progress, found lost by the resume",
    {
      entries: [entry({ step: "intent", minted_at: null, published_at: null })],
      live: { has_rotated_secret: true },
      issued: ago(11 * DAY),
    },
    [
      {
        stage: "resume",
        ...ref,
        phase: "in-progress",
        due_at: null,
        actions: ["blocked"],
        blocked: {
          status: "attention",
          code: "E_ROTATION_SECRET_LOST",
          reason: expect.stringContaining("never reached the journal") as unknown as string,
        },
      },
    ],
  ],
  [
    "unknown-rotated: reported for an operator",
    { live: { has_rotated_secret: true }, issued: ago(DAY) },
    [
      {
        stage: "act",
        ...ref,
        phase: "unknown-rotated",
        due_at: null,
        actions: ["blocked"],
        blocked: {
          status: "attention",
          code: "E_UNKNOWN_ROTATED_SECRET",
          reason: expect.stringContaining("rotate --recover --client app") as unknown as string,
        },
      },
    ],
  ],
  [
    "a create's entry closed by the resume, then the secret it left is due: each item has its own phase",
    {
      entries: [
        entry({ op: "create", reason: "create", step: "published", delete_old: "none", unused: true }),
      ],
      issued: ago(11 * DAY),
    },
    [
      { stage: "resume", ...ref, phase: "in-progress", due_at: null, actions: ["close"] },
      {
        stage: "act",
        ...ref,
        phase: "due",
        due_at: ago(DAY),
        actions: ["start", "mint", "publish", "wait"],
        wait_until: later(DAY),
      },
    ],
  ],
  [
    "an interrupted create: no client id and no phase yet",
    {
      entries: [
        entry({
          op: "create",
          reason: "create",
          step: "intent",
          client_id: null,
          delete_old: "none",
          unused: true,
          created_by_tool: true,
          minted_at: null,
          published_at: null,
        }),
      ],
      owned: false,
    },
    [
      {
        stage: "resume",
        account_id: ACC,
        client_id: null,
        client_name: "app",
        phase: null,
        due_at: null,
        actions: ["find-created", "mint", "publish", "delete-old-secret"],
      },
    ],
  ],
];

describe("computePlanRotations: the plan's rotation section", () => {
  for (const [name, situation, expected] of TABLE) {
    it(name, () => {
      expect(computePlanRotations(input(situation))).toEqual(expected);
    });
  }

  it("lists exactly the operations and actions of the planner's auto mode, in its order", () => {
    for (const [, situation] of TABLE) {
      const items = computePlanRotations(input(situation));
      const ops = planSecrets({ ...input(situation), mode: "auto", clients: [] }).ops;
      expect(items.map((i) => [i.stage, i.client_name, i.actions])).toEqual(
        ops.map((op) => [op.stage, op.client_name, op.actions.map((a) => a.kind)]),
      );
    }
  });
});

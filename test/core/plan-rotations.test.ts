import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/cloudflare/schemas.js";
import type { DesiredClient, DesiredState, Inventory } from "../../src/core/model.js";
import { computePlanRotations } from "../../src/core/plan-rotations.js";
import type { RotationItem } from "../../src/core/plan-types.js";
import { clientKey } from "../../src/core/rotation.js";
import { type JournalRecord, planSecrets } from "../../src/core/rotation-plan.js";

/**
 * The plan's rotation section, by table: for each situation a client's secret can be in, the item the
 * plan shows, which is the operation the next `rotate` (mode auto) carries out, with the client's
 * phase, when the work fell due, the action kinds, the end of the grace a wait keeps, and for a
 * blocked client the code and the way out.
 */

const ACC = "0123456789abcdef0123456789abcdef";
const DAY = 86_400;
const NOW = new Date("2026-03-01T00:00:00.000Z");
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString();
const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();
const ID = "id-app";

function desiredEntry(): DesiredClient {
  return {
    account_id: ACC,
    ensure: "present",
    client_name: "app",
    fields: { client_name: "app", token_endpoint_auth_method: "client_secret_basic" },
    visibility: "private",
    secret: { sink: "default", key: "app" },
    rotation: { every: 10 * DAY, grace: DAY },
    source: { file: "clients.yaml", line: 1, col: 1, path: "clients[0]" },
  };
}

function entry(fields: Partial<JournalRecord>): JournalRecord {
  return {
    id: "e1",
    op: "rotate",
    reason: "scheduled",
    step: "done",
    account_id: ACC,
    client_name: "app",
    client_id: ID,
    target: { sink: "default", key: "app" },
    delete_old: "after-grace",
    grace_seconds: DAY,
    unused: false,
    created_by_tool: false,
    existing_client_ids: [],
    minted_at: ago(2 * DAY),
    published_at: ago(2 * DAY),
    blocked: null,
    ...fields,
  };
}

interface Situation {
  entries?: JournalRecord[];
  live?: Partial<LiveClient> | null;
  issued?: string | null;
  owned?: boolean;
}

function input(s: Situation) {
  const inventory: Inventory = {
    accounts: {
      [ACC]:
        s.owned === false
          ? []
          : [{ client_id: ID, client_name: "app", origin: "created", since: ago(30 * DAY) }],
    },
  };
  const live = {
    client_id: ID,
    client_name: "app",
    visibility: "private",
    token_endpoint_auth_method: "client_secret_basic",
    has_rotated_secret: false,
    created_at: ago(30 * DAY),
    ...s.live,
  } as LiveClient;
  return {
    desired: { accounts: new Map([[ACC, [desiredEntry()]]]) } as unknown as DesiredState,
    live: new Map([[ACC, s.live === null ? [] : [live]]]),
    inventory,
    entries: s.entries ?? [],
    sinkIssuedAt: new Map(s.issued === undefined ? [] : [[clientKey(ACC, ID), s.issued]]),
    defaultPolicy: { every: 90 * DAY, grace: DAY },
    now: NOW,
  };
}

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

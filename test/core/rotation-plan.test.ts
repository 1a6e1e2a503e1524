import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { DesiredClient, DesiredState, Inventory } from "../../src/core/model.js";
import { clientKey } from "../../src/core/rotation.js";
import {
  compactEntries,
  type JournalRecord,
  planResume,
  planSecrets,
  type RotateMode,
  type SecretPlan,
} from "../../src/core/rotation-plan.js";

/**
 * Table tests of the secret planner: every mode against every phase a client can be in and every
 * journal step an entry can stand at. Each row is the whole plan of one run, written as
 * `stage:action,action,...` per operation, so a row reads as what `rotate --dry-run` prints.
 */

const ACC = "0123456789abcdef0123456789abcdef";
const DAY = 86_400;
const NOW = new Date("2026-03-01T00:00:00.000Z");
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString();
const ID = "id-app";
const KEY = clientKey(ACC, ID);
const MODES: RotateMode[] = ["auto", "now", "finish", "compromised", "recover"];

function desiredEntry(extra: Partial<DesiredClient> = {}): DesiredClient {
  return {
    account_id: ACC,
    ensure: "present",
    client_name: "app",
    fields: { client_name: "app", token_endpoint_auth_method: "client_secret_basic" },
    visibility: "private",
    secret: { sink: "default", key: "app" },
    rotation: { every: 10 * DAY, grace: DAY },
    source: { file: "clients.yaml", line: 1, col: 1, path: "clients[0]" },
    ...extra,
  };
}

function liveClient(extra: Partial<LiveClient> = {}): LiveClient {
  return {
    client_id: ID,
    client_name: "app",
    visibility: "private",
    token_endpoint_auth_method: "client_secret_basic",
    has_rotated_secret: false,
    created_at: ago(30 * DAY),
    ...extra,
  } as LiveClient;
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
  /** The sink record's `issued_at`; null: no record; undefined: not read. */
  issued?: string | null;
  owned?: boolean;
  desired?: Partial<DesiredClient>;
  clients?: string[];
}

function plan(mode: RotateMode, s: Situation): SecretPlan {
  const desired: DesiredState = {
    accounts: new Map([[ACC, [desiredEntry(s.desired)]]]),
  } as unknown as DesiredState;
  const inventory: Inventory = {
    accounts: {
      [ACC]:
        s.owned === false
          ? []
          : [{ client_id: ID, client_name: "app", origin: "created", since: ago(30 * DAY) }],
    },
  };
  return planSecrets({
    desired,
    live: new Map([[ACC, s.live === null ? [] : [liveClient(s.live ?? {})]]]),
    inventory,
    entries: s.entries ?? [],
    sinkIssuedAt: new Map(s.issued === undefined ? [] : [[KEY, s.issued]]),
    defaultPolicy: { every: 90 * DAY, grace: DAY },
    mode,
    clients: s.clients ?? [],
    now: NOW,
  });
}

/** `stage:kind,kind(detail)` per operation, `|` between operations; `-` for an empty plan. */
function render(p: SecretPlan): string {
  const ops = p.ops.map(
    (op) =>
      `${op.stage}:` +
      op.actions
        .map((a) => {
          switch (a.kind) {
            case "start":
              return `start(${a.reason},${a.delete_old}${a.unused ? ",unused" : ""}${a.replaces ? `,replaces ${a.replaces}` : ""})`;
            case "blocked":
              return `blocked(${a.status}${a.code ? `,${a.code}` : ""})`;
            case "delete-old-secret":
              return a.early ? "delete-old-secret(early)" : "delete-old-secret";
            case "mint":
              return a.clears_unknown ? "mint(clears-unknown)" : "mint";
            case "recover":
              return a.deletes_rotated ? "recover" : "recover(nothing-rotated)";
            default:
              return a.kind;
          }
        })
        .join(","),
  );
  return ops.length > 0 ? ops.join(" | ") : "-";
}

const START_NOW = "act:start(now,after-grace),mint,publish,wait";
const START_COMPROMISED = "act:start(compromised,at-once),mint,publish,delete-old-secret";
const START_SCHEDULED = "act:start(scheduled,after-grace),mint,publish,wait";
const START_RECOVER = "act:start(recover,after-grace),recover,mint,publish,wait";
const NOTHING_TO_RECOVER = "act:none";
const UNKNOWN_ROTATED = "act:blocked(attention,E_UNKNOWN_ROTATED_SECRET)";
const IN_GRACE_NOW = "act:blocked(waiting)";
const COMPROMISED_IN_GRACE =
  "act:delete-old-secret(early),start(compromised,at-once),mint,publish,delete-old-secret";
const LOST = "resume:blocked(attention,E_ROTATION_SECRET_LOST)";

/** Situation -> the plan per mode, in the order auto, now, finish, compromised, recover. */
const TABLE: [string, Situation, [string, string, string, string, string]][] = [
  [
    "idle: current secret, nothing in flight",
    { entries: [entry({})], issued: ago(2 * DAY) },
    ["-", START_NOW, "-", START_COMPROMISED, NOTHING_TO_RECOVER],
  ],
  [
    "due: the sink's secret reached `every`",
    { entries: [entry({ published_at: ago(11 * DAY) })], issued: ago(11 * DAY) },
    [START_SCHEDULED, START_NOW, "-", START_COMPROMISED, NOTHING_TO_RECOVER],
  ],
  [
    "due by created_at alone (no journal, sink not read)",
    {},
    [START_SCHEDULED, START_NOW, "-", START_COMPROMISED, NOTHING_TO_RECOVER],
  ],
  [
    "off: rotation turned off, however old",
    { desired: { rotation: null }, issued: ago(400 * DAY) },
    ["-", START_NOW, "-", START_COMPROMISED, NOTHING_TO_RECOVER],
  ],
  [
    "no-secret: created by the tool, no record in the sink, never published",
    {
      entries: [entry({ op: "create", reason: "create", created_by_tool: true, published_at: null })],
      issued: null,
    },
    [
      "act:start(missing-record,at-once,unused),mint,publish,delete-old-secret",
      "act:start(missing-record,at-once,unused),mint,publish,delete-old-secret",
      "-",
      "act:start(missing-record,at-once,unused),mint,publish,delete-old-secret",
      "-",
    ],
  ],
  [
    "no-secret after a publish: the record vanished, the replacement keeps a grace",
    { entries: [entry({ created_by_tool: true })], issued: null },
    [
      "act:start(missing-record,after-grace),mint,publish,wait",
      "act:start(missing-record,after-grace),mint,publish,wait",
      "-",
      "act:start(missing-record,after-grace),mint,publish,wait",
      "-",
    ],
  ],
  [
    "unknown-rotated: a rotated secret the journal knows nothing of",
    { live: { has_rotated_secret: true }, issued: ago(DAY) },
    [UNKNOWN_ROTATED, UNKNOWN_ROTATED, UNKNOWN_ROTATED, UNKNOWN_ROTATED, START_RECOVER],
  ],
  [
    "secret-lost: a blocked rotation (journal step intent, blocked)",
    {
      entries: [entry({ step: "intent", blocked: "secret-lost", minted_at: null, published_at: null })],
      live: { has_rotated_secret: true },
      issued: ago(DAY),
    },
    [LOST, LOST, LOST, LOST, "act:start(recover,after-grace,replaces e1),recover,mint,publish,wait"],
  ],
  [
    "journal step intent: an interrupted rotate_secret that never happened",
    {
      entries: [entry({ step: "intent", minted_at: null, published_at: null })],
      issued: ago(11 * DAY),
    },
    [
      "resume:mint,publish,wait",
      `resume:mint,publish,wait | ${IN_GRACE_NOW}`,
      "resume:mint,publish,wait",
      `resume:mint,publish,wait | ${COMPROMISED_IN_GRACE}`,
      "resume:mint,publish,wait",
    ],
  ],
  [
    "journal step intent, and the client has a rotated secret: its answer was lost",
    {
      entries: [entry({ step: "intent", minted_at: null, published_at: null })],
      live: { has_rotated_secret: true },
      issued: ago(11 * DAY),
    },
    [LOST, LOST, LOST, LOST, "act:start(recover,after-grace,replaces e1),recover,mint,publish,wait"],
  ],
  [
    "journal step intent of an unused client with a rotated secret: cleared, then minted",
    {
      entries: [
        entry({ step: "intent", unused: true, delete_old: "at-once", minted_at: null, published_at: null }),
      ],
      live: { has_rotated_secret: true },
    },
    [
      "resume:mint(clears-unknown),publish,delete-old-secret",
      `resume:mint(clears-unknown),publish,delete-old-secret | ${START_NOW}`,
      "resume:mint(clears-unknown),publish,delete-old-secret",
      `resume:mint(clears-unknown),publish,delete-old-secret | ${START_COMPROMISED}`,
      `resume:mint(clears-unknown),publish,delete-old-secret | ${NOTHING_TO_RECOVER}`,
    ],
  ],
  [
    "journal step minted: a new secret not yet published",
    {
      entries: [entry({ step: "minted", published_at: null, minted_at: ago(60) })],
      live: { has_rotated_secret: true },
      issued: ago(11 * DAY),
    },
    [
      "resume:publish,wait",
      `resume:publish,wait | ${IN_GRACE_NOW}`,
      "resume:publish,wait",
      `resume:publish,wait | ${COMPROMISED_IN_GRACE}`,
      "resume:publish,wait",
    ],
  ],
  [
    "journal step published, in grace",
    {
      entries: [entry({ step: "published", published_at: ago(3600) })],
      live: { has_rotated_secret: true },
      issued: ago(3600),
    },
    ["-", IN_GRACE_NOW, "-", COMPROMISED_IN_GRACE, "-"],
  ],
  [
    "journal step published, grace over: the old secret is deleted first",
    {
      entries: [entry({ step: "published", published_at: ago(2 * DAY) })],
      live: { has_rotated_secret: true },
      issued: ago(2 * DAY),
    },
    [
      "resume:delete-old-secret",
      `resume:delete-old-secret | ${START_NOW}`,
      "resume:delete-old-secret",
      `resume:delete-old-secret | ${START_COMPROMISED}`,
      `resume:delete-old-secret | ${NOTHING_TO_RECOVER}`,
    ],
  ],
  [
    "journal step published with nothing to delete (a create's own secret)",
    {
      entries: [
        entry({ op: "create", reason: "create", step: "published", delete_old: "none", unused: true }),
      ],
      issued: ago(2 * DAY),
    },
    [
      "resume:close",
      `resume:close | ${START_NOW}`,
      "resume:close",
      `resume:close | ${START_COMPROMISED}`,
      `resume:close | ${NOTHING_TO_RECOVER}`,
    ],
  ],
  [
    "journal step recover: an interrupted --recover",
    {
      entries: [entry({ step: "recover", reason: "recover", minted_at: null, published_at: null })],
      live: { has_rotated_secret: true },
      issued: ago(DAY),
    },
    [
      "resume:recover,mint,publish,wait",
      `resume:recover,mint,publish,wait | ${IN_GRACE_NOW}`,
      "resume:recover,mint,publish,wait",
      `resume:recover,mint,publish,wait | ${COMPROMISED_IN_GRACE}`,
      "resume:recover,mint,publish,wait",
    ],
  ],
  [
    "journal step intent of a create whose answer was lost: found by name, then rotatable",
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
      "resume:find-created,mint,publish,delete-old-secret",
      `resume:find-created,mint,publish,delete-old-secret | ${START_NOW}`,
      "resume:find-created,mint,publish,delete-old-secret",
      `resume:find-created,mint,publish,delete-old-secret | ${START_COMPROMISED}`,
      `resume:find-created,mint,publish,delete-old-secret | ${NOTHING_TO_RECOVER}`,
    ],
  ],
  [
    "journal step intent of a create that never reached the API",
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
          existing_client_ids: [ID],
          minted_at: null,
          published_at: null,
        }),
      ],
      live: null,
    },
    ["resume:drop", "resume:drop", "resume:drop", "resume:drop", "resume:drop"],
  ],
  [
    "journal step done only: nothing to resume",
    { entries: [entry({ step: "done" })], issued: ago(DAY) },
    ["-", START_NOW, "-", START_COMPROMISED, NOTHING_TO_RECOVER],
  ],
];

describe("planSecrets: mode × phase × journal step", () => {
  for (const [name, situation, expected] of TABLE) {
    it(name, () => {
      const got = MODES.map((mode) => render(plan(mode, situation)));
      expect(Object.fromEntries(MODES.map((m, i) => [m, got[i]]))).toEqual(
        Object.fromEntries(MODES.map((m, i) => [m, expected[i]])),
      );
    });
  }

  it("names a client that is not rotatable, and leaves the others alone", () => {
    const p = plan("now", { issued: ago(DAY), clients: ["nope"] });
    expect(render(p)).toBe("act:blocked(failed,E_UNKNOWN_CLIENT)");
  });

  it("--client selects: other clients get no act, the resume stage still runs for everyone", () => {
    const p = plan("now", {
      entries: [entry({ step: "minted", published_at: null, minted_at: ago(60) })],
      live: { has_rotated_secret: true },
      clients: ["other"],
    });
    expect(render(p)).toBe("resume:publish,wait | act:blocked(failed,E_UNKNOWN_CLIENT)");
  });

  it("a wait says until when: the publish time plus the grace", () => {
    const p = plan("now", { issued: ago(DAY) });
    const wait = p.ops[0]?.actions.at(-1);
    expect(wait).toEqual({ kind: "wait", until: new Date(NOW.getTime() + DAY * 1000).toISOString() });
  });

  it("grace is honoured to the second", () => {
    const at = (published: number) =>
      render(
        plan("auto", {
          entries: [entry({ step: "published", published_at: ago(published) })],
          live: { has_rotated_secret: true },
          issued: ago(published),
        }),
      );
    expect(at(DAY - 1)).toBe("-");
    expect(at(DAY)).toBe("resume:delete-old-secret");
  });

  it("the statuses are the phases after the resume stage", () => {
    const p = plan("auto", {
      entries: [entry({ step: "minted", published_at: null, minted_at: ago(60) })],
      live: { has_rotated_secret: true },
      issued: ago(11 * DAY),
    });
    expect(p.statuses.map((s) => [s.phase, s.issued_at])).toEqual([["grace", ago(60)]]);
  });

  it("is a plain value: it survives JSON unchanged", () => {
    for (const [, situation] of TABLE) {
      for (const mode of MODES) {
        const p = plan(mode, situation);
        expect(JSON.parse(JSON.stringify(p.ops))).toEqual(p.ops);
      }
    }
  });

  it("after a resume (`resumed`), plans from the journal as it stands", () => {
    const minted = entry({ step: "minted", published_at: null, minted_at: ago(60) });
    const p = planSecrets({
      desired: { accounts: new Map([[ACC, [desiredEntry()]]]) } as unknown as DesiredState,
      live: new Map([[ACC, [liveClient({ has_rotated_secret: true })]]]),
      inventory: {
        accounts: { [ACC]: [{ client_id: ID, client_name: "app", origin: "created", since: ago(DAY) }] },
      },
      entries: [minted],
      sinkIssuedAt: new Map(),
      defaultPolicy: { every: 90 * DAY, grace: DAY },
      mode: "now",
      clients: [],
      now: NOW,
      resumed: true,
    });
    // The publish failed this run: the client stays unpublished, and nothing new starts over it.
    expect(render(p)).toBe("-");
    expect(p.statuses[0]?.phase).toBe("unpublished");
  });
});

describe("planResume (apply's resume: no due deletions)", () => {
  const base = {
    live: new Map([[ACC, [liveClient({ has_rotated_secret: true })]]]),
    inventory: { accounts: {} },
    now: NOW,
  };
  it("leaves a due deletion to rotate, and still publishes", () => {
    const ops = planResume({
      ...base,
      entries: [
        entry({ id: "a", step: "published", published_at: ago(2 * DAY) }),
        entry({ id: "b", step: "minted", published_at: null, minted_at: ago(60) }),
      ],
      finishDueDeletions: false,
    });
    expect(ops.map((o) => [o.entry_id, o.actions.map((a) => a.kind)])).toEqual([["b", ["publish", "wait"]]]);
  });

  it("orders the operations by account and client name, whatever order the journal was read in", () => {
    const minted = (id: string, client_name: string, account_id = ACC) =>
      entry({ id, client_name, account_id, step: "minted", published_at: null, minted_at: ago(60) });
    const ops = planResume({
      ...base,
      entries: [minted("x1", "beta"), minted("x2", "alpha"), minted("x3", "alpha", "0".repeat(32))],
      finishDueDeletions: false,
    });
    expect(ops.map((o) => o.entry_id)).toEqual(["x3", "x2", "x1"]);
  });
});

describe("compactEntries", () => {
  it("keeps the newest done entry per client and drops every entry of a client confirmed gone", () => {
    const entries = [
      entry({ id: "1", step: "done" }),
      entry({ id: "2", step: "done" }),
      entry({ id: "3", step: "minted", client_id: "gone" }),
      entry({ id: "4", step: "minted", client_id: "omitted-by-list" }),
    ];
    const { kept, removed } = compactEntries(entries, new Map([[ACC, new Set(["gone"])]]));
    expect(kept.map((e) => e.id)).toEqual(["2", "4"]);
    expect(removed.map((e) => e.id)).toEqual(["1", "3"]);
  });
});

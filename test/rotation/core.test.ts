import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { DesiredClient, DesiredState, Inventory } from "../../src/core/model.js";
import {
  clientKey,
  type JournalActiveOp,
  type JournalClientState,
  type RotationInput,
  rotationStatus,
} from "../../src/core/rotation.js";

/** Table-driven tests of the pure rotation core: phases, age sources, due times to the second. */

const ACC = "0123456789abcdef0123456789abcdef";
const DAY = 86_400;
const T0 = "2026-01-01T00:00:00.000Z";
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000);
const iso = (seconds: number) => at(seconds).toISOString();

function desired(name: string, extra: Partial<DesiredClient> = {}): DesiredClient {
  return {
    account_id: ACC,
    ensure: "present",
    client_name: name,
    fields: { client_name: name, token_endpoint_auth_method: "client_secret_basic" },
    visibility: "private",
    secret: { sink: "default", key: name },
    rotation: { every: 10 * DAY, grace: DAY },
    source: { file: "clients.yaml", line: 1, col: 1, path: "clients[0]" },
    ...extra,
  };
}

function live(name: string, extra: Partial<LiveClient> = {}): LiveClient {
  return {
    client_id: `id-${name}`,
    client_name: name,
    visibility: "private",
    token_endpoint_auth_method: "client_secret_basic",
    has_rotated_secret: false,
    created_at: T0,
    ...extra,
  } as LiveClient;
}

function owned(...names: string[]): Inventory {
  return {
    accounts: {
      [ACC]: names.map((n) => ({
        client_id: `id-${n}`,
        client_name: n,
        origin: "created" as const,
        since: T0,
      })),
    },
  };
}

function journal(name: string, state: Partial<JournalClientState>, active?: Partial<JournalActiveOp>) {
  const value: JournalClientState = {
    account_id: ACC,
    client_id: `id-${name}`,
    active: active
      ? {
          op: "rotate",
          reason: "scheduled",
          step: "published",
          delete_old: "after-grace",
          published_at: T0,
          grace_seconds: DAY,
          blocked: null,
          ...active,
        }
      : null,
    last_published_at: null,
    created_by_tool: false,
    ...state,
  };
  return new Map([[clientKey(ACC, `id-${name}`), value]]);
}

function input(overrides: Partial<RotationInput> & { now: Date }): RotationInput {
  const state: DesiredState = { accounts: new Map([[ACC, [desired("a")]]]), files: [] };
  return {
    desired: state,
    live: new Map([[ACC, [live("a")]]]),
    inventory: owned("a"),
    journal: new Map(),
    sinkIssuedAt: new Map(),
    defaultPolicy: { every: 90 * DAY, grace: DAY },
    ...overrides,
  };
}

const sink = (seconds: number | null) =>
  new Map([[clientKey(ACC, "id-a"), seconds === null ? null : iso(seconds)]]);

describe("rotationStatus: phases", () => {
  const cases: { name: string; input: RotationInput; phase: string; next: string | null }[] = [
    { name: "young secret is idle", input: input({ now: at(DAY) }), phase: "idle", next: iso(10 * DAY) },
    {
      name: "due exactly when age reaches every (to the second)",
      input: input({ now: at(10 * DAY) }),
      phase: "due",
      next: iso(10 * DAY),
    },
    {
      name: "one second before every is idle",
      input: input({ now: at(10 * DAY - 1) }),
      phase: "idle",
      next: iso(10 * DAY),
    },
    {
      name: "grace running: one second before it ends",
      input: input({ now: at(DAY - 1), journal: journal("a", {}, { published_at: T0 }) }),
      phase: "grace",
      next: iso(DAY),
    },
    {
      name: "grace over exactly at published_at + grace",
      input: input({ now: at(DAY), journal: journal("a", {}, { published_at: T0 }) }),
      phase: "delete-due",
      next: iso(DAY),
    },
    {
      name: "minted but not published",
      input: input({ now: at(DAY), journal: journal("a", {}, { step: "minted", published_at: null }) }),
      phase: "unpublished",
      next: iso(10 * DAY),
    },
    {
      name: "intent in flight",
      input: input({ now: at(DAY), journal: journal("a", {}, { step: "intent", published_at: null }) }),
      phase: "in-progress",
      next: iso(10 * DAY),
    },
    {
      name: "our rotation lost its new secret",
      input: input({
        now: at(DAY),
        live: new Map([[ACC, [live("a", { has_rotated_secret: true })]]]),
        journal: journal("a", {}, { step: "intent", blocked: "secret-lost" }),
      }),
      phase: "secret-lost",
      next: iso(10 * DAY),
    },
    {
      name: "a rotated secret the journal knows nothing of is left alone",
      input: input({ now: at(DAY), live: new Map([[ACC, [live("a", { has_rotated_secret: true })]]]) }),
      phase: "unknown-rotated",
      next: iso(10 * DAY),
    },
    {
      name: "created by this tool, no sink record: mint",
      input: input({
        now: at(DAY),
        sinkIssuedAt: sink(null),
        journal: journal("a", { created_by_tool: true }),
      }),
      phase: "no-secret",
      next: iso(DAY),
    },
    {
      name: "adopted, no sink record: never minted at once, just aged from created_at",
      input: input({ now: at(DAY), sinkIssuedAt: sink(null) }),
      phase: "idle",
      next: iso(10 * DAY),
    },
    {
      name: "rotation off",
      input: input({
        now: at(100 * DAY),
        desired: { accounts: new Map([[ACC, [desired("a", { rotation: null })]]]), files: [] },
      }),
      phase: "off",
      next: iso(90 * DAY),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [status] = rotationStatus(c.input);
      expect(status?.phase).toBe(c.phase);
      expect(status?.next_due_at).toBe(c.next);
    });
  }
});

describe("rotationStatus: age sources", () => {
  it("prefers the sink's issued_at, then the journal, then created_at", () => {
    const now = at(20 * DAY);
    const j = journal("a", { last_published_at: iso(5 * DAY) });
    const fromSink = rotationStatus(input({ now, journal: j, sinkIssuedAt: sink(15 * DAY) }))[0];
    expect(fromSink).toMatchObject({ age_source: "sink", age_seconds: 5 * DAY, phase: "idle" });
    const fromJournal = rotationStatus(input({ now, journal: j }))[0];
    expect(fromJournal).toMatchObject({ age_source: "journal", age_seconds: 15 * DAY, phase: "due" });
    const fromCreated = rotationStatus(input({ now }))[0];
    expect(fromCreated).toMatchObject({ age_source: "created_at", age_seconds: 20 * DAY, phase: "due" });
  });

  it("a sink without a record for this client falls back to the journal", () => {
    const status = rotationStatus(
      input({
        now: at(3 * DAY),
        sinkIssuedAt: sink(null),
        journal: journal("a", { last_published_at: iso(DAY) }),
      }),
    )[0];
    expect(status).toMatchObject({ age_source: "journal", age_seconds: 2 * DAY });
  });
});

describe("rotationStatus: which clients", () => {
  it("leaves out clients not owned, public clients, absent entries and entries without a secret", () => {
    const state: DesiredState = {
      accounts: new Map([
        [
          ACC,
          [
            desired("owned"),
            desired("foreign"),
            desired("public", { secret: null }),
            desired("gone", { ensure: "absent" }),
            desired("pkce"),
          ],
        ],
      ]),
      files: [],
    };
    const statuses = rotationStatus(
      input({
        now: at(DAY),
        desired: state,
        live: new Map([
          [
            ACC,
            [
              live("owned"),
              live("foreign"),
              live("public"),
              live("gone"),
              live("pkce", { token_endpoint_auth_method: "none" }),
            ],
          ],
        ]),
        inventory: owned("owned", "public", "gone", "pkce"),
      }),
    );
    expect(statuses.map((s) => s.client_name)).toEqual(["owned"]);
  });
});

import { describe, expect, it } from "vitest";
import { CloudflareApiError } from "../../src/cloudflare/errors.js";
import { ConfigError, GitOpsError, StateError } from "../../src/errors.js";
import {
  type ApplyDigest,
  errorOf,
  historyEntry,
  HISTORY_LENGTH,
  newRunRecord,
  outcomeOf,
  pushHistory,
  type RunError,
  type RunRecord,
  type RunResult,
  runHealthOf,
} from "../../src/engine/daemon/run-record.js";
import type { StepOutcome } from "../../src/engine/triggers/run-queue.js";

const NOW = Date.UTC(2030, 0, 1);

function record(
  result: RunResult,
  error: Partial<RunError> | null = null,
  apply?: Partial<ApplyDigest>,
): RunRecord {
  const r = newRunRecord(7, new Set(["interval", "rotation"]), "apply", new Date(NOW));
  r.result = result;
  r.error = error ? { code: "E_X", message: "boom", disposition: "transient", ...error } : null;
  if (apply) {
    r.apply = {
      applied: 0,
      failed: 0,
      adopted: 0,
      forgotten: 0,
      by_kind: {
        create: { applied: 0, failed: 0 },
        update: { applied: 0, failed: 0 },
        delete: { applied: 0, failed: 0 },
      },
      failures: [],
      ...apply,
    };
  }
  return r;
}

const authFailure = {
  kind: "create" as const,
  account_id: "a",
  client_name: "web",
  code: "E_API_AUTH",
  message: "POST /accounts/a/oauth_clients: 403 Authentication error",
};

describe("outcomeOf: the disposition decides what the loop does next", () => {
  const cases: [string, RunRecord, StepOutcome][] = [
    ["ok", record("ok"), { kind: "ok" }],
    ["aborted by shutdown", record("aborted", { code: "E_SHUTDOWN" }), { kind: "aborted" }],
    [
      "partial with transient change failures",
      record("partial", null, { failed: 1, failures: [{ ...authFailure, code: "E_API_HTTP" }] }),
      { kind: "ok" },
    ],
    [
      "partial with a 403 on a write",
      record("partial", null, { applied: 1, failed: 1, failures: [authFailure] }),
      {
        kind: "terminal",
        reason: expect.stringContaining("refused a write as unauthorised (create [a/web]") as never,
      },
    ],
    [
      "error: revoked token on the list",
      record("error", { code: "E_API_AUTH", message: "GET list: 403\nmore", disposition: "terminal" }),
      { kind: "terminal", reason: "the API refused the credentials (E_API_AUTH: GET list: 403)" },
    ],
    [
      "invalid desired state",
      record("invalid", { code: "E_CONFIG", message: "a.yaml:1:1: bad", disposition: "terminal" }),
      { kind: "terminal", reason: "desired state invalid (E_CONFIG: a.yaml:1:1: bad)" },
    ],
    [
      "unsafe plan",
      record("unsafe", { code: "E_UNSAFE_PLAN", message: "too many deletes", disposition: "terminal" }),
      { kind: "terminal", reason: "plan refused by a safety valve (E_UNSAFE_PLAN: too many deletes)" },
    ],
    [
      "error, terminal disposition",
      record("error", { code: "E_GIT_CREDENTIALS", message: "denied", disposition: "terminal" }),
      { kind: "terminal", reason: "E_GIT_CREDENTIALS: denied" },
    ],
    [
      "error, transient (5xx, network)",
      record("error", { code: "E_API_HTTP", disposition: "transient" }),
      { kind: "transient" },
    ],
    [
      "error, wait without a known time (state locked)",
      record("error", { code: "E_STATE_LOCKED", message: "in use", disposition: "wait" }),
      { kind: "wait", reason: "E_STATE_LOCKED: in use", untilMs: null },
    ],
    [
      "error, wait with the server's reset",
      record("error", {
        code: "E_API_RATE_LIMITED",
        message: "429",
        disposition: "wait",
        retry_after_ms: 90_000,
      }),
      { kind: "wait", reason: "E_API_RATE_LIMITED: 429", untilMs: NOW + 90_000 },
    ],
    [
      "no result (crashed step) is an error",
      { ...record("error"), result: null, error: null },
      { kind: "transient" },
    ],
  ];
  it.each(cases)("%s", (_label, r, expected) => {
    expect(outcomeOf(r, NOW)).toEqual(expected);
  });
});

describe("errorOf", () => {
  it.each([
    [
      "a config error keeps its issues",
      new ConfigError([{ file: "a.yaml", line: 1, col: 2, path: "x", message: "m", code: "E_UNKNOWN_KEY" }]),
      { code: "E_CONFIG", disposition: "terminal" },
    ],
    [
      "a locked state directory waits",
      new StateError("E_STATE_LOCKED", "in use", { disposition: "wait" }),
      { code: "E_STATE_LOCKED", disposition: "wait" },
    ],
    [
      "a rate limit waits for the server's reset",
      new CloudflareApiError("E_API_RATE_LIMITED", "429", {
        method: "GET",
        route: "r",
        path: "p",
        status: 429,
        retryable: true,
        retryAfterMs: 30_000,
      }),
      { code: "E_API_RATE_LIMITED", disposition: "wait", retry_after_ms: 30_000 },
    ],
    [
      "a refused token is terminal",
      new CloudflareApiError("E_API_AUTH", "403", { method: "GET", route: "r", path: "p", status: 403 }),
      { code: "E_API_AUTH", disposition: "terminal" },
    ],
    [
      "any GitOpsError keeps its disposition",
      new GitOpsError("E_GIT", "y", { disposition: "transient" }),
      { code: "E_GIT", disposition: "transient" },
    ],
    [
      "anything else is transient",
      new Error("socket hang up"),
      { code: "E_UNEXPECTED", disposition: "transient" },
    ],
  ])("%s", (_label, error, expected) => {
    expect(errorOf(error)).toMatchObject(expected);
  });
});

describe("runHealthOf", () => {
  it.each([
    [
      "before any run",
      null,
      { state: "idle" as const },
      { healthy: false, reason: "no run has finished yet", stalled: false },
    ],
    [
      "ok and idle",
      record("ok"),
      { state: "idle" as const },
      { healthy: true, reason: null, stalled: false },
    ],
    [
      "stalled",
      record("error", { code: "E_API_AUTH" }),
      { state: "stalled" as const, since: NOW, reason: "token revoked" },
      {
        healthy: false,
        reason: "stalled until new input: token revoked",
        stalled: true,
        stall_reason: "token revoked",
      },
    ],
    [
      "waiting",
      record("error", { code: "E_STATE_LOCKED", message: "in use" }),
      { state: "waiting" as const, until: NOW + 5000, reason: "E_STATE_LOCKED: in use" },
      {
        healthy: false,
        stalled: false,
        stall_reason: "E_STATE_LOCKED: in use",
        waiting_until: new Date(NOW + 5000).toISOString(),
      },
    ],
  ])("%s", (_label, last, loop, expected) => {
    expect(runHealthOf(last, loop)).toMatchObject(expected);
  });
});

describe("run history", () => {
  it("keeps the newest runs first, at most HISTORY_LENGTH, each with its reasons, result, summary and next step", () => {
    let history: ReturnType<typeof pushHistory> = [];
    for (let i = 1; i <= HISTORY_LENGTH + 5; i++) {
      const r = {
        ...record(i % 2 ? "ok" : "error", i % 2 ? null : { code: "E_API_HTTP" }),
        id: i,
        revision: `rev${i}`,
      };
      history = pushHistory(history, historyEntry(r, outcomeOf(r, NOW)));
    }
    expect(history).toHaveLength(HISTORY_LENGTH);
    expect(history.map((h) => h.id)).toEqual(
      Array.from({ length: HISTORY_LENGTH }, (_, i) => HISTORY_LENGTH + 5 - i),
    );
    expect(history[0]).toEqual({
      id: 25,
      revision: "rev25",
      reasons: ["interval", "rotation"],
      result: "ok",
      started: new Date(NOW).toISOString(),
      duration_seconds: null,
      plan_summary: null,
      applied: null,
      failed: null,
      error: null,
      next: "ok",
    });
    expect(history[1]).toMatchObject({
      id: 24,
      result: "error",
      error: { code: "E_API_HTTP", disposition: "transient" },
      next: "transient",
    });
  });
});

import { CloudflareApiError } from "../../cloudflare/errors.js";
import type { HeldDelete } from "../../core/deferred-deletes.js";
import type { Change, ChangeKind, Plan, PlanSummary, SafetyViolation } from "../../core/plan-types.js";
import { ConfigError, type ConfigIssue, type Disposition, errorSummary, GitOpsError } from "../../errors.js";
import type { ApplyReport, ChangeResult } from "../apply.js";
import type { SecretOpResult } from "../rotate.js";
import type { LoopState, StepOutcome } from "../triggers/run-queue.js";
import type { TriggerReason } from "../triggers/types.js";

/**
 * The record of one daemon run and every judgement made from it, as pure functions of plain values:
 * the digests `/status` shows (no secret, no field bodies), how a run ended (`classifyRun`), what
 * the loop does next (`outcomeOf`: back off, stall or wait, from the failure's disposition), the
 * health line, and the history entries. The daemon (engine/daemon.ts) only fills records in and
 * hands them here, so every decision is table-tested (test/engine/run-record.test.ts).
 */

/** How a run ended. */
export type RunResult = "ok" | "partial" | "invalid" | "unsafe" | "error" | "aborted";

/** An error as status and logs show it: never a secret, never a stack. */
export interface RunError {
  code: string;
  message: string;
  disposition: Disposition;
  /** For `invalid`: every located problem (file:line:col). */
  issues?: ConfigIssue[];
  /** For `wait`: how long the server asked to wait (a rate limit's reset), when it said. */
  retry_after_ms?: number;
}

/** One planned change, named (no bodies: status stays small and field values stay in git). */
export interface ChangeDigest {
  kind: ChangeKind;
  account_id: string;
  client_name: string;
  client_id?: string;
  fields?: string[];
}

export interface PlanDigest {
  checksum: string;
  summary: PlanSummary;
  safety: { ok: boolean; violations: Pick<SafetyViolation, "rule" | "message" | "overridden">[] };
  /** At most {@link MAX_LISTED} changes; `changes_truncated` says how many more. */
  changes: ChangeDigest[];
  changes_truncated: number;
}

export interface ApplyDigest {
  applied: number;
  failed: number;
  adopted: number;
  forgotten: number;
  by_kind: Record<ChangeKind, { applied: number; failed: number }>;
  failures: (ChangeDigest & { code: string; message: string })[];
}

/** One run, as status and metrics report it. */
export interface RunRecord {
  id: number;
  reasons: TriggerReason[];
  mode: "apply" | "dry-run";
  started: string;
  finished: string | null;
  duration_seconds: number | null;
  result: RunResult | null;
  /** The git commit the run read, null for a directory source. */
  revision: string | null;
  plan: PlanDigest | null;
  apply: ApplyDigest | null;
  /** Clients whose live state differs from the desired state after this run. */
  drifted: number;
  /** Changes planned but not made (dry-run, unsafe, failed): deletions are listed in status. */
  pending_deletions: ChangeDigest[];
  /** Deletes this run held back (directory source) until the client has been absent long enough. */
  held_deletions: HeldDeletionDigest[];
  rotation: { failed: number; attention: number; done: number } | null;
  error: RunError | null;
  /** Changes settled so far, while running. */
  progress?: { done: number; total: number };
}

/** A held delete, as status shows it. */
export interface HeldDeletionDigest extends ChangeDigest {
  /** When a run first planned the delete. */
  absent_since: string;
  /** From when a run may carry it out (a run is requested then). */
  eligible_at: string;
}

/** Changes listed by name in a run record. */
export const MAX_LISTED = 100;

/** Runs `/status` keeps in `history`, newest first. */
export const HISTORY_LENGTH = 20;

/** A record with nothing filled in yet. */
export function newRunRecord(
  id: number,
  reasons: ReadonlySet<TriggerReason>,
  mode: "apply" | "dry-run",
  started: Date,
): RunRecord {
  return {
    id,
    reasons: [...reasons],
    mode,
    started: started.toISOString(),
    finished: null,
    duration_seconds: null,
    result: null,
    revision: null,
    plan: null,
    apply: null,
    drifted: 0,
    pending_deletions: [],
    held_deletions: [],
    rotation: null,
    error: null,
  };
}

/** How a reconcile that returned ended: dry-run judges the plan, apply counts failed changes. */
export function classifyRun(
  plan: Plan,
  apply: ApplyReport | null,
  aborted: boolean,
  mode: "apply" | "dry-run",
): RunResult {
  if (mode === "dry-run") return plan.safety.ok ? "ok" : "unsafe";
  if (!apply || apply.failed === 0) return "ok";
  const stopped = apply.results.some((r) => r.status === "failed" && r.error?.code === "E_ABORTED");
  return stopped && aborted ? "aborted" : "partial";
}

/** API codes meaning the credential was refused (401/403): no retry can change that answer. */
const REFUSED_CREDENTIAL_CODES: ReadonlySet<string> = new Set(["E_API_AUTH"]);

/**
 * What the loop does after a run, decided from how it ended and its failure's disposition
 * (src/errors.ts): `transient` backs off, `terminal` stalls until new input, `wait` retries at the
 * known time. Beyond the error's own disposition:
 * - a run whose changes (or rotations) were refused by the API as unauthorised (a 403 on a write,
 *   a revoked token) stalls even though the other changes went through: every retry would send the
 *   same refused writes;
 * - `invalid` and `unsafe` stall: the same input gives the same answer, so only new input (a
 *   commit, a file change, a webhook) or a restart runs again.
 */
export function outcomeOf(record: RunRecord, nowMs: number): StepOutcome {
  const result = record.result ?? "error";
  if (result === "aborted") return { kind: "aborted" };
  const refused = refusedCredential(record);
  if (refused) return { kind: "terminal", reason: refused };
  if (result === "ok" || result === "partial") return { kind: "ok" };
  const error = record.error;
  const detail = `${error?.code ?? "E_UNEXPECTED"}: ${firstLine(error?.message ?? "no detail")}`;
  if (result === "invalid") return { kind: "terminal", reason: `desired state invalid (${detail})` };
  if (result === "unsafe") return { kind: "terminal", reason: `plan refused by a safety valve (${detail})` };
  if (error?.disposition === "terminal") return { kind: "terminal", reason: detail };
  if (error?.disposition === "wait") {
    const until = error.retry_after_ms !== undefined ? nowMs + error.retry_after_ms : null;
    return { kind: "wait", reason: detail, untilMs: until };
  }
  return { kind: "transient" };
}

function refusedCredential(record: RunRecord): string | null {
  const failure = record.apply?.failures.find((f) => REFUSED_CREDENTIAL_CODES.has(f.code));
  if (failure) {
    return `the API refused a write as unauthorised (${failure.kind} [${failure.account_id}/${failure.client_name}]: ${firstLine(failure.message)})`;
  }
  if (record.error && REFUSED_CREDENTIAL_CODES.has(record.error.code))
    return `the API refused the credentials (${record.error.code}: ${firstLine(record.error.message)})`;
  return null;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? text;
}

/** Whether the last run went cleanly: `/status` and the `last_run_success` metric carry it. */
export interface RunHealth {
  healthy: boolean;
  reason: string | null;
  /** Stalled: no run starts until new input (a commit, a file change, a webhook, a restart). */
  stalled: boolean;
  /** Why it stalled (or waits), when it does. */
  stall_reason: string | null;
  /** Waiting for a known time (a rate limit's reset, a lock held by another run). */
  waiting_until: string | null;
}

/** The health line of `/status`: how the last run went and whether the loop is stalled or waiting. */
export function runHealthOf(last: RunRecord | null, loop: LoopState): RunHealth {
  const stalled = loop.state === "stalled";
  const base = {
    stalled,
    stall_reason: loop.state === "stalled" || loop.state === "waiting" ? loop.reason : null,
    waiting_until: loop.state === "waiting" ? new Date(loop.until).toISOString() : null,
  };
  if (!last) return { healthy: false, reason: "no run has finished yet", ...base };
  if (last.result === "ok" && !stalled) return { healthy: true, reason: null, ...base };
  if (stalled) return { healthy: false, reason: `stalled until new input: ${loop.reason}`, ...base };
  if (last.result === "partial" && last.apply?.failed) {
    return { healthy: false, reason: `${last.apply.failed} change(s) failed in the last run`, ...base };
  }
  return {
    healthy: false,
    reason: `last run ${last.result}: ${last.error?.message ?? "no detail"}`,
    ...base,
  };
}

/** One finished run in `/status` `history`: enough to follow what happened, small enough to keep 20. */
export interface RunHistoryEntry {
  id: number;
  revision: string | null;
  reasons: TriggerReason[];
  result: RunResult | null;
  started: string;
  duration_seconds: number | null;
  /** Non-zero counts of the plan, e.g. `{ create: 1 }`; null when no plan was made. */
  plan_summary: Partial<PlanSummary> | null;
  applied: number | null;
  failed: number | null;
  error: Pick<RunError, "code" | "message" | "disposition"> | null;
  /** What the loop did next: `ok`, `transient` (back off), `terminal` (stall), `wait`, `aborted`. */
  next: StepOutcome["kind"];
}

/** The history entry of a finished run. */
export function historyEntry(record: RunRecord, outcome: StepOutcome): RunHistoryEntry {
  return {
    id: record.id,
    revision: record.revision,
    reasons: record.reasons,
    result: record.result,
    started: record.started,
    duration_seconds: record.duration_seconds,
    plan_summary: record.plan ? compactSummary(record.plan.summary) : null,
    applied: record.apply?.applied ?? null,
    failed: record.apply?.failed ?? null,
    error: record.error
      ? { code: record.error.code, message: record.error.message, disposition: record.error.disposition }
      : null,
    next: outcome.kind,
  };
}

/** `entry` first, then the newest of `history`, at most {@link HISTORY_LENGTH} in all. */
export function pushHistory(
  history: readonly RunHistoryEntry[],
  entry: RunHistoryEntry,
  limit = HISTORY_LENGTH,
): RunHistoryEntry[] {
  return [entry, ...history].slice(0, limit);
}

export function digestHeld(held: HeldDelete): HeldDeletionDigest {
  return {
    ...digestChange(held.change),
    absent_since: new Date(held.absentSinceMs).toISOString(),
    eligible_at: new Date(held.eligibleAtMs).toISOString(),
  };
}

/** Planned changes that did not happen: all of them in dry-run, the failed ones otherwise. */
export function unappliedChanges(plan: Plan, apply: ApplyReport | null, dryRun: boolean): Change[] {
  if (dryRun || !apply) return dryRun || !plan.safety.ok ? plan.changes : [];
  const failed = new Set(
    apply.results
      .filter((r) => r.status === "failed")
      .map((r) => changeKey(r.kind, r.account_id, r.client_name)),
  );
  return plan.changes.filter((c) => failed.has(changeKey(c.kind, c.account_id, c.client_name)));
}

function changeKey(kind: string, account: string, name: string): string {
  return `${kind}\u0000${account}\u0000${name}`;
}

export function digestChange(change: Change): ChangeDigest {
  return {
    kind: change.kind,
    account_id: change.account_id,
    client_name: change.client_name,
    ...("client_id" in change ? { client_id: change.client_id } : {}),
    ...(change.kind === "update" ? { fields: change.fields.map((f) => f.field) } : {}),
  };
}

export function digestPlan(plan: Plan): PlanDigest {
  return {
    checksum: plan.checksum,
    summary: plan.summary,
    safety: {
      ok: plan.safety.ok,
      violations: plan.safety.violations.map(({ rule, message, overridden }) => ({
        rule,
        message,
        overridden,
      })),
    },
    changes: plan.changes.slice(0, MAX_LISTED).map(digestChange),
    changes_truncated: Math.max(0, plan.changes.length - MAX_LISTED),
  };
}

export function digestApply(report: ApplyReport): ApplyDigest {
  const by_kind: ApplyDigest["by_kind"] = {
    create: { applied: 0, failed: 0 },
    update: { applied: 0, failed: 0 },
    delete: { applied: 0, failed: 0 },
  };
  for (const r of report.results) by_kind[r.kind][r.status] += 1;
  return {
    applied: report.applied,
    failed: report.failed,
    adopted: report.adopted,
    forgotten: report.forgotten,
    by_kind,
    failures: report.results
      .filter(
        (r): r is ChangeResult & { error: { code: string; message: string } } =>
          r.status === "failed" && !!r.error,
      )
      .slice(0, MAX_LISTED)
      .map((r) => ({
        kind: r.kind,
        account_id: r.account_id,
        client_name: r.client_name,
        ...(r.client_id ? { client_id: r.client_id } : {}),
        code: r.error.code,
        message: r.error.message,
      })),
  };
}

/** Failed secret operations and those needing an operator, as one error; null when there are none. */
export function secretTrouble(results: readonly SecretOpResult[], what: string): RunError | null {
  const troubled = results.filter((r) => r.status === "failed" || r.status === "attention");
  if (troubled.length === 0) return null;
  return {
    code: troubled[0]?.code ?? "E_SECRET_OP",
    message: troubled.map((r) => `${what} [${r.account_id}/${r.client_name}]: ${r.message}`).join("; "),
    disposition: "transient",
  };
}

export function compactSummary(summary: PlanSummary): Partial<PlanSummary> {
  return Object.fromEntries(Object.entries(summary).filter(([, n]) => n !== 0));
}

/**
 * A plain, JSON-able description of any error (GitOpsError keeps its code, issues and disposition).
 * A rate limit the API client could not wait out is a `wait`, with the server's reset time when it
 * said one (docs/API-BEHAVIOUR.md, "Rate limits": going over blocks every call until the window resets).
 */
export function errorOf(error: unknown): RunError {
  if (error instanceof ConfigError) {
    return {
      code: error.code,
      message: error.message,
      disposition: error.disposition,
      issues: [...error.issues],
    };
  }
  if (error instanceof CloudflareApiError && error.code === "E_API_RATE_LIMITED") {
    return {
      code: error.code,
      message: error.message,
      disposition: "wait",
      ...(error.retryAfterMs !== null ? { retry_after_ms: error.retryAfterMs } : {}),
    };
  }
  // Anything that is not a GitOpsError is a bug or a library's failure: retried, not stalled on.
  return {
    ...errorSummary(error),
    disposition: error instanceof GitOpsError ? error.disposition : "transient",
  };
}

/** The errors `/status` lists for the last run: its own error and each failed change. */
export function errorsOf(last: RunRecord | null): RunError[] {
  if (!last) return [];
  const errors: RunError[] = last.error ? [last.error] : [];
  for (const f of last.apply?.failures ?? []) {
    errors.push({
      code: f.code,
      message: `${f.kind} [${f.account_id}/${f.client_name}]: ${f.message}`,
      disposition: REFUSED_CREDENTIAL_CODES.has(f.code) ? "terminal" : "transient",
    });
  }
  return errors;
}

export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

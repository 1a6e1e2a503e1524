/**
 * Error classes with stable codes.
 *
 * Every failure the tool reports carries a `code` that scripts and tests can match on, a message that
 * names the object it failed on (`[account/client_name]`, `sink=vault`, `PATCH /accounts/...`), and the
 * standard `cause`. `disposition` sorts failures the way a reconcile loop needs them sorted:
 * `transient` (try again next run), `terminal` (stop, exit non-zero) or `wait` (come back later).
 * The shape follows undici's error classes and Flux's requeue/stall split (docs/DESIGN.md, "Errors").
 * Every code is registered, with its meaning, in src/error-codes.ts: an unregistered one does not
 * compile.
 */

import type { ErrorCode, IssueCode } from "./error-codes.js";

export type { ErrorCode, IssueCode } from "./error-codes.js";

/** How a reconcile loop should treat a failure. */
export type Disposition = "transient" | "terminal" | "wait";

export interface ErrorOptions {
  cause?: unknown;
  disposition?: Disposition;
  /** Extra structured context, safe to log: never a secret. */
  context?: Record<string, unknown>;
}

/** Base class: a stable `code` plus a disposition. */
export class GitOpsError extends Error {
  readonly code: ErrorCode;
  readonly disposition: Disposition;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.disposition = options.disposition ?? "terminal";
    this.context = options.context ?? {};
  }

  /**
   * A plain object for JSON output and logs: the context's fields, then the error's own. A context
   * key named like one of those (`code`, `message`, `name`, `disposition`) is dropped rather than
   * allowed to replace it, since scripts match on `code` and an error must never claim another's.
   */
  toJSON(): Record<string, unknown> {
    return {
      ...this.context,
      name: this.name,
      code: this.code,
      message: this.message,
      disposition: this.disposition,
    };
  }
}

/** The code and message of any thrown value: what results, journal entries and reports record. */
export interface ErrorSummary {
  code: ErrorCode;
  message: string;
}

/**
 * The one reduction of a thrown value to a code and a message: a GitOpsError keeps its own, anything
 * else (a bug, a library's error) is `E_UNEXPECTED` with its message.
 */
export function errorSummary(error: unknown): ErrorSummary {
  if (error instanceof GitOpsError) return { code: error.code, message: error.message };
  return { code: "E_UNEXPECTED", message: error instanceof Error ? error.message : String(error) };
}

/** One located problem in a config or desired-state file. */
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** The YAML path of the offending node, e.g. `clients[2].scopes[0]`. */
  path: string;
  message: string;
  /** A stable code such as `E_UNKNOWN_KEY`, `E_COLON_SCOPE`, or a warning's `W_...`. */
  code: IssueCode;
}

/** Invalid input: carries every problem found, not just the first. */
export class ConfigError extends GitOpsError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options: ErrorOptions = {}) {
    super("E_CONFIG", formatIssues(issues), { ...options, disposition: "terminal" });
    this.issues = issues;
  }
}

/** Renders issues as `file:line:col: path: message [code]`, one per line. */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  if (issues.length === 0) return "invalid configuration";
  return issues
    .map((i) => `${i.file}:${i.line}:${i.col}: ${i.path ? `${i.path}: ` : ""}${i.message} [${i.code}]`)
    .join("\n");
}

/** A plan refused by a safety valve; exit code 3. */
export class UnsafePlanError extends GitOpsError {
  constructor(message: string, options: ErrorOptions = {}) {
    super("E_UNSAFE_PLAN", message, { ...options, disposition: "terminal" });
  }
}

/** A secret sink failed to write, read back, or describe. */
export class SinkError extends GitOpsError {
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, { disposition: "transient", ...options });
  }
}

/** The state directory (inventory, journal) could not be read or written. */
export class StateError extends GitOpsError {
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, { disposition: "terminal", ...options });
  }
}

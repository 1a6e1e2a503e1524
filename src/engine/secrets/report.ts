import type { Logger } from "pino";
import { type ErrorCode, errorSummary, GitOpsError } from "../../errors.js";
import { secretLostReason } from "../../core/rotation-plan.js";
import type { JournalEntry } from "../../state/journal.js";
import type { SecretOpResult } from "./types.js";

/**
 * The wording of the secret engine's results: how one operation settled, as one line safe to print
 * and log (never a secret). Kept apart from the executor so the sentences a user reads live in one
 * place.
 */

/** How an operation settled (the executor's answer). */
export type Outcome =
  | { status: "done"; entry: JournalEntry; did: string[] }
  | { status: "waiting"; entry: JournalEntry; did: string[]; until: string }
  | { status: "blocked"; entry: JournalEntry; did: string[] }
  | { status: "dropped"; entry: JournalEntry; did: string[] }
  | {
      status: "held";
      ref: ClientRef;
      as: SecretOpResult["status"];
      code: ErrorCode | null;
      message: string;
    };

export type ClientRef = { account_id: string; client_name: string; client_id: string | null };

export function label(ref: { account_id: string; client_name: string }): string {
  return `[${ref.account_id}/${ref.client_name}]`;
}

export function entryRef(e: ClientRef): ClientRef {
  return { account_id: e.account_id, client_name: e.client_name, client_id: e.client_id };
}

export function resultOf(outcome: Outcome): SecretOpResult {
  if (outcome.status === "held") {
    const { ref, as, code, message } = outcome;
    return { ...entryRef(ref), status: as, ...(code ? { code } : {}), message };
  }
  const e = outcome.entry;
  const ref = entryRef(e);
  const did = outcome.did.length > 0 ? outcome.did.join("; ") : "nothing to do";
  switch (outcome.status) {
    case "done":
      return { ...ref, status: "ok", message: `${e.reason}: ${did}` };
    case "waiting":
      return {
        ...ref,
        status: "waiting",
        message: `${e.reason}: ${did}; the old secret stays valid until ${outcome.until}`,
      };
    case "blocked":
      return secretLostResult(e);
    case "dropped":
      return {
        ...ref,
        status: "ok",
        message: "create: the interrupted create never reached the API; it will be planned again",
      };
  }
}

export function secretLostResult(e: ClientRef): SecretOpResult {
  return {
    ...entryRef(e),
    status: "attention",
    code: "E_ROTATION_SECRET_LOST",
    message: secretLostReason(e.client_name),
  };
}

export function outcomeError(outcome: Outcome): GitOpsError {
  const r = resultOf(outcome);
  return new GitOpsError(r.code ?? "E_SECRET_PENDING", `${label(r)}: ${r.message}`, {
    disposition: "transient",
  });
}

export function failedResult(ref: ClientRef, error: unknown): SecretOpResult {
  const info = errorSummary(error);
  return { ...entryRef(ref), status: "failed", code: info.code, message: info.message };
}

export function logResult(log: Logger, r: SecretOpResult, context: string): void {
  const fields = {
    account_id: r.account_id,
    client_name: r.client_name,
    client_id: r.client_id,
    code: r.code,
    context,
  };
  if (r.status === "failed") log.error(fields, r.message);
  else if (r.status === "attention") log.warn(fields, r.message);
  else log.info(fields, r.message);
}

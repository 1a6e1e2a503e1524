import type { LiveClient } from "../../api/oauth-clients.js";
import { compactEntries, planResume, type SecretOp } from "../../core/rotation-plan.js";
import { SinkError } from "../../errors.js";
import type { JournalEntry, JournalStore } from "../../state/journal.js";
import { mapSettledBounded } from "../pool.js";
import { executeOp } from "./execute.js";
import { withCreateAccounts } from "./plan.js";
import { entryRef, failedResult, logResult, resultOf, secretLostResult } from "./report.js";
import type { SecretDeps, SecretOpResult } from "./types.js";

/**
 * The journal first, on every run that writes: what earlier runs left unfinished (creates whose answer
 * was lost, secrets minted but not yet published, old secrets due for deletion) is carried out before
 * anything new starts. The plan of it is src/core/rotation-plan.ts `planResume`.
 */

export interface ResumeOptions {
  /** Delete old secrets whose grace has passed (rotate does; apply leaves that to rotate). */
  finishDueDeletions: boolean;
  /** Live clients per account as just listed; accounts missing here are listed when needed. */
  live?: ReadonlyMap<string, readonly LiveClient[]>;
  /**
   * Per account, clients a GET answered 404 for (engine/live.ts): their journal entries are dropped.
   * Absence from `live` alone never drops an entry: a list answer can leave clients out.
   */
  gone?: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface ResumeReport {
  results: SecretOpResult[];
  /** True when anything was written to the API, a sink or the inventory (callers re-read live). */
  changed: boolean;
}

/**
 * Finishes what earlier runs left in the journal (see the module comment). Blocked entries (a rotation
 * whose new secret was lost) are reported, not touched.
 */
export async function resumeJournal(deps: SecretDeps, options: ResumeOptions): Promise<ResumeReport> {
  const entries = await compactJournal(deps.journal, options.gone);
  const live = await withCreateAccounts(entries, options.live, deps.reader);
  const ops = planResume({
    entries,
    live,
    inventory: deps.inventory.current,
    now: deps.now(),
    finishDueDeletions: options.finishDueDeletions,
  });
  return runResume(ops, entries, live, deps);
}

/** Removes what {@link compactEntries} says is superseded or moot; resolves to the entries kept. */
export async function compactJournal(
  journal: JournalStore,
  gone: ReadonlyMap<string, ReadonlySet<string>> | undefined,
): Promise<JournalEntry[]> {
  const { kept, removed } = compactEntries(await journal.list(), gone);
  for (const e of removed) await journal.remove(e.id);
  return kept;
}

/**
 * Carries out the resume stage, four entries at a time. A sink that failed a publish in this run makes
 * its other pending secrets wait for the next run (they stay in the journal; the old secrets stay valid).
 */
export async function runResume(
  ops: readonly SecretOp[],
  entries: readonly JournalEntry[],
  live: ReadonlyMap<string, readonly LiveClient[]>,
  deps: SecretDeps,
): Promise<ResumeReport> {
  const byId = new Map(entries.map((e) => [e.id, e]));
  const failingSinks = new Set<string>();
  let changed = false;
  const settled = await mapSettledBounded(ops, 4, async (op): Promise<SecretOpResult> => {
    const entry = byId.get(op.entry_id ?? "");
    if (!entry)
      return failedResult(op, new Error(`journal entry ${op.entry_id ?? "?"} is not in the journal`));
    if (entry.blocked === "secret-lost") return secretLostResult(entry);
    if (entry.step === "minted" && failingSinks.has(entry.target.sink)) {
      return {
        ...entryRef(entry),
        status: "failed",
        code: "E_SECRET_UNPUBLISHED",
        message: `sink=${entry.target.sink} failed earlier in this run; the new secret stays in the journal for the next run`,
      };
    }
    try {
      const outcome = await executeOp(op, entry, deps, { live: live.get(entry.account_id) });
      changed ||= outcome.status !== "waiting" || outcome.did.length > 0;
      return resultOf(outcome);
    } catch (error) {
      changed = true;
      if (error instanceof SinkError) failingSinks.add(entry.target.sink);
      return failedResult(entryRef(entry), error);
    }
  });
  const results = settled.map((o, i) =>
    o.status === "fulfilled" ? o.value : failedResult(ops[i] as SecretOp, o.reason),
  );
  for (const r of results) logResult(deps.logger, r, "resumed");
  await deps.inventory.flush();
  return { results, changed };
}

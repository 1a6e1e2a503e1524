import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parsePlan } from "../core/plan-schema.js";
import type { Plan } from "../core/plan-types.js";
import { reconcileOnce } from "../engine/reconcile.js";
import type { ChangeResult } from "../engine/apply.js";
import { FileInventoryStore } from "../state/inventory.js";
import { FileJournalStore } from "../state/journal.js";
import { describeSecretResult } from "./rotate.js";
import { GitOpsError } from "../errors.js";
import { buildReaderWriter, cliLogger } from "./api.js";
import { loadInput, sinkResolver } from "./common.js";
import type { VerbRun } from "./frame.js";
import { type CliContext, ExitCode } from "./io.js";
import { renderPlan, reportConflicts } from "./plan.js";
import type { APPLY } from "./verbs.js";

/**
 * `apply`: the only verb besides `rotate` and `run` that constructs the mutating client. Exit codes:
 * 0 everything applied, 1 any change failed or input was bad (nothing applied for bad input) or the
 * plan has conflicts (the other changes are applied; the conflicted clients are left untouched), 3 the
 * plan was refused as unsafe (nothing applied).
 */
export const runApply: VerbRun<typeof APPLY> = async (ctx, values) => {
  const format = values.format;
  const savedPlan = values.plan ? await readSavedPlan(resolve(ctx.cwd, values.plan)) : undefined;
  const input = await loadInput(ctx, values);
  const logger = cliLogger(ctx, values["log-level"]);
  const api = buildReaderWriter(ctx, logger);
  try {
    const result = await reconcileOnce(
      {
        reader: api,
        writer: api,
        inventoryStore: new FileInventoryStore(input.config.state_dir),
        journal: new FileJournalStore(input.config.state_dir),
        sinks: sinkResolver(input.config, logger, ctx.env),
        logger,
        now: ctx.clock,
      },
      {
        desired: input.desired,
        policy: input.policy,
        rotation: input.config.rotation,
        force: values.force,
        concurrency: values.concurrency,
        signal: ctx.signal,
        ...(savedPlan ? { savedPlan } : {}),
        onProgress: progressReporter(ctx),
      },
    );
    // Work an earlier, interrupted run left in the journal, finished before planning: a create whose
    // answer was lost, a secret minted but not yet published.
    for (const r of result.resumed) ctx.stdout.write(`${describeSecretResult(r)}\n`);
    const resumeFailed = result.resumed.some((r) => r.status === "failed" || r.status === "attention");
    ctx.stdout.write(renderPlan(result.plan, format, ctx, values["no-color"]));
    const report = result.apply;
    const conflicted = reportConflicts(result.plan, ctx);
    if (!report) {
      ctx.stdout.write("Nothing to apply.\n");
      return resumeFailed || conflicted ? ExitCode.error : ExitCode.ok;
    }
    for (const line of report.results.map(describeResult)) ctx.stdout.write(`${line}\n`);
    ctx.stdout.write(
      `Apply: ${report.applied} applied, ${report.failed} failed` +
        (report.adopted ? `, ${report.adopted} adopted` : "") +
        (report.forgotten ? `, ${report.forgotten} stale inventory entries dropped` : "") +
        ".\n",
    );
    return report.failed > 0 || resumeFailed || conflicted ? ExitCode.error : ExitCode.ok;
  } finally {
    await api.close();
  }
};

/** `N of M` on stderr, for applies long enough to need it (more than 10 changes). */
function progressReporter(ctx: CliContext) {
  return (done: number, total: number, result: ChangeResult): void => {
    if (total <= 10) return;
    if (done === total || done % 10 === 0 || result.status === "failed") {
      ctx.stderr.write(`progress: ${done} of ${total}\n`);
    }
  };
}

/** One line per change: what, on which client, and where its secret went or why it failed. */
export function describeResult(result: ChangeResult): string {
  const target = `[${result.account_id}/${result.client_name}]`;
  if (result.status === "failed") {
    return `✗ ${result.kind} ${target}: ${result.error?.message ?? "failed"} [${result.error?.code ?? "E_UNEXPECTED"}]`;
  }
  const where = result.secret_location ? `; secret written to ${result.secret_location}` : "";
  return `✓ ${result.kind} ${target}${result.client_id ? ` ${result.client_id}` : ""}${where}`;
}

/** Reads a plan saved by `plan --out`. */
export async function readSavedPlan(path: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new GitOpsError("E_PLAN_READ", `cannot read plan ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new GitOpsError("E_PLAN_READ", `${path} is not a saved plan: ${(error as Error).message}`);
  }
  return parsePlan(value, path);
}

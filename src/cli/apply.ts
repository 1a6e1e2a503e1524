import { resolve } from "node:path";
import { reconcileOnce } from "../engine/reconcile.js";
import type { ChangeResult } from "../engine/apply.js";
import { FileInventoryStore } from "../state/inventory.js";
import { FileJournalStore } from "../state/journal.js";
import { describeSecretResult } from "./rotate.js";
import {
  buildReaderWriter,
  cliLogger,
  COMMON_OPTIONS,
  loadInput,
  parseFlags,
  sinkResolver,
} from "./common.js";
import { type CliContext, type Command, ExitCode } from "./io.js";
import { parseFormat, readSavedPlan, renderPlan, reportConflicts } from "./plan.js";
import { GitOpsError } from "../errors.js";

const USAGE = `usage: cf-oauth-gitops apply [-c FILE] [--state-dir DIR] [--plan FILE] [--force]
                             [--concurrency N] [--format text|markdown|json] [--no-color]

Plans, then applies: creates and patches first, deletes last. Secrets of new clients go to their sinks.
  --plan FILE   apply only if the account still matches this reviewed plan (saved by 'plan --out')
  --force       apply even when a safety valve refuses the plan`;

/**
 * `apply`: the only verb besides `rotate` and `run` that constructs the mutating client. Exit codes:
 * 0 everything applied, 1 any change failed or input was bad (nothing applied for bad input) or the
 * plan has conflicts (the other changes are applied; the conflicted clients are left untouched), 3 the
 * plan was refused as unsafe (nothing applied).
 */
export const applyCommand: Command = async (ctx) => {
  const { values } = parseFlags("apply", ctx.args, {
    ...COMMON_OPTIONS,
    plan: { type: "string" },
    force: { type: "boolean" },
    concurrency: { type: "string" },
    format: { type: "string" },
    "no-color": { type: "boolean" },
  });
  if (values.help) {
    ctx.stdout.write(`${USAGE}\n`);
    return ExitCode.ok;
  }
  const format = parseFormat(values.format);
  const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new GitOpsError("E_USAGE", `--concurrency must be a whole number from 1 to 64`);
  }
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
        force: values.force === true,
        concurrency,
        signal: ctx.signal,
        ...(savedPlan ? { savedPlan } : {}),
        onProgress: progressReporter(ctx),
      },
    );
    // Work an earlier, interrupted run left in the journal, finished before planning: a create whose
    // answer was lost, a secret minted but not yet published.
    for (const r of result.resumed) ctx.stdout.write(`${describeSecretResult(r)}\n`);
    const resumeFailed = result.resumed.some((r) => r.status === "failed" || r.status === "attention");
    ctx.stdout.write(renderPlan(result.plan, format, ctx, values["no-color"] === true));
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

import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parsePlan } from "../core/plan-schema.js";
import type { Plan } from "../core/plan-types.js";
import { reconcileOnce } from "../engine/reconcile.js";
import { GitOpsError } from "../errors.js";
import { renderJson } from "../render/json.js";
import { renderMarkdown } from "../render/markdown.js";
import { renderText } from "../render/text.js";
import { FileInventoryStore } from "../state/inventory.js";
import { FileJournalStore } from "../state/journal.js";
import { writeFileAtomic } from "../state/atomic.js";
import { buildReader, cliLogger, COMMON_OPTIONS, loadInput, parseFlags, sinkResolver } from "./common.js";
import { type CliContext, type Command, ExitCode } from "./io.js";

const USAGE = `usage: cf-oauth-gitops plan [-c FILE] [--state-dir DIR] [--format text|markdown|json]
                            [--out FILE] [--detailed-exitcode] [--no-color]

Lists the live clients and prints what apply would do. Reads only (a read-only token is enough).
  --out FILE            also save the plan (JSON, with its checksum) for 'apply --plan FILE'
  --detailed-exitcode   exit 2 when the plan has changes (0: none, 1: error, 3: unsafe)`;

/** Output formats a plan renders to. */
export type PlanFormat = "text" | "markdown" | "json";

/** Renders a plan for a stream: colour only on a terminal and never when NO_COLOR is set. */
export function renderPlan(plan: Plan, format: PlanFormat, ctx: CliContext, noColor: boolean): string {
  switch (format) {
    case "json":
      return renderJson(plan);
    case "markdown":
      return renderMarkdown(plan);
    case "text": {
      const tty = (ctx.stdout as { isTTY?: boolean }).isTTY === true;
      return renderText(plan, { color: tty && !noColor && ctx.env["NO_COLOR"] === undefined });
    }
  }
}

export function parseFormat(value: string | undefined): PlanFormat {
  const format = value ?? "text";
  if (format !== "text" && format !== "markdown" && format !== "json") {
    throw new GitOpsError("E_USAGE", `--format must be text, markdown or json, not '${format}'`);
  }
  return format;
}

/**
 * `plan`: never constructs the mutating client, so nothing it does can write (DESIGN.md, "Dry-run
 * decided once"). Exit codes: 0 no changes (or changes without --detailed-exitcode), 2 changes
 * pending with --detailed-exitcode, 3 the plan would be refused as unsafe, 1 any error or a conflict
 * ({@link reportConflicts}).
 */
export const planCommand: Command = async (ctx) => {
  const { values } = parseFlags("plan", ctx.args, {
    ...COMMON_OPTIONS,
    format: { type: "string" },
    out: { type: "string" },
    "detailed-exitcode": { type: "boolean" },
    "no-color": { type: "boolean" },
  });
  if (values.help) {
    ctx.stdout.write(`${USAGE}\n`);
    return ExitCode.ok;
  }
  const format = parseFormat(values.format);
  const input = await loadInput(ctx, values);
  const logger = cliLogger(ctx, values["log-level"]);
  const reader = buildReader(ctx, logger);
  try {
    const { plan } = await reconcileOnce(
      {
        reader,
        writer: null,
        inventoryStore: new FileInventoryStore(input.config.state_dir),
        journal: new FileJournalStore(input.config.state_dir),
        sinks: sinkResolver(input.config, logger, ctx.env),
        logger,
        now: ctx.clock,
      },
      { desired: input.desired, policy: input.policy, rotation: input.config.rotation, signal: ctx.signal },
    );
    ctx.stdout.write(renderPlan(plan, format, ctx, values["no-color"] === true));
    if (values.out) await writeFileAtomic(resolve(ctx.cwd, values.out), renderJson(plan), { mode: 0o644 });
    if (reportConflicts(plan, ctx)) return ExitCode.error;
    if (!plan.safety.ok) return ExitCode.unsafe;
    // 2 means the API would change. Adoptions and stale inventory entries touch only the local
    // inventory, so an account adopted with `export` plans to 0 (README, "Desired state").
    return values["detailed-exitcode"] && plan.changes.length > 0 ? ExitCode.changesPending : ExitCode.ok;
  } finally {
    await reader.close();
  }
};

/**
 * A conflict is desired state that cannot be realised as written (a pinned `client_id` no live client
 * has, a name two live clients share, a field the API cannot change back): the plan holds those
 * clients untouched, and the run must not pass as if all were well, or a pull request with a wrong pin
 * merges green. Says so on stderr with a stable code and returns true; `plan` and `apply` then exit 1,
 * ahead of 3 (unsafe) and 2 (changes pending), because neither `--force` nor another run can fix it:
 * only an edit to the desired files can.
 */
export function reportConflicts(plan: Plan, ctx: CliContext): boolean {
  const count = plan.conflicts.length;
  if (count === 0) return false;
  ctx.stderr.write(
    `E_PLAN_CONFLICTS: ${count} ${count === 1 ? "conflict" : "conflicts"}: the desired state cannot be ` +
      `realised as written (listed under Conflicts in the plan); the clients concerned were left untouched\n`,
  );
  return true;
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

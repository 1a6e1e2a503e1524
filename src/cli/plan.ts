import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { DEFAULT_OWNERSHIP_REF } from "../config/schema.js";
import type { ReconcilerConfig } from "../config/types.js";
import type { Plan } from "../core/plan-types.js";
import type { OwnershipForPlan } from "../engine/ownership-ref.js";
import { reconcileOnce } from "../engine/reconcile.js";
import { renderJson } from "../render/json.js";
import { renderMarkdown } from "../render/markdown.js";
import { renderText } from "../render/text.js";
import { FileInventoryStore, type InventoryStore } from "../state/inventory.js";
import { FileJournalStore } from "../state/journal.js";
import { writeFileAtomic } from "../state/atomic.js";
import { buildReader, cliLogger } from "./api.js";
import { loadInput, sinkResolver } from "./common.js";
import type { VerbRun } from "./frame.js";
import { type CliContext, ExitCode } from "./io.js";
import type { PLAN } from "./verbs.js";

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

/**
 * `plan`: never constructs the mutating client, so nothing it does can write (docs/DESIGN.md, "Dry-run
 * decided once"). Exit codes: 0 no changes (or changes without --detailed-exitcode), 2 changes
 * pending with --detailed-exitcode, 3 the plan would be refused as unsafe, 1 any error or a conflict
 * ({@link reportConflicts}).
 */
export const runPlan: VerbRun<typeof PLAN> = async (ctx, values) => {
  const format = values.format;
  const input = await loadInput(ctx, values);
  const ownership = await openOwnership(
    input.config,
    values.ownership ?? (input.config.ownership ? "git" : "state"),
    ctx,
  );
  const logger = cliLogger(ctx, values["log-level"]);
  const reader = buildReader(ctx, logger);
  try {
    const { plan } = await reconcileOnce(
      {
        reader,
        writer: null,
        inventoryStore: ownership.store,
        journal: new FileJournalStore(input.config.state_dir),
        sinks: sinkResolver(input.config, logger, ctx.env),
        logger,
        now: ctx.clock,
      },
      { desired: input.desired, policy: input.policy, rotation: input.config.rotation, signal: ctx.signal },
    );
    const warning = ownershipWarning(plan, ownership);
    if (warning) ctx.stderr.write(`warning [W_OWNERSHIP_UNKNOWN]: ${warning}\n`);
    ctx.stdout.write(renderPlan(plan, format, ctx, values["no-color"]));
    ctx.stdout.write(ownershipNote(format, ownership, warning));
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

/** Where a plan's ownership came from (`--ownership`; `git` by default when the config has `ownership.git`). */
export type OwnershipSource = "state" | "git";

/** The inventory a plan reads, and what the plan's note says about it. */
interface PlanOwnership {
  store: InventoryStore;
  /** The published record (`git`). */
  record: OwnershipForPlan | null;
  /** `state`: the state file, and whether it exists. */
  stateFile: { path: string; exists: boolean } | null;
  configured: boolean;
}

/**
 * Reads the ownership record before anything else: with `git`, a record that cannot be read ends the
 * plan with E_OWNERSHIP_UNREADABLE (exit 1) before a single API call, since planning without it would
 * show owned clients as unmanaged.
 */
async function openOwnership(
  config: ReconcilerConfig,
  source: OwnershipSource,
  ctx: CliContext,
): Promise<PlanOwnership> {
  const configured = config.ownership !== undefined;
  if (source === "git") {
    // Only a plan from the published record needs git (and the code that reads it).
    const { readOwnershipForPlan, ReadOnlyInventoryStore } = await import("../engine/ownership-ref.js");
    const ref = config.ownership?.git.ref ?? DEFAULT_OWNERSHIP_REF;
    const record = await readOwnershipForPlan(config, ref, ctx.env, ctx.signal);
    return { store: new ReadOnlyInventoryStore(record.inventory), record, stateFile: null, configured };
  }
  const store = new FileInventoryStore(config.state_dir);
  const exists = await access(store.path).then(
    () => true,
    () => false,
  );
  return { store, record: null, stateFile: { path: store.path, exists }, configured };
}

/**
 * A plan from the state directory when there is no inventory file: fine on first use, but in a fresh
 * CI checkout of an account `run` manages, every client the daemon owns shows as adopted or
 * unmanaged and the deletes a merge makes are missing. Not an error (a first plan, or an account
 * managed by hand, looks the same), but said on stderr and in the rendered plan whenever live clients
 * would have been owned had a record said so (README, Plans in CI). Null when there is nothing to say.
 */
export function ownershipWarning(plan: Plan, ownership: PlanOwnership): string | null {
  if (!ownership.stateFile || ownership.stateFile.exists) return null;
  const count = plan.adoptions.length + plan.unmanaged.length;
  if (count === 0) return null;
  return (
    `no ownership record: ${ownership.stateFile.path} does not exist` +
    (ownership.configured ? " (--ownership state)" : " and the config has no ownership.git") +
    `, so ${count} live ${count === 1 ? "client is" : "clients are"} shown as not owned by this tool. ` +
    "If cf-oauth-gitops run manages this account, its record is in its own state directory and this " +
    "plan may not show the deletes it will make: configure ownership.git so run publishes it"
  );
}

/** One line after the plan naming the ownership record used (text, markdown; JSON stays the plan). */
function ownershipNote(format: PlanFormat, ownership: PlanOwnership, warning: string | null): string {
  if (format === "json") return "";
  const record = ownership.record;
  if (format === "markdown") {
    if (warning) return `\n> [!WARNING]\n> ${escapeMarkdown(warning)}.\n`;
    if (!record) return "";
    return (
      `<sub>ownership record <code>${escapeMarkdown(record.ref)}</code> at <code>${record.commit.slice(0, 12)}</code>` +
      `${record.revision ? ` (published after <code>${record.revision.slice(0, 12)}</code>)` : ""}` +
      `, ${ownedCount(record)} owned clients</sub>\n`
    );
  }
  if (warning) return `\nWarning: ${warning}.\n`;
  if (!record) return "";
  return (
    `\nOwnership: ${record.ref} at ${record.commit.slice(0, 12)} from ${record.where}` +
    `${record.revision ? `, published after ${record.revision.slice(0, 12)}` : ""}` +
    `${record.published_at ? ` at ${record.published_at}` : ""}: ${ownedCount(record)} owned clients.\n`
  );
}

function ownedCount(record: OwnershipForPlan): number {
  return Object.values(record.inventory.accounts).reduce((n, entries) => n + entries.length, 0);
}

function escapeMarkdown(text: string): string {
  return text.replace(/[&<>`*_[\]|\\]/g, (c) => `&#${c.charCodeAt(0)};`);
}

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

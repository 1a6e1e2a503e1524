import type { Plan, PlanItem } from "../core/plan-types.js";
import {
  CHANGE_SIGN,
  attentionLine,
  changeDetails,
  changeHead,
  formatSource,
  groupByAccount,
  itemLine,
  str,
  rotationLines,
  summaryLine,
} from "./format.js";

/**
 * The terminal rendering of a plan, shaped like `terraform plan`: changes per account with `+`/`~`/`-`
 * markers and `old -> new` per field, then what needs a human (conflicts, pending promotions), what is
 * left alone, the safety verdict, and the summary line. ANSI colour only when the caller asks (a TTY
 * without NO_COLOR); the decision is made at the edge, never here.
 */
export interface TextOptions {
  color: boolean;
}

const ANSI = { red: 31, green: 32, yellow: 33, cyan: 36, bold: 1, dim: 2 } as const;
type Style = keyof typeof ANSI;

export function renderText(plan: Plan, options: TextOptions): string {
  const paint = (style: Style, text: string) => (options.color ? `\x1b[${ANSI[style]}m${text}\x1b[0m` : text);
  const out: string[] = [];
  for (const section of groupByAccount(plan)) {
    if (section.changes.length === 0 && section.adoptions.length === 0) continue;
    out.push(paint("bold", `account ${str(section.account_id)}`));
    for (const change of section.changes) {
      const style: Style = change.kind === "create" ? "green" : change.kind === "update" ? "yellow" : "red";
      const at = change.source ? paint("dim", `  [${formatSource(change.source)}]`) : "";
      out.push(`  ${paint(style, `${CHANGE_SIGN[change.kind]} ${changeHead(change)}`)}${at}`);
      for (const line of changeDetails(change)) out.push(`      ${line}`);
    }
    for (const a of section.adoptions) {
      out.push(
        `  ${paint("cyan", `> adopt ${JSON.stringify(str(a.client_name))} (id ${str(a.client_id)})`)}`,
      );
    }
    out.push("");
  }
  const lists: [string, Style, string, PlanItem[]][] = [
    ["Conflicts", "red", "!", plan.conflicts],
    ["Pending", "yellow", "…", plan.pending],
    ["Orphaned (owned, no longer desired)", "cyan", "?", plan.orphaned],
    ["Unmanaged (never touched)", "dim", " ", plan.unmanaged],
    ["Skipped", "dim", " ", plan.skipped],
  ];
  for (const [title, style, mark, items] of lists) {
    if (items.length === 0) continue;
    out.push(paint("bold", `${title}:`));
    for (const i of items) out.push(`  ${paint(style, mark)} ${str(i.account_id)} ${itemLine(i)}`);
    out.push("");
  }
  if (plan.stale_inventory.length > 0) {
    out.push(paint("bold", "Inventory entries whose client no longer exists (dropped on apply):"));
    for (const s of plan.stale_inventory) {
      out.push(`    ${str(s.account_id)} ${JSON.stringify(str(s.client_name))} (id ${str(s.client_id)})`);
    }
    out.push("");
  }
  if (plan.rotations.length > 0) {
    out.push(paint("bold", "Secret rotations (carried out by `rotate`, not by apply):"));
    for (const line of rotationLines(plan)) out.push(`    ${line}`);
    out.push("");
  }
  out.push(...safetyLines(plan, paint));
  if (plan.changes.length === 0 && plan.adoptions.length === 0) out.push("No changes.");
  const attention = attentionLine(plan);
  out.push(paint("bold", summaryLine(plan)) + (attention ? ` (${attention})` : ""));
  return `${out.join("\n")}\n`;
}

function safetyLines(plan: Plan, paint: (style: Style, text: string) => string): string[] {
  const { ok, violations } = plan.safety;
  if (violations.length === 0) return [];
  const head = ok
    ? paint("yellow", "Safety: overridden by --force")
    : paint("red", "Safety: refused (use --force to apply anyway)");
  const lines = [paint("bold", head)];
  for (const v of violations) {
    const mark = v.overridden ? paint("yellow", "!") : paint("red", "✗");
    lines.push(`  ${mark} [${str(v.rule)}] ${str(v.message)}${v.overridden ? " (overridden)" : ""}`);
  }
  lines.push("");
  return lines;
}

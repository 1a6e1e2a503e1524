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
  type AccountSection,
} from "./format.js";

/**
 * The pull-request comment rendering (Atlantis / tfcmt style): the summary and a per-account table
 * first, so a reviewer sees the size of the change without expanding anything; then one `<details>`
 * block per account holding a `diff` fence (updates marked `!` so GitHub colours them). Everything that
 * comes from user data sits inside a fence or is HTML-escaped. GitHub caps a comment at 65,536
 * characters; the output stays under `maxBytes` (UTF-8 bytes) and ends with a note when cut.
 */
export interface MarkdownOptions {
  /** Upper bound on the output size in UTF-8 bytes. Default 60,000. */
  maxBytes?: number;
}

/** Bytes kept free for the truncation note. */
const NOTE_RESERVE = 400;

export function renderMarkdown(plan: Plan, options: MarkdownOptions = {}): string {
  const maxBytes = options.maxBytes ?? 60_000;
  const sections = groupByAccount(plan);
  const budget = new Budget(maxBytes - NOTE_RESERVE);
  budget.add(headerText(plan));
  for (const row of tableRows(plan, sections)) budget.add(row);
  budget.add("\n");
  budget.add(safetyText(plan));
  budget.add(rotationsText(plan));
  budget.add(`<sub>checksum <code>${escapeHtml(str(plan.checksum))}</code></sub>\n\n`);
  let shown = 0;
  for (const section of sections) {
    if (!budget.addBlock(accountBlock(section))) break;
    shown++;
  }
  let text = budget.text();
  if (budget.truncated) {
    text +=
      `\n> **Note:** this comment was cut to stay under ${maxBytes} bytes; ` +
      `${shown} of ${sections.length} accounts are shown in full. Run \`cf-oauth-gitops plan\` for the whole plan.\n`;
  }
  return cutToBytes(text, maxBytes);
}

function headerText(plan: Plan): string {
  const attention = attentionLine(plan);
  return `## cf-oauth-gitops plan\n\n**${summaryLine(plan)}**${attention ? ` ${attention}.` : ""}\n\n`;
}

const COLUMNS = ["Create", "Update", "Delete", "Adopt", "Conflicts", "Pending", "Orphaned", "Unmanaged"];

function counts(
  s: Pick<AccountSection, "changes" | "adoptions" | "conflicts" | "pending" | "orphaned" | "unmanaged">,
) {
  const kind = (k: string) => s.changes.filter((c) => c.kind === k).length;
  return [
    kind("create"),
    kind("update"),
    kind("delete"),
    s.adoptions.length,
    s.conflicts.length,
    s.pending.length,
    s.orphaned.length,
    s.unmanaged.length,
  ];
}

function tableRows(plan: Plan, sections: AccountSection[]): string[] {
  const rows = [
    `| Account | ${COLUMNS.join(" | ")} |\n`,
    `| --- |${COLUMNS.map(() => " ---: |").join("")}\n`,
  ];
  for (const s of sections)
    rows.push(`| <code>${escapeHtml(s.account_id)}</code> | ${counts(s).join(" | ")} |\n`);
  const total = counts(plan);
  rows.push(`| **Total** | ${total.map((n) => `**${n}**`).join(" | ")} |\n`);
  return rows;
}

/** Secret rotations as a short list; empty when there are none. */
function rotationsText(plan: Plan): string {
  const lines = rotationLines(plan);
  if (lines.length === 0) return "";
  return `**Secret rotations** (carried out by \`rotate\`, not by apply):\n\n${lines.map((l) => `- ${escapeHtml(l)}`).join("\n")}\n\n`;
}

function safetyText(plan: Plan): string {
  const { ok, violations } = plan.safety;
  if (violations.length === 0) return "";
  const head = ok
    ? "**Safety: overridden by `--force`**"
    : "**Safety: refused** (use `--force` to apply anyway)";
  const lines = violations.map(
    (v) => `- \`${v.rule}\`: ${escapeHtml(str(v.message))}${v.overridden ? " _(overridden)_" : ""}`,
  );
  return `${head}\n\n${lines.join("\n")}\n\n`;
}

/** An account's `<details>` block as head, body lines and tail, so it can be cut between lines. */
interface Block {
  head: string;
  lines: string[];
  tail: string;
}

function accountBlock(section: AccountSection): Block {
  const lines: string[] = [];
  for (const change of section.changes) {
    const sign = change.kind === "update" ? "!" : CHANGE_SIGN[change.kind];
    const at = change.source ? `  [${formatSource(change.source)}]` : "";
    lines.push(`${sign} ${changeHead(change)}${at}`);
    for (const d of changeDetails(change)) lines.push(`${sign}     ${d}`);
  }
  for (const a of section.adoptions) {
    lines.push(`  adopt ${JSON.stringify(str(a.client_name))} (id ${str(a.client_id)})`);
  }
  const lists: [string, PlanItem[]][] = [
    ["conflicts", section.conflicts],
    ["pending", section.pending],
    ["orphaned (owned, no longer desired)", section.orphaned],
    ["unmanaged (never touched)", section.unmanaged],
    ["skipped", section.skipped],
  ];
  for (const [title, items] of lists) {
    if (items.length === 0) continue;
    lines.push(`# ${title}`);
    for (const i of items) lines.push(`  ${itemLine(i)}`);
  }
  for (const s of section.stale_inventory) {
    lines.push(`# stale inventory entry: ${JSON.stringify(str(s.client_name))} (id ${str(s.client_id)})`);
  }
  const fence = fenceFor(lines);
  const c = counts(section);
  const parts = [`${c[0]} to create, ${c[1]} to update, ${c[2]} to delete`];
  if (c[4]) parts.push(`${c[4]} ${c[4] === 1 ? "conflict" : "conflicts"}`);
  if (c[5]) parts.push(`${c[5]} pending`);
  const open = section.conflicts.length > 0 || section.pending.length > 0 ? " open" : "";
  return {
    head: `<details${open}><summary>Account <code>${escapeHtml(section.account_id)}</code>: ${parts.join(", ")}</summary>\n\n${fence}diff\n`,
    lines: lines.map((l) => `${l}\n`),
    tail: `${fence}\n\n</details>\n\n`,
  };
}

/** A backtick fence longer than any backtick run in the content, so user text cannot close it. */
function fenceFor(lines: readonly string[]): string {
  let longest = 0;
  for (const line of lines)
    for (const run of line.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return "`".repeat(Math.max(3, longest + 1));
}

/** Escapes text for HTML and for a Markdown table cell. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/\|/g, "&#124;");
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Appends pieces while they fit; the first piece that does not fit ends the output. */
class Budget {
  readonly #parts: string[] = [];
  #used = 0;
  truncated = false;

  constructor(readonly limit: number) {}

  add(piece: string): boolean {
    if (this.truncated || this.#used + byteLength(piece) > this.limit) {
      this.truncated = true;
      return false;
    }
    this.#parts.push(piece);
    this.#used += byteLength(piece);
    return true;
  }

  /** Adds a whole block, or as many of its lines as fit (then marks the output truncated). */
  addBlock(block: Block): boolean {
    if (this.truncated) return false;
    const whole = block.head + block.lines.join("") + block.tail;
    if (this.add(whole)) return true;
    this.truncated = false;
    let room = this.limit - this.#used - byteLength(block.head) - byteLength(block.tail) - 80;
    const kept: string[] = [];
    for (const line of block.lines) {
      const size = byteLength(line);
      if (size > room) break;
      kept.push(line);
      room -= size;
    }
    if (kept.length > 0) {
      const omitted = `… ${block.lines.length - kept.length} more lines not shown\n`;
      this.add(block.head + kept.join("") + omitted + block.tail);
    }
    this.truncated = true;
    return false;
  }

  text(): string {
    return this.#parts.join("");
  }
}

/** Cuts text to at most `max` UTF-8 bytes without splitting a character (last resort for tiny caps). */
function cutToBytes(text: string, max: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return text;
  let end = Math.max(0, max);
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

import { Secret } from "../secret.js";
import type { SourceLocation } from "../core/model.js";
import type {
  Adoption,
  Change,
  Plan,
  PlanItem,
  RotationItem,
  StaleInventoryEntry,
} from "../core/plan-types.js";
import { compareStrings } from "../core/sort.js";

/**
 * Helpers shared by the plan renderers. Values are printed through `formatValue` only, which turns any
 * `Secret` into `[REDACTED]` even if one were smuggled into a plan: a plan never holds a secret by
 * construction, and the renderers do not rely on that alone.
 */

const REDACTED = "[REDACTED]";

/** One value as JSON-ish text: strings quoted, arrays inline, null for unset, secrets redacted. */
export function formatValue(value: unknown): string {
  if (value instanceof Secret) return REDACTED;
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(formatValue).join(", ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${JSON.stringify(k)}: ${formatValue(v)}`,
    );
    return `{${entries.join(", ")}}`;
  }
  return String(value);
}

/** Text from a plan field that should be a plain string (names, ids, reasons): secrets redacted. */
export function str(value: unknown): string {
  if (value instanceof Secret) return REDACTED;
  return typeof value === "string" ? value : formatValue(value);
}

/** `file:line:col`. */
export function formatSource(source: SourceLocation | undefined): string {
  return source ? `${str(source.file)}:${source.line}:${source.col}` : "";
}

/** `Plan: 2 to create, 1 to update, 0 to delete.` */
export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  return `Plan: ${s.create} to create, ${s.update} to update, ${s.delete} to delete.`;
}

/** The non-change counts worth a mention, e.g. `1 conflict, 2 pending`. Empty when there are none. */
export function attentionLine(plan: Plan): string {
  const s = plan.summary;
  const parts: string[] = [];
  const add = (n: number, one: string, many: string) => {
    if (n > 0) parts.push(`${n} ${n === 1 ? one : many}`);
  };
  add(s.conflicts, "conflict", "conflicts");
  add(s.pending, "pending", "pending");
  add(s.adoptions, "adoption", "adoptions");
  add(s.orphaned, "orphaned", "orphaned");
  add(s.unmanaged, "unmanaged", "unmanaged");
  add(s.skipped, "skipped", "skipped");
  add(s.stale_inventory, "stale inventory entry", "stale inventory entries");
  const blocked = plan.rotations.filter((r) => r.blocked).length;
  add(plan.rotations.length - blocked, "secret operation for rotate", "secret operations for rotate");
  add(blocked, "secret left alone by rotate", "secrets left alone by rotate");
  return parts.join(", ");
}

/**
 * One line per rotation item: what the next `rotate` does for a client, action by action, in the
 * words `rotate --dry-run` uses for the same operation (src/core/plan-rotations.ts). Rotations are
 * carried out by `rotate`, never by `apply`, and are not part of the checksum.
 */
export function rotationLines(plan: Plan): string[] {
  return plan.rotations.map((r) => {
    const id = r.client_id !== null ? ` (id ${str(r.client_id)})` : "";
    const phase = r.phase ? ` [${str(r.phase)}${r.due_at ? ` since ${str(r.due_at)}` : ""}]` : "";
    const what = r.stage === "resume" ? "resume" : "rotate";
    return (
      `${str(r.account_id)} ${JSON.stringify(str(r.client_name))}${id}${phase}: ${what}: ` +
      r.actions.map((kind) => rotationActionText(kind, r)).join("; ")
    );
  });
}

/** One action of a rotation item in words (the plan keeps the kind; the details it keeps are here). */
function rotationActionText(kind: RotationItem["actions"][number], r: RotationItem): string {
  switch (kind) {
    case "start":
      return "start a rotation (preflight the sink)";
    case "recover":
      return "delete the rotated secret (recover)";
    case "find-created":
      return "take the client the interrupted create made";
    case "drop":
      return "forget the interrupted create (apply plans it again)";
    case "mint":
      return "mint a new secret";
    case "publish":
      return "publish it to the sink and read it back";
    case "delete-old-secret":
      return "delete the old secret";
    case "close":
      return "close the journal entry";
    case "wait":
      return `keep the old secret valid until ${str(r.wait_until ?? "?")}`;
    case "blocked":
      return r.blocked
        ? `left alone${r.blocked.code ? ` [${str(r.blocked.code)}]` : ""}: ${str(r.blocked.reason)}`
        : "left alone";
    case "none":
      return "nothing to do";
  }
}

/** Everything the plan says about one account. */
export interface AccountSection {
  account_id: string;
  changes: Change[];
  adoptions: Adoption[];
  conflicts: PlanItem[];
  pending: PlanItem[];
  orphaned: PlanItem[];
  unmanaged: PlanItem[];
  skipped: PlanItem[];
  stale_inventory: StaleInventoryEntry[];
}

type ListKey = Exclude<keyof AccountSection, "account_id">;

/** Groups a plan by account (sorted), keeping each list's plan order. */
export function groupByAccount(plan: Plan): AccountSection[] {
  const sections = new Map<string, AccountSection>();
  const section = (id: string): AccountSection => {
    let s = sections.get(id);
    if (!s) {
      s = {
        account_id: id,
        changes: [],
        adoptions: [],
        conflicts: [],
        pending: [],
        orphaned: [],
        unmanaged: [],
        skipped: [],
        stale_inventory: [],
      };
      sections.set(id, s);
    }
    return s;
  };
  const lists: ListKey[] = [
    "changes",
    "adoptions",
    "conflicts",
    "pending",
    "orphaned",
    "unmanaged",
    "skipped",
    "stale_inventory",
  ];
  for (const key of lists) {
    for (const entry of plan[key]) (section(str(entry.account_id))[key] as unknown[]).push(entry);
  }
  return [...sections.values()].sort((a, b) => compareStrings(a.account_id, b.account_id));
}

/** Terraform's markers: `+` create, `~` update, `-` delete. */
export const CHANGE_SIGN: Record<Change["kind"], string> = { create: "+", update: "~", delete: "-" };

/** The head line of a change, without its marker: `update "app" (id 0f3…)`. */
export function changeHead(change: Change): string {
  const name = JSON.stringify(str(change.client_name));
  if (change.kind === "create") return `create ${name}`;
  const id = `(id ${str(change.client_id)})`;
  if (change.kind === "update") return `update ${name} ${id}`;
  return `delete ${name} ${id} [${str(change.reason)}]`;
}

/** The detail lines of a change: fields sent on create, `old -> new` per field on update. */
export function changeDetails(change: Change): string[] {
  if (change.kind === "delete") return [];
  const rows: [string, string][] =
    change.kind === "create"
      ? Object.entries(change.body as unknown as Record<string, unknown>).map(([k, v]) => [k, formatValue(v)])
      : change.fields.map((f) => [str(f.field), `${formatValue(f.old)} -> ${formatValue(f.new)}`]);
  if (change.kind === "create" && change.secret) {
    rows.push(["secret", `sink ${formatValue(change.secret.sink)}, key ${formatValue(change.secret.key)}`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length), 0) + 1;
  const lines = rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`);
  return lines;
}

/** One reported item: `"name" (id 0f3…): reason`. */
export function itemLine(item: Pick<PlanItem, "client_name" | "client_id" | "reason" | "source">): string {
  const id = item.client_id !== undefined ? ` (id ${str(item.client_id)})` : "";
  const at = item.source ? ` [${formatSource(item.source)}]` : "";
  return `${JSON.stringify(str(item.client_name))}${id}: ${str(item.reason)}${at}`;
}

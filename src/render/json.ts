import { WRITABLE_FIELDS } from "../api/oauth-clients.js";
import { Secret } from "../secret.js";
import type { Plan } from "../core/plan-types.js";

/**
 * The machine rendering: the versioned `Plan` as JSON with a stable key order, whatever order the plan
 * object was built or parsed in, so saved plans diff cleanly and scripts can rely on the layout. Known
 * keys come in schema order (the order of the type in `core/plan-types.ts`, API fields in
 * `WRITABLE_FIELDS` order); unknown keys follow alphabetically. A `Secret` prints as `[REDACTED]`.
 */
const KEY_ORDER: readonly string[] = [
  "version",
  "checksum",
  "summary",
  "safety",
  "changes",
  "conflicts",
  "pending",
  "orphaned",
  "unmanaged",
  "skipped",
  "adoptions",
  "stale_inventory",
  "rotations",
  // changes and items
  "kind",
  "stage",
  "status",
  "code",
  "rule",
  "ok",
  "account_id",
  "client_id",
  "client_name",
  "updated_at",
  "reason",
  "phase",
  "due_at",
  "actions",
  "wait_until",
  "blocked",
  "fields",
  "field",
  "old",
  "new",
  "body",
  ...WRITABLE_FIELDS,
  "visibility",
  "secret",
  "sink",
  "key",
  "source",
  "file",
  "line",
  "col",
  "path",
  // summary
  "create",
  "update",
  "delete",
  "stale_inventory",
  // safety
  "violations",
  "message",
  "count",
  "limit",
  "overridden",
];

const RANK = new Map<string, number>();
KEY_ORDER.forEach((k, i) => {
  if (!RANK.has(k)) RANK.set(k, i);
});

function compareKeys(a: string, b: string): number {
  const ra = RANK.get(a) ?? Number.MAX_SAFE_INTEGER;
  const rb = RANK.get(b) ?? Number.MAX_SAFE_INTEGER;
  if (ra !== rb) return ra - rb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A copy of a value with object keys in the stable order; secrets replaced by `[REDACTED]`. */
export function orderKeys(value: unknown): unknown {
  if (value instanceof Secret) return "[REDACTED]";
  if (Array.isArray(value)) return value.map(orderKeys);
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj).sort(compareKeys)) {
    if (obj[key] !== undefined) out[key] = orderKeys(obj[key]);
  }
  return out;
}

/** Pretty JSON of the plan with a trailing newline. */
export function renderJson(plan: Plan): string {
  return `${JSON.stringify(orderKeys(plan), null, 2)}\n`;
}

import { createHash } from "node:crypto";
import { PLAN_VERSION, type Change, type Plan } from "./plan-types.js";

/**
 * The plan checksum (octoDNS's `--plan-checksum`): `apply --plan FILE` recomputes the plan and refuses
 * to go on unless the checksum of what was reviewed still matches, so a client edited since the review
 * is never overwritten blindly. The hash covers what apply does (changes, adoptions, stale inventory
 * entries) and each touched live client's `updated_at`; it leaves out `source` locations (a comment
 * added to a YAML file must not invalidate a reviewed plan) and everything merely reported.
 */

/** JSON with object keys sorted at every level and `undefined` members dropped: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i] ?? null);
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  if (typeof (obj as { toJSON?: unknown }).toJSON === "function") {
    return canonicalJson((obj as { toJSON: () => unknown }).toJSON());
  }
  let out = "{";
  for (const key of Object.keys(obj).sort()) {
    const v = obj[key];
    if (v === undefined) continue;
    out += `${out.length === 1 ? "" : ","}${JSON.stringify(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

type Checksummed = Pick<Plan, "version" | "changes" | "adoptions" | "stale_inventory">;

/**
 * Feeds what the checksum covers to `emit`, one canonical JSON line per entry: the version, every change
 * (without `source`), every adoption and stale inventory entry, then each touched client as
 * `account/id@updated_at`, sorted. Line by line keeps a 10,000-change plan from building one huge string.
 */
export function writeChecksumPayload(plan: Checksummed, emit: (line: string) => void): void {
  emit(`version ${plan.version}\n`);
  const touched: string[] = [];
  for (const change of plan.changes) {
    emit(`change ${canonicalJson(withoutSource(change))}\n`);
    if (change.kind !== "create")
      touched.push(`${change.account_id}/${change.client_id}@${change.updated_at ?? ""}`);
  }
  for (const a of plan.adoptions)
    emit(`adopt ${canonicalJson([a.account_id, a.client_id, a.client_name])}\n`);
  for (const e of plan.stale_inventory)
    emit(`stale ${canonicalJson([e.account_id, e.client_id, e.client_name])}\n`);
  for (const t of touched.sort()) emit(`touched ${JSON.stringify(t)}\n`);
}

/** `sha256:<64 hex>` over the checksum payload. */
export function checksumOf(plan: Checksummed): string {
  const hash = createHash("sha256");
  writeChecksumPayload(plan, (line) => hash.update(line));
  return `sha256:${hash.digest("hex")}`;
}

function withoutSource(change: Change): Omit<Change, "source"> {
  const { source: _source, ...rest } = change;
  return rest;
}

export type PlanFreshness =
  | { fresh: true }
  | {
      fresh: false;
      /** `E_PLAN_VERSION`, `E_PLAN_TAMPERED` (file edited after saving) or `E_PLAN_STALE`. */
      code: "E_PLAN_VERSION" | "E_PLAN_TAMPERED" | "E_PLAN_STALE";
      message: string;
      /** What differs, one line each (at most 20), for the operator. */
      differences: string[];
    };

/**
 * Whether a saved (reviewed) plan may still be applied: same version, untouched since it was saved, and
 * the same checksum as the plan computed now. Pure: the caller turns a refusal into an error.
 */
export function verifyPlanFresh(saved: Plan, current: Plan): PlanFreshness {
  if (saved.version !== PLAN_VERSION) {
    return {
      fresh: false,
      code: "E_PLAN_VERSION",
      message: `saved plan has version ${String(saved.version)}; this build reads version ${PLAN_VERSION}`,
      differences: [],
    };
  }
  const recomputed = checksumOf(saved);
  if (recomputed !== saved.checksum) {
    return {
      fresh: false,
      code: "E_PLAN_TAMPERED",
      message: `saved plan was modified after it was written: it records ${saved.checksum} but its content hashes to ${recomputed}`,
      differences: [],
    };
  }
  if (saved.checksum === current.checksum) return { fresh: true };
  const differences = diffPlans(saved, current);
  return {
    fresh: false,
    code: "E_PLAN_STALE",
    message:
      `live state or desired state changed since the plan was saved (${saved.checksum} != ${current.checksum}); ` +
      `run plan again and review it: ${differences.slice(0, 3).join("; ")}`,
    differences,
  };
}

function changeKey(c: Change): string {
  return `${c.kind} ${c.account_id}/${c.client_name}`;
}

/** Human lines for what changed between two plans, by change key. */
function diffPlans(saved: Plan, current: Plan): string[] {
  const out: string[] = [];
  const before = new Map(saved.changes.map((c) => [changeKey(c), c]));
  const after = new Map(current.changes.map((c) => [changeKey(c), c]));
  for (const [key, c] of before) {
    const now = after.get(key);
    if (!now) out.push(`${key}: no longer planned`);
    else if (canonicalJson(withoutSource(c)) !== canonicalJson(withoutSource(now))) {
      const b = c.kind === "create" ? undefined : c.updated_at;
      const a = now.kind === "create" ? undefined : now.updated_at;
      out.push(
        b !== a ? `${key}: live updated_at ${b ?? "-"} -> ${a ?? "-"}` : `${key}: planned change differs`,
      );
    }
  }
  for (const key of after.keys()) if (!before.has(key)) out.push(`${key}: newly planned`);
  if (out.length === 0) out.push("adoptions or inventory clean-up differ");
  return out.slice(0, 20);
}

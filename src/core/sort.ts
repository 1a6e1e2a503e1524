import type { Change, ChangeKind, PlanItem } from "./plan-types.js";

/**
 * Deterministic ordering for everything in a plan. Plain code-unit comparison, never `localeCompare`:
 * the order (and so the checksum) must not depend on the machine's locale.
 */

/** Code-unit order of two strings. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const KIND_ORDER: Record<ChangeKind, number> = { create: 0, update: 1, delete: 2 };

/** octoDNS-style: by kind (create, update, delete), then account, client name, client id. */
export function compareChanges(a: Change, b: Change): number {
  return (
    KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
    compareStrings(a.account_id, b.account_id) ||
    compareStrings(a.client_name, b.client_name) ||
    compareStrings(a.kind === "create" ? "" : a.client_id, b.kind === "create" ? "" : b.client_id)
  );
}

/** Items (and adoptions, stale entries) by account, client name, client id, then code. */
export function compareItems(
  a: Pick<PlanItem, "account_id" | "client_name" | "client_id"> & { code?: string },
  b: Pick<PlanItem, "account_id" | "client_name" | "client_id"> & { code?: string },
): number {
  return (
    compareStrings(a.account_id, b.account_id) ||
    compareStrings(a.client_name, b.client_name) ||
    compareStrings(a.client_id ?? "", b.client_id ?? "") ||
    compareStrings(a.code ?? "", b.code ?? "")
  );
}

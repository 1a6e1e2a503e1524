import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { StateError } from "../errors.js";
import type { Inventory, InventoryEntry } from "../core/model.js";
import { writeFileAtomic } from "./atomic.js";

const INVENTORY_FILE = "inventory.json";

const inventorySchema = z.object({
  version: z.literal(1),
  accounts: z.record(
    z.string(),
    z.array(
      z.object({
        client_id: z.string(),
        client_name: z.string(),
        origin: z.enum(["created", "adopted"]),
        since: z.string(),
      }),
    ),
  ),
});

/**
 * The ownership inventory: which clients this tool created or adopted, per account. Ownership is
 * what `prune: owned` may delete and what lets a renamed entry find its client again, so it is
 * written atomically after every change that affects it.
 */
export interface InventoryStore {
  load(): Promise<Inventory>;
  save(inventory: Inventory): Promise<void>;
}

/** The inventory as `<state_dir>/inventory.json`. A missing file is an empty inventory. */
export class FileInventoryStore implements InventoryStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, INVENTORY_FILE);
  }

  async load(): Promise<Inventory> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { accounts: {} };
      throw new StateError("E_STATE_READ", `cannot read ${this.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return parseInventory(text, this.path);
  }

  async save(inventory: Inventory): Promise<void> {
    const body = serializeInventory(inventory);
    try {
      await writeFileAtomic(this.path, body, { mode: 0o600 });
    } catch (error) {
      throw new StateError("E_STATE_WRITE", `cannot write ${this.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

/**
 * The inventory as its file holds it: accounts and entries sorted, so the same ownership always gives
 * the same bytes (the published copy, engine/ownership-ref.ts, is compared byte for byte).
 */
export function serializeInventory(inventory: Inventory): string {
  const sorted: Record<string, InventoryEntry[]> = {};
  for (const account of Object.keys(inventory.accounts).sort()) {
    const entries = inventory.accounts[account] ?? [];
    sorted[account] = [...entries].sort((a, b) => a.client_id.localeCompare(b.client_id));
  }
  return `${JSON.stringify({ version: 1, accounts: sorted }, null, 2)}\n`;
}

/** Parses an inventory file's text; `where` names it in the `E_STATE_CORRUPT` message. */
export function parseInventory(text: string, where: string): Inventory {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new StateError("E_STATE_CORRUPT", `${where} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const result = inventorySchema.safeParse(parsed);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new StateError(
      "E_STATE_CORRUPT",
      `${where}: ${first?.path.join(".") ?? ""}: ${first?.message ?? "invalid inventory"}`,
    );
  }
  return { accounts: result.data.accounts };
}

/** Returns a copy of the inventory with the entry recorded (replacing one with the same id). */
export function withOwned(inventory: Inventory, accountId: string, entry: InventoryEntry): Inventory {
  const entries = (inventory.accounts[accountId] ?? []).filter((e) => e.client_id !== entry.client_id);
  return { accounts: { ...inventory.accounts, [accountId]: [...entries, entry] } };
}

/** Returns a copy of the inventory without the client. */
export function withoutOwned(inventory: Inventory, accountId: string, clientId: string): Inventory {
  const entries = (inventory.accounts[accountId] ?? []).filter((e) => e.client_id !== clientId);
  return { accounts: { ...inventory.accounts, [accountId]: entries } };
}

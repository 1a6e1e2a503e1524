import type { Inventory, InventoryEntry } from "../core/model.js";
import { type InventoryStore, withOwned, withoutOwned } from "../state/inventory.js";

/**
 * Holds the inventory in memory during an apply and writes it through the store, one write at a
 * time. Concurrent changes each record their outcome at once; writes that pile up behind one in
 * flight collapse into a single follow-up write, so 1,000 creates cost far fewer than 1,000 fsyncs
 * while every recorded entry still reaches disk before `flush()` resolves.
 */
export class InventoryRecorder {
  #current: Inventory;
  readonly #store: InventoryStore;
  #writing: Promise<void> | null = null;
  #dirty = false;

  constructor(store: InventoryStore, initial: Inventory) {
    this.#store = store;
    this.#current = initial;
  }

  get current(): Inventory {
    return this.#current;
  }

  own(accountId: string, entry: InventoryEntry): Promise<void> {
    this.#current = withOwned(this.#current, accountId, entry);
    return this.#schedule();
  }

  disown(accountId: string, clientId: string): Promise<void> {
    this.#current = withoutOwned(this.#current, accountId, clientId);
    return this.#schedule();
  }

  /** Resolves once everything recorded so far is on disk. */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  #schedule(): Promise<void> {
    this.#dirty = true;
    if (!this.#writing) this.#writing = this.#drain();
    return this.#writing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        await this.#store.save(this.#current);
      }
    } finally {
      this.#writing = null;
    }
  }
}

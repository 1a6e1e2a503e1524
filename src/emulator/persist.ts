import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { StateError } from "../errors.js";
import { writeFileAtomic } from "../state/atomic.js";

/**
 * The emulator's state file (`statePath`): whole-file JSON, written with the state directory's own
 * atomic write (src/state/atomic.ts: temp file, fsync, rename, fsync of the directory) so a crash
 * leaves either the old or the new state, never half of one.
 *
 * Writes are behind the responses and coalesced: a mutation marks the state dirty and one background
 * loop writes the latest state until nothing is dirty, pausing as long as the last write took so
 * serialising 10,000 clients (~70 ms) never takes more than half the event loop. `flush()` (called by
 * `stop()`, so SIGTERM too) waits until everything acknowledged is on disk. A SIGKILL can lose the
 * mutations of the last write interval; a per-response fsync of the whole file would make a
 * 10,000-client benchmark quadratic.
 */
export class StateFile {
  readonly path: string;
  readonly #snapshot: () => unknown;
  #dirty = false;
  #loop: Promise<void> | undefined;
  #failure: unknown;

  constructor(path: string, snapshot: () => unknown) {
    this.path = path;
    this.#snapshot = snapshot;
  }

  /** Reads the file; undefined when it does not exist yet. */
  async load(): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new StateError("E_EMULATOR_STATE", `state file ${this.path}: cannot read`, {
        cause: error,
        context: { path: this.path },
      });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new StateError("E_EMULATOR_STATE", `state file ${this.path}: not valid JSON`, {
        cause: error,
        context: { path: this.path },
      });
    }
  }

  /** Notes a mutation; the background loop writes it soon. */
  markDirty(): void {
    this.#dirty = true;
    this.#loop ??= this.#run().finally(() => {
      this.#loop = undefined;
    });
  }

  /** Resolves once every mutation marked so far is on disk; rejects if the last write failed. */
  async flush(): Promise<void> {
    while (this.#loop) await this.#loop;
    if (this.#failure !== undefined) {
      const failure = this.#failure;
      this.#failure = undefined;
      throw failure;
    }
  }

  async #run(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      const started = Date.now();
      try {
        await this.#writeNow();
        this.#failure = undefined;
      } catch (error) {
        this.#failure = error;
      }
      if (this.#dirty) await sleep(Math.min(1000, Date.now() - started));
    }
  }

  async #writeNow(): Promise<void> {
    try {
      await writeFileAtomic(this.path, JSON.stringify(this.#snapshot()), { mode: 0o600 });
    } catch (error) {
      throw new StateError("E_EMULATOR_STATE", `state file ${this.path}: cannot write`, {
        cause: error,
        context: { path: this.path },
      });
    }
  }
}

import { sep } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "../../log.js";
import type { Trigger } from "./types.js";

export interface WatchTriggerOptions {
  /** Directories or files to watch (absolute). */
  paths: string[];
  /** Absolute paths whose subtree never triggers (the state directory, secret directories). */
  ignore?: string[];
  /** Quiet time after the last event before the run is requested. Default 400 ms. */
  debounceMs?: number;
  /** A steady stream of events still requests a run this long after its first event. Default 5 s. */
  maxWaitMs?: number;
  /** Called once per settled burst with the number of events in it. */
  onChange: (events: number) => void;
  logger: Logger;
}

/** Directory names whose churn never means new desired state. */
const NOISE_SEGMENTS = new Set([".git", "node_modules"]);

/**
 * Watches the desired-state directory and requests a run once changes settle.
 *
 * The debounce is ours rather than chokidar's `awaitWriteFinish` (which polls every file it saw): a
 * `git checkout` that replaces hundreds of files, an editor's write-rename-delete dance, and a
 * Kubernetes ConfigMap update (new `..2024_...` directory, then the `..data` symlink swapped in one
 * rename) all arrive as bursts of events, and each burst becomes one request once the tree has been
 * quiet for `debounceMs`. A half-written file can still be read by a run that starts in between; the
 * write's own later event requests a follow-up run, which the queue coalesces. The run itself waits
 * for the files to hold still (engine/desired-snapshot.ts) and holds back the deletes it plans
 * (core/deferred-deletes.ts), so a half file never deletes clients.
 *
 * Hidden entries are deliberately not ignored: `..data` is how a ConfigMap update shows up.
 * Symlinks are followed so the files behind `..data` are watched too.
 */
export class WatchTrigger implements Trigger {
  readonly name = "watch";
  readonly #options: WatchTriggerOptions;
  #watcher: FSWatcher | null = null;
  #timer: NodeJS.Timeout | null = null;
  #firstEventAt = 0;
  #events = 0;

  constructor(options: WatchTriggerOptions) {
    this.#options = options;
  }

  /** Resolves once the initial scan is done, so a change made right after start is seen. */
  async start(): Promise<void> {
    const ignore = (this.#options.ignore ?? []).map((p) => p.replace(/[\\/]+$/, ""));
    const ignored = (path: string): boolean =>
      ignore.some((root) => path === root || path.startsWith(root + sep)) ||
      path.split(/[\\/]/).some((segment) => NOISE_SEGMENTS.has(segment));
    const watcher = watch(this.#options.paths, {
      ignoreInitial: true,
      followSymlinks: true,
      persistent: true,
      ignored,
    });
    this.#watcher = watcher;
    watcher.on("all", () => this.#bump());
    watcher.on("error", (error) =>
      this.#options.logger.warn({ error: (error as Error).message }, "file watcher error"),
    );
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
    this.#options.logger.info({ paths: this.#options.paths }, "watching the desired state");
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const watcher = this.#watcher;
    this.#watcher = null;
    await watcher?.close();
  }

  #bump(): void {
    if (!this.#watcher) return;
    const now = Date.now();
    if (this.#timer === null) this.#firstEventAt = now;
    else clearTimeout(this.#timer);
    this.#events += 1;
    const debounce = this.#options.debounceMs ?? 400;
    const maxWait = this.#options.maxWaitMs ?? 5_000;
    const delay = Math.max(0, Math.min(debounce, this.#firstEventAt + maxWait - now));
    this.#timer = setTimeout(() => this.#flush(), delay);
  }

  #flush(): void {
    this.#timer = null;
    const events = this.#events;
    this.#events = 0;
    this.#options.logger.debug({ events }, "desired state changed on disk");
    this.#options.onChange(events);
  }
}

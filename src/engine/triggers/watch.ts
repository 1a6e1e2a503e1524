import { stat } from "node:fs/promises";
import { sep } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "../../log.js";
import { realScheduler, type Cancel, type Scheduler } from "../scheduler.js";
import type { PendingTrigger, Trigger } from "./types.js";

export interface WatchTriggerOptions {
  /** Directories or files to watch (absolute). */
  paths: string[];
  /** Absolute paths whose subtree never triggers (the state directory, secret directories). */
  ignore?: string[];
  /** Quiet time after the last event before the run is requested. Default 400 ms. */
  debounceMs?: number;
  /** A steady stream of events still requests a run this long after its first event. Default 5 s. */
  maxWaitMs?: number;
  /**
   * How often the watched paths are checked for having been replaced (renamed away and back, deleted
   * and re-created). Default 2 s.
   */
  rootCheckMs?: number;
  /**
   * Called once per settled burst with the number of distinct paths it changed (chokidar may report a
   * new file as an `add` and then a `change`; a reader wants files, not notifications).
   */
  onChange: (paths: number) => void;
  logger: Logger;
  /** Clock and timers (debounce, root check); real ones by default. */
  scheduler?: Scheduler;
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
 *
 * A watched directory that is renamed away (`mv desired x && mv x desired`), or deleted and created
 * again, leaves the file watcher deaf: it watched the directory that went away. So the watched paths'
 * identities (device and inode) are checked every `rootCheckMs`, and at once when an event says a
 * watched path itself went away; when a path is back, or is another directory now, the watcher is
 * re-armed and a run is requested (the contents may have changed while nobody listened). While a
 * path is missing, the runs themselves fail on it (`E_DESIRED_MISSING`), so readiness reports it.
 */
export class WatchTrigger implements Trigger {
  readonly name = "watch";
  readonly #options: WatchTriggerOptions;
  #watcher: FSWatcher | null = null;
  readonly #clock: Scheduler;
  #timer: Cancel | null = null;
  /** When the debounce timer fires (epoch ms), while it is set. */
  #flushAt: number | null = null;
  #rootTimer: Cancel | null = null;
  /** Identity of each watched path when the watcher was armed (null: missing then). */
  #armedAs = new Map<string, string | null>();
  #checking: Promise<void> | null = null;
  #stopped = false;
  #firstEventAt = 0;
  /** Paths changed in the burst settling (a re-armed root counts as its own path). */
  #changed = new Set<string>();

  constructor(options: WatchTriggerOptions) {
    this.#options = { ...options, paths: options.paths.map((p) => p.replace(/[\\/]+$/, "") || p) };
    this.#clock = options.scheduler ?? realScheduler;
  }

  /** Distinct paths changed since the last request (a burst still settling). */
  get pendingPaths(): number {
    return this.#changed.size;
  }

  /** The burst still settling: how many paths it changed and when it will request a run; null when none. */
  pending(): PendingTrigger | null {
    if (this.#timer === null) return null;
    return { trigger: this.name, kind: "debounce", dueAt: this.#flushAt, paths: this.#changed.size };
  }

  /** Resolves once the initial scan is done, so a change made right after start is seen. */
  async start(): Promise<void> {
    await this.#arm();
    this.#options.logger.info({ paths: this.#options.paths }, "watching the desired state");
    this.#scheduleRootCheck();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.();
    this.#timer = null;
    this.#flushAt = null;
    this.#rootTimer?.();
    this.#rootTimer = null;
    await this.#checking;
    const watcher = this.#watcher;
    this.#watcher = null;
    await watcher?.close();
  }

  /** (Re)creates the watcher over the paths as they are now. */
  async #arm(): Promise<void> {
    for (const path of this.#options.paths) this.#armedAs.set(path, await identityOf(path));
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
    const roots = new Set(this.#options.paths);
    watcher.on("all", (event, path) => {
      if (watcher !== this.#watcher) return;
      this.#bump(path);
      // The watcher has let go of a watched path that went away: even if the same directory is back
      // already (renamed away and back), it must be watched afresh.
      if ((event === "unlinkDir" || event === "unlink") && roots.has(path)) {
        this.#armedAs.set(path, null);
        void this.#checkRoots();
      }
    });
    watcher.on("error", (error) =>
      this.#options.logger.warn({ error: (error as Error).message }, "file watcher error"),
    );
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  }

  #scheduleRootCheck(): void {
    if (this.#stopped) return;
    this.#rootTimer = this.#clock.schedule(this.#options.rootCheckMs ?? 2_000, () => {
      this.#rootTimer = null;
      void this.#checkRoots().then(() => this.#scheduleRootCheck());
    });
  }

  /** Re-arms the watcher when a watched path is back or is another file or directory now. */
  #checkRoots(): Promise<void> {
    this.#checking ??= (async () => {
      try {
        const replaced: string[] = [];
        for (const path of this.#options.paths) {
          const now = await identityOf(path);
          if (now !== null && now !== this.#armedAs.get(path)) replaced.push(path);
          if (now === null && this.#armedAs.get(path) !== null) {
            this.#options.logger.warn({ path }, "a watched path is gone; watching for it to come back");
            this.#armedAs.set(path, null);
          }
        }
        if (replaced.length === 0 || this.#stopped) return;
        const old = this.#watcher;
        this.#watcher = null;
        await old?.close();
        if (this.#stopped) return;
        await this.#arm();
        this.#options.logger.info({ paths: this.#options.paths }, "watched path replaced; watching it again");
        for (const path of replaced) this.#bump(path);
      } catch (error) {
        this.#options.logger.warn({ error: (error as Error).message }, "re-arming the file watcher failed");
      } finally {
        this.#checking = null;
      }
    })();
    return this.#checking;
  }

  #bump(path: string): void {
    if (!this.#watcher) return;
    const now = this.#clock.now();
    if (this.#timer === null) this.#firstEventAt = now;
    else this.#timer();
    this.#changed.add(path);
    const debounce = this.#options.debounceMs ?? 400;
    const maxWait = this.#options.maxWaitMs ?? 5_000;
    const delay = Math.max(0, Math.min(debounce, this.#firstEventAt + maxWait - now));
    this.#flushAt = now + delay;
    this.#timer = this.#clock.schedule(delay, () => this.#flush());
  }

  #flush(): void {
    this.#timer = null;
    this.#flushAt = null;
    const paths = this.#changed.size;
    this.#changed = new Set();
    this.#options.logger.debug({ paths }, "desired state changed on disk");
    this.#options.onChange(paths);
  }
}

/** `dev:ino` of a path (symlinks followed), or null when it does not exist. */
async function identityOf(path: string): Promise<string | null> {
  try {
    const info = await stat(path);
    return `${info.dev}:${info.ino}`;
  } catch {
    return null;
  }
}

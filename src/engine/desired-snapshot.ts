import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { listDesiredFiles, loadDesiredState } from "../config/index.js";
import type { LoadedDesiredState, ReconcilerConfig } from "../config/types.js";
import { GitOpsError } from "../errors.js";

/**
 * A stable snapshot of a desired-state directory: the daemon plans from a directory only when its
 * files read the same before and after a quiet period, and the same again right after they were
 * loaded. A file someone is still writing (an editor, `scp`, a config-management run that writes the
 * first half, pauses, then writes the rest) changes between two reads and is waited for.
 *
 * This narrows the window but cannot close it: a writer that pauses longer than the quiet period
 * leaves a half file that reads the same twice. That is what the delete delay is for (see
 * core/deferred-deletes.ts): no delete decided from a directory goes ahead before the client has been
 * absent for much longer than any quiet period.
 */

/** How long to wait and how often to try. Times are injected so tests need not sleep. */
export interface StableSnapshotOptions {
  config: ReconcilerConfig;
  /** The files must read the same across this long (ms). 0 still compares two reads. */
  quietMs: number;
  /** Quiet periods to try before giving up with `E_DESIRED_UNSTABLE` (a transient failure). */
  maxAttempts: number;
  /** Waits `ms`; rejects when `signal` aborts (shutdown). */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  signal: AbortSignal;
  /**
   * The digest of the last snapshot that held still. Files that read exactly so now need no quiet
   * period: those bytes were already seen holding still (a timer-driven run over unchanged files
   * costs no wait).
   */
  knownStable?: string | null;
  /** Loads the desired state; the production loader by default. */
  load?: (config: ReconcilerConfig) => Promise<LoadedDesiredState>;
}

export interface StableSnapshot {
  desired: LoadedDesiredState;
  /** `sha256:<hex>` over the desired files' paths and contents, as loaded. */
  digest: string;
  /** Quiet periods it took (1 when nothing was being written). */
  attempts: number;
}

/** Default for `maxAttempts`: with the default 1 s quiet period, give up after about 10 s of churn. */
export const DEFAULT_SNAPSHOT_ATTEMPTS = 10;

/**
 * A digest of every desired file (the list `loadDesiredState` reads, and each file's bytes). A file
 * that disappears between the listing and its read counts as its own state (`missing`), so the next
 * read differs from it once the file is back.
 */
export async function digestDesiredFiles(config: ReconcilerConfig): Promise<string> {
  const hash = createHash("sha256");
  for (const path of await listDesiredFiles(config)) {
    let content: Buffer | null;
    try {
      content = await readFile(path);
    } catch {
      content = null;
    }
    hash.update(`${path}\u0000${content === null ? "missing" : content.length}\u0000`);
    if (content) hash.update(content);
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Loads the desired state once its files have held still for `quietMs`, and checks they still read
 * the same after loading (so what was planned is exactly the snapshot that held still).
 */
export async function loadStableDesired(options: StableSnapshotOptions): Promise<StableSnapshot> {
  const load = options.load ?? ((config: ReconcilerConfig) => loadDesiredState(config));
  let before = await digestDesiredFiles(options.config);
  for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
    const known = attempt === 1 && before === options.knownStable;
    if (!known) await options.sleep(options.quietMs, options.signal);
    const settled = known ? before : await digestDesiredFiles(options.config);
    if (settled !== before) {
      before = settled;
      continue;
    }
    const desired = await load(options.config);
    const after = await digestDesiredFiles(options.config);
    if (after === settled) return { desired, digest: settled, attempts: attempt };
    before = after;
  }
  throw new GitOpsError(
    "E_DESIRED_UNSTABLE",
    `the desired files under ${options.config.desired} kept changing for ${options.maxAttempts} quiet ` +
      `periods of ${options.quietMs} ms; nothing was planned (the next change or retry tries again)`,
    { disposition: "transient" },
  );
}

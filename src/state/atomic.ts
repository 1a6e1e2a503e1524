import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

export interface AtomicWriteOptions {
  /** File mode of the result, e.g. 0o600 for anything that holds a secret. */
  mode?: number;
  /** Mode for directories created on the way. */
  dirMode?: number;
}

/**
 * Writes a file so that a reader (or a crash) sees either the old content or the new, never a torn
 * one: write a temp file in the same directory, fsync it, rename it over the target, fsync the
 * directory so the rename itself survives a power loss. The one implementation of this in the tool:
 * the inventory, the journal, the file sink, saved plans, exports and the emulator's state file all
 * write through it.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o700 });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
}

/**
 * fsync a directory so a rename or create inside it is durable. Windows cannot open or fsync a
 * directory (the rename is still atomic there), so on Windows the call does nothing; everywhere else a
 * failure is an error, because the journal's promise that a step is on disk depends on it.
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The longest file name (in bytes) Linux, macOS and the usual file systems accept: NAME_MAX. */
export const NAME_MAX_BYTES = 255;

/**
 * The longest name `writeFileAtomic` can write: its temp file `.<name>.<pid>.<12 hex>.tmp` must fit
 * NAME_MAX too, with a pid of up to 7 digits (Linux's PID_MAX_LIMIT is 4194304). A longer name fails
 * with ENAMETOOLONG at the temp file, so sinks refuse it before anything is minted for it.
 */
export const MAX_ATOMIC_NAME_BYTES =
  NAME_MAX_BYTES - ".".length - ".".length - 7 - ".".length - 12 - ".tmp".length;

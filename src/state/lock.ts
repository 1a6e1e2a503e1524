import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { link, open, unlink, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { StateError } from "../errors.js";

/**
 * The state directory's lock file: one run that writes (apply, rotate, a daemon's reconcile) at a time,
 * across processes, containers and hosts that share the directory.
 *
 * Taking it is one atomic step that creates the file WITH its owner record: the record is written and
 * fsynced to a temp file of our own, then `link()`ed to the lock's name; `EEXIST` means someone holds
 * it. No reader ever sees an empty or half-written lock (the old open-then-write left a window where a
 * second run read an empty file and took over).
 *
 * The owner record names the process (pid and its start time from /proc, so a reused pid is not taken
 * for the owner), the machine (host name, kernel boot id, pid namespace: a pid means nothing in another
 * container or after a reboot) and a random token that makes every taking unique.
 *
 * A held lock is given up by someone else only when it is stale:
 * - its owner is on this machine (same boot id, pid namespace and host name) and that process is gone;
 * - or its owner is elsewhere (another host or container) and its lease ran out: the holder refreshes
 *   the file's modification time every {@link LOCK_REFRESH_MS}, and a lock not refreshed for
 *   {@link LOCK_LEASE_MS} is taken for abandoned. The lease is long (minutes) so that clock skew between
 *   hosts or a briefly stalled holder does not count as abandonment.
 * A file that is not an owner record (from an older version) is judged by the lease alone.
 *
 * Taking over is itself guarded: only the holder of `<lock>.takeover` (taken with the same atomic link)
 * may remove a stale lock, and it re-reads the lock under that guard and removes it only if it is still
 * the very file judged stale (same inode and token). Two takers can therefore never both remove, one of
 * them a fresh lock. A takeover guard left by a process killed in the few milliseconds it holds one is
 * itself judged the same way and cleared.
 *
 * Release removes the lock only if it still carries our token, so a run whose lock was taken from it
 * (its lease ran out while it was stopped) never removes the lock of the run that holds it now.
 */

/** How long another host's lock may go without a refresh before it counts as abandoned. */
export const LOCK_LEASE_MS = 3 * 60_000;
/** How often a holder refreshes its lock's lease. */
export const LOCK_REFRESH_MS = 30_000;

/** What the lock file holds: who owns it, written before the file appears under the lock's name. */
export interface LockOwner {
  version: 1;
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); null off Linux. */
  proc_start: string | null;
  hostname: string;
  /** /proc/sys/kernel/random/boot_id: changes with every boot; "" where unavailable. */
  boot_id: string;
  /** The pid namespace (readlink /proc/self/ns/pid): another container has another one; "" off Linux. */
  pid_ns: string;
  started: string;
  /** Random, unique to one taking of the lock. */
  token: string;
}

/** A lock this process holds. */
export interface HeldLock {
  readonly owner: LockOwner;
  /** Removes the lock if it is still ours; stops refreshing the lease either way. */
  release(): Promise<void>;
}

export interface TakeLockOptions {
  /** The clock the lease is judged by; injected by tests. */
  now?: () => number;
  /** Words for messages: what is locked, e.g. the state directory. */
  what?: string;
}

/** This process as a lock owner (without the token). */
export function thisProcessIdentity(): Omit<LockOwner, "token" | "started" | "version"> {
  return {
    pid: process.pid,
    proc_start: processStartTicks(process.pid),
    hostname: hostname(),
    boot_id: readOptional(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()),
    pid_ns: readOptional(() => readlinkSync("/proc/self/ns/pid")),
  };
}

/**
 * Takes the lock at `path` or throws: `E_STATE_LOCKED` (disposition `wait`) while someone else holds
 * it, `E_STATE_LOCK` when the file system refuses.
 */
export async function takeLock(path: string, options: TakeLockOptions = {}): Promise<HeldLock> {
  const now = options.now ?? Date.now;
  const what = options.what ?? dirname(path);
  const owner: LockOwner = {
    version: 1,
    ...thisProcessIdentity(),
    started: new Date(now()).toISOString(),
    token: randomBytes(16).toString("hex"),
  };
  const temp = join(dirname(path), `.${basename(path)}.${owner.token}.tmp`);
  const guard = `${path}.takeover`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, "wx", 0o600);
    await handle.writeFile(`${JSON.stringify(owner)}\n`);
    await handle.sync();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (await tryLink(temp, path)) {
        await unlink(temp);
        return held(path, owner, handle, now);
      }
      const seen = await inspect(path);
      if (!seen) continue; // released meanwhile: try again
      const verdict = judge(seen, now());
      if (verdict.held) {
        throw new StateError(
          "E_STATE_LOCKED",
          `${what} is in use by another cf-oauth-gitops run (${verdict.why}); try again when it has finished`,
          {
            disposition: "wait",
            context: { pid: seen.owner?.pid, hostname: seen.owner?.hostname, lock: path },
          },
        );
      }
      await takeOverStale(path, guard, temp, seen, now);
      // Whether we removed it or someone else did, the next round tries to link again.
    }
    throw new StateError("E_STATE_LOCK", `cannot lock ${path}: it keeps changing hands`);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    if (error instanceof StateError) throw error;
    throw new StateError("E_STATE_LOCK", `cannot lock ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

const MAX_ATTEMPTS = 50;

/** What was found under a lock's name. `owner` is null when the file is not an owner record. */
interface SeenLock {
  ino: number;
  mtimeMs: number;
  owner: LockOwner | null;
}

function held(path: string, owner: LockOwner, handle: FileHandle, now: () => number): HeldLock {
  // The handle is the lock's inode (linked, then the temp name removed): touching it refreshes OUR lock
  // even if the name were to point elsewhere by now.
  const timer = setInterval(() => {
    const at = new Date(now());
    void handle.utimes(at, at).catch(() => undefined);
  }, LOCK_REFRESH_MS);
  timer.unref();
  let released = false;
  return {
    owner,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      try {
        const seen = await inspect(path);
        if (seen?.owner?.token === owner.token) await unlink(path).catch(ignoreMissing);
      } finally {
        await handle.close().catch(() => undefined);
      }
    },
  };
}

/**
 * Removes a stale lock under the takeover guard, only if it is still the file judged stale. Returns
 * without removing anything when another taker holds the guard (after a short pause, so a crowd of
 * takers does not spin).
 */
async function takeOverStale(
  path: string,
  guard: string,
  temp: string,
  stale: SeenLock,
  now: () => number,
): Promise<void> {
  if (!(await tryLink(temp, guard))) {
    const guardSeen = await inspect(guard);
    if (guardSeen && !judge(guardSeen, now()).held) await removeIfSame(guard, guardSeen);
    await pause();
    return;
  }
  try {
    const again = await inspect(path);
    if (again && sameLock(again, stale)) await unlink(path).catch(ignoreMissing);
  } finally {
    await unlink(guard).catch(ignoreMissing);
  }
}

/** Removes `path` if it is still the file seen (a guard left by a dead taker). */
async function removeIfSame(path: string, seen: SeenLock): Promise<void> {
  const again = await inspect(path);
  if (again && sameLock(again, seen)) await unlink(path).catch(ignoreMissing);
}

function sameLock(a: SeenLock, b: SeenLock): boolean {
  return a.ino === b.ino && (a.owner?.token ?? null) === (b.owner?.token ?? null);
}

/** Whether a lock seen at `nowMs` is still held, and by whom in words. */
function judge(seen: SeenLock, nowMs: number): { held: boolean; why: string } {
  const leaseOver = nowMs - seen.mtimeMs > LOCK_LEASE_MS;
  const owner = seen.owner;
  if (!owner) {
    return {
      held: !leaseOver,
      why: `an unrecognised lock file, last touched ${new Date(seen.mtimeMs).toISOString()}`,
    };
  }
  const self = thisProcessIdentity();
  const sameMachine =
    owner.boot_id === self.boot_id && owner.pid_ns === self.pid_ns && owner.hostname === self.hostname;
  if (sameMachine) {
    return { held: isAlive(owner.pid, owner.proc_start), why: `pid ${owner.pid} since ${owner.started}` };
  }
  return {
    held: !leaseOver,
    why:
      `pid ${owner.pid} on host ${owner.hostname} since ${owner.started}, lease refreshed ` +
      new Date(seen.mtimeMs).toISOString(),
  };
}

/** The lock file as found, or null if there is none. */
async function inspect(path: string): Promise<SeenLock | null> {
  // One open file for both, so the inode and the record belong together even if the name changes.
  let file: FileHandle;
  try {
    file = await open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  try {
    const info = await file.stat();
    const text = await file.readFile("utf8");
    return { ino: info.ino, mtimeMs: info.mtimeMs, owner: parseOwner(text) };
  } finally {
    await file.close();
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner> | null;
    if (
      value &&
      value.version === 1 &&
      Number.isInteger(value.pid) &&
      typeof value.token === "string" &&
      typeof value.hostname === "string" &&
      typeof value.boot_id === "string" &&
      typeof value.pid_ns === "string"
    ) {
      return {
        version: 1,
        pid: value.pid as number,
        proc_start: typeof value.proc_start === "string" ? value.proc_start : null,
        hostname: value.hostname,
        boot_id: value.boot_id,
        pid_ns: value.pid_ns,
        started: typeof value.started === "string" ? value.started : "?",
        token: value.token,
      };
    }
  } catch {
    // Not an owner record: judged by its age.
  }
  return null;
}

async function tryLink(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/** Whether the process that wrote a record on this machine still runs (a reused pid does not count). */
function isAlive(pid: number, procStart: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (procStart === null) return true;
  const current = processStartTicks(pid);
  return current === null || current === procStart;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
function processStartTicks(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function readOptional(read: () => string): string {
  try {
    return read();
  } catch {
    return "";
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
}

function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 20)));
}

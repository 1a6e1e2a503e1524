import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import type { StateError } from "../../src/errors.js";
import { FileJournalStore } from "../../src/state/journal.js";

/**
 * The state directory's lock (src/state/lock.ts) between real processes: many takers at once, with and
 * without a stale lock of a dead process, locks of other hosts and containers, release by a non-owner.
 * The owner records are written here by hand (not with the module's helpers) so the expectations do not
 * share the code's idea of them.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD = join(HERE, "fixtures", "lock-child.ts");
/** The tsx loader by absolute path, so children start from any working directory. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const LEASE_MS = 3 * 60_000;

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cf-lock-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function lockPath(dir: string): string {
  return join(dir, "journal", ".lock");
}

/** An owner record as the lock writes it, for this machine unless told otherwise. */
function ownerRecord(fields: Record<string, unknown> = {}): string {
  const pid = typeof fields["pid"] === "number" ? fields["pid"] : process.pid;
  return `${JSON.stringify({
    version: 1,
    pid,
    proc_start: startTicks(pid),
    hostname: hostname(),
    boot_id: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
    pid_ns: readlinkSync("/proc/self/ns/pid"),
    started: new Date().toISOString(),
    token: randomBytes(16).toString("hex"),
    ...fields,
  })}\n`;
}

function startTicks(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  if (child.pid === undefined) throw new Error("no pid");
  return child.pid;
}

async function writeLock(dir: string, body: string, ageMs = 0): Promise<void> {
  await mkdir(join(dir, "journal"), { recursive: true });
  await writeFile(lockPath(dir), body);
  if (ageMs > 0) {
    const at = new Date(Date.now() - ageMs);
    await utimes(lockPath(dir), at, at);
  }
}

/**
 * Starts `count` takers at once; each retries while the lock is held, then logs `enter`/`leave` while
 * it holds it. Resolves to the log's lines and the children that failed once every child has exited.
 */
async function raceTakers(dir: string, count: number): Promise<{ lines: string[]; failures: string[] }> {
  const log = join(dir, "holders.log");
  await writeFile(log, "");
  const deadline = Date.now() + 100_000;
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ["--import", TSX, CHILD, dir, log, String(deadline)], {
      stdio: ["pipe", "pipe", "pipe"],
      cwd: tmpdir(),
    }),
  );
  const exits = children.map((child) => {
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise<{ code: number | null; stderr: string }>((resolve) =>
      child.once("exit", (code) => resolve({ code, stderr })),
    );
  });
  // Every child started and ready, then all are let go at once.
  await Promise.all(children.map((child) => new Promise((resolve) => child.stdout.once("data", resolve))));
  for (const child of children) child.stdin.write("go\n");
  const results = await Promise.all(exits);
  return {
    lines: (await readFile(log, "utf8")).split("\n").filter(Boolean),
    failures: results.filter((r) => r.code !== 0).map((r) => r.stderr.trim()),
  };
}

/**
 * Every `enter` is followed by the `leave` of the same process before anyone else enters, every child
 * got in once, and none failed.
 */
function expectOneAtATime(race: { lines: string[]; failures: string[] }, count: number): void {
  const { lines, failures } = race;
  const overlaps: string[] = [];
  for (let i = 0; i < lines.length; i += 2) {
    const [enter, leave] = [lines[i], lines[i + 1]];
    const pid = enter?.split(" ")[1];
    if (!enter?.startsWith("enter ") || leave !== `leave ${pid}`) overlaps.push(`${enter} / ${leave}`);
  }
  expect({ overlaps, failures }).toEqual({ overlaps: [], failures: [] });
  expect(lines.filter((l) => l.startsWith("enter ")).length).toBe(count);
}

describe("state-directory lock between processes", () => {
  it("lets exactly one of 30 concurrent takers in at a time", { timeout: 150_000 }, async () => {
    const dir = await stateDir();
    expectOneAtATime(await raceTakers(dir, 30), 30);
    await expect(stat(lockPath(dir))).rejects.toThrow(); // the last one released it
  });

  it(
    "lets exactly one of 30 concurrent takers in at a time when a dead process left its lock",
    { timeout: 150_000 },
    async () => {
      const dir = await stateDir();
      await writeLock(dir, ownerRecord({ pid: await deadPid() }));
      expectOneAtATime(await raceTakers(dir, 30), 30);
      // Nothing left behind: no lock, no takeover guard, no temp files.
      expect((await readdir(join(dir, "journal"))).sort()).toEqual([]);
    },
  );

  it("refuses a lock held by a live process of this machine and takes it over once that process is killed", async () => {
    const journal = new FileJournalStore(await stateDir());
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    onTestFinished(() => void holder.kill("SIGKILL"));
    await new Promise((resolve) => holder.once("spawn", resolve));
    const record = ownerRecord({ pid: holder.pid });
    await writeLock(dirname(journal.dir), record);
    const refused = await journal.lock().catch((e: unknown) => e);
    expect((refused as StateError).code).toBe("E_STATE_LOCKED");
    expect((refused as StateError).disposition).toBe("wait");
    expect((refused as Error).message).toContain(`pid ${holder.pid}`);
    expect(await readFile(join(journal.dir, ".lock"), "utf8")).toBe(record);

    const exited = new Promise((resolve) => holder.once("exit", resolve));
    holder.kill("SIGKILL");
    await exited;
    const release = await journal.lock();
    const owner = JSON.parse(await readFile(join(journal.dir, ".lock"), "utf8")) as Record<string, unknown>;
    expect(owner).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(typeof owner["token"]).toBe("string");
    await release();
    await expect(stat(join(journal.dir, ".lock"))).rejects.toThrow();
  });

  it("takes over a lock whose pid now belongs to another process (pid reused)", async () => {
    const journal = new FileJournalStore(await stateDir());
    // Our own pid, but a start time that is not ours: the recorded process is gone.
    await writeLock(dirname(journal.dir), ownerRecord({ pid: process.pid, proc_start: "1" }));
    const release = await journal.lock();
    await release();
  });

  it("does not take over a live-leased lock of another host or container, whatever its pid", async () => {
    const dir = await stateDir();
    const journal = new FileJournalStore(dir);
    for (const other of [
      { hostname: "other-host", boot_id: "00000000-0000-4000-8000-000000000000" },
      { pid_ns: "pid:[1]" }, // another container on this host
    ]) {
      // A dead pid here means nothing there.
      const record = ownerRecord({ pid: await deadPid(), ...other });
      await writeLock(dir, record, 60_000);
      const refused = await journal.lock().catch((e: unknown) => e);
      expect((refused as StateError).code).toBe("E_STATE_LOCKED");
      expect(await readFile(lockPath(dir), "utf8")).toBe(record);
    }
  });

  it("takes over another host's lock once its lease has run out", async () => {
    const dir = await stateDir();
    const journal = new FileJournalStore(dir);
    await writeLock(dir, ownerRecord({ hostname: "other-host", boot_id: "x" }), LEASE_MS + 60_000);
    const release = await journal.lock();
    expect(await readFile(lockPath(dir), "utf8")).toContain(`"pid":${process.pid}`);
    await release();
  });

  it("judges a lock file that is not an owner record by its age", async () => {
    const dir = await stateDir();
    const journal = new FileJournalStore(dir);
    await writeLock(dir, "12345\n");
    expect(((await journal.lock().catch((e: unknown) => e)) as StateError).code).toBe("E_STATE_LOCKED");
    await writeLock(dir, "", LEASE_MS + 60_000);
    await (
      await journal.lock()
    )();
  });

  it("release by a run that no longer owns the lock leaves the owner's lock in place", async () => {
    const dir = await stateDir();
    const journal = new FileJournalStore(dir);
    const release = await journal.lock();
    // Meanwhile the lock was taken from this run (say its lease ran out while it was stopped).
    const theirs = ownerRecord({ hostname: "other-host", boot_id: "y" });
    await writeLock(dir, theirs);
    await release();
    expect(await readFile(lockPath(dir), "utf8")).toBe(theirs);
  });

  it("keeps the lease of a held lock fresh on disk", async () => {
    const dir = await stateDir();
    const journal = new FileJournalStore(dir);
    const release = await journal.lock();
    onTestFinished(release);
    const info = await stat(lockPath(dir));
    expect(info.mode & 0o777).toBe(0o600);
    expect(Date.now() - info.mtimeMs).toBeLessThan(LEASE_MS);
  });
});

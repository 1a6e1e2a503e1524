import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import {
  type DeleteOld,
  type JournalRecord,
  journalView,
  SECRET_REASONS,
  type SecretReason,
  type SecretStep,
} from "../core/rotation-plan.js";
import { StateError } from "../errors.js";
import { Secret } from "../secret.js";
import { syncDirectory, writeFileAtomic } from "./atomic.js";
import { takeLock, type HeldLock } from "./lock.js";

/**
 * The secret write-ahead journal: `<state_dir>/journal/<entry-id>.json`, one file per operation on a
 * client's secret (a create, a known-secret mint, a rotation). Each step is written, fsynced and renamed
 * into place BEFORE the action it announces, so a process killed at any point (kill -9, power loss)
 * leaves a record of exactly how far it got; the next run reads the journal first and resumes.
 *
 * Steps, in order (minting and publishing are two phases, each step recorded before it starts):
 * - `recover`  (rotations started by `rotate --recover` only): the operator confirmed the sink holds
 *   the newest secret; DELETE rotate_secret comes next.
 * - `intent`   the create POST or rotate_secret is about to be sent.
 * - `minted`   the API returned the new secret; it is in this file (mode 0600) until published.
 * - `published` the sink holds the secret and it read back equal; the secret is scrubbed from the file
 *   (only its fingerprint stays).
 * - `done`     nothing left to do (old secret deleted, or none to delete). The newest done entry of a
 *   client stays as its record: when its secret was published and whether this tool created it.
 *
 * A file holds a raw secret only while its step is `minted`. Files and the directory are private
 * (0600/0700) whatever the step.
 */

export const JOURNAL_DIR = "journal";

/** What an operation does. `create`: POST a client (then, if its secret was lost, mint one). */
export type JournalOp = "create" | "rotate";

export type JournalStep = SecretStep;

/** When the secret the new one replaces is deleted (DELETE rotate_secret). */
export type { DeleteOld };

/** Why an operation was started: shown in reports and status (the planner's vocabulary). */
export const JOURNAL_REASONS = SECRET_REASONS;
export type JournalReason = SecretReason;

/**
 * A journal entry as stored: the planner's view of it (src/core/rotation-plan.ts `JournalRecord`,
 * which documents the shared fields) plus what only the executor and the file hold: the secret while
 * it waits to be published, and the bookkeeping of attempts and times.
 */
export interface JournalEntry extends JournalRecord {
  /** Creates: ids of live clients that already had this name when the create was planned. */
  existing_client_ids: string[];
  /** Only while `step` is `minted`. */
  secret: Secret | null;
  fingerprint: string | null;
  started_at: string;
  done_at: string | null;
  publish_attempts: number;
  /** The last failure, safe to show (never a secret). */
  last_error: { code: string; message: string } | null;
}

const entrySchema = z.object({
  version: z.literal(1),
  id: z.string().regex(/^[a-z0-9-]+$/),
  op: z.enum(["create", "rotate"]),
  reason: z.enum(JOURNAL_REASONS),
  step: z.enum(["recover", "intent", "minted", "published", "done"]),
  account_id: z.string(),
  client_name: z.string(),
  client_id: z.string().nullable(),
  target: z.object({ sink: z.string(), key: z.string() }),
  delete_old: z.enum(["none", "at-once", "after-grace"]),
  grace_seconds: z.number().int().min(0),
  unused: z.boolean(),
  created_by_tool: z.boolean(),
  existing_client_ids: z.array(z.string()),
  secret: z.string().nullable(),
  fingerprint: z.string().nullable(),
  started_at: z.string(),
  minted_at: z.string().nullable(),
  published_at: z.string().nullable(),
  done_at: z.string().nullable(),
  publish_attempts: z.number().int().min(0),
  last_error: z.object({ code: z.string(), message: z.string() }).nullable(),
  blocked: z.enum(["secret-lost"]).nullable(),
});

/** A fresh entry id: sortable by time of creation, unique across processes. */
export function newEntryId(now: Date): string {
  return `${now.getTime().toString(36).padStart(9, "0")}-${randomBytes(6).toString("hex")}`;
}

/** What a caller decides about a new entry; everything else starts empty at step `intent`. */
export type NewJournalEntryFields = Pick<
  JournalEntry,
  | "op"
  | "reason"
  | "account_id"
  | "client_name"
  | "client_id"
  | "target"
  | "delete_old"
  | "grace_seconds"
  | "unused"
  | "created_by_tool"
  | "existing_client_ids"
> &
  Partial<JournalEntry>;

/** A fresh entry: step `intent`, no secret, nothing published; `fields` may override any of it. */
export function newJournalEntry(now: Date, fields: NewJournalEntryFields): JournalEntry {
  return {
    id: newEntryId(now),
    step: "intent",
    secret: null,
    fingerprint: null,
    started_at: now.toISOString(),
    minted_at: null,
    published_at: null,
    done_at: null,
    publish_attempts: 0,
    last_error: null,
    blocked: null,
    ...fields,
  };
}

/**
 * Where the journal lives and how entries reach disk. An interface so the engine can be driven over a
 * real directory in tests and, later, over another store; there is one implementation.
 */
export interface JournalStore {
  /** Every entry, oldest first. A corrupt file fails the run: guessing could lose a secret. */
  list(): Promise<JournalEntry[]>;
  /** Writes the entry durably (atomic replace, fsync of file and directory) before returning. */
  write(entry: JournalEntry): Promise<void>;
  /** Removes the entry durably. */
  remove(id: string): Promise<void>;
  /** The file an entry lives in, for messages. */
  pathOf(id: string): string;
  /**
   * Takes the state directory for one run that writes (apply, rotate): waits for another run in this
   * process, refuses (E_STATE_LOCKED) while another live process holds it (on this machine or, within
   * its lease, on another host or container), takes over from a dead one (a run killed with kill -9).
   * Resolves to the release function. The cross-process part is src/state/lock.ts.
   */
  lock(): Promise<() => Promise<void>>;
}

/** In-process queue per journal directory: the daemon's reconcile and rotation never interleave. */
const localLocks = new Map<string, Promise<void>>();

/** The journal as files under `<state_dir>/journal/`. */
export class FileJournalStore implements JournalStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, JOURNAL_DIR);
  }

  pathOf(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  async lock(): Promise<() => Promise<void>> {
    const previous = localLocks.get(this.dir) ?? Promise.resolve();
    let releaseLocal!: () => void;
    const mine = new Promise<void>((resolve) => (releaseLocal = resolve));
    const chained = previous.then(() => mine);
    localLocks.set(this.dir, chained);
    await previous;
    let fileLock: HeldLock;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      fileLock = await takeLock(join(this.dir, LOCK_FILE), { what: this.dir });
    } catch (error) {
      releaseLocal();
      if (localLocks.get(this.dir) === chained) localLocks.delete(this.dir);
      if (error instanceof StateError) throw error;
      throw new StateError("E_STATE_LOCK", `cannot lock ${this.dir}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return async () => {
      try {
        await fileLock.release();
      } finally {
        releaseLocal();
        if (localLocks.get(this.dir) === chained) localLocks.delete(this.dir);
      }
    };
  }

  async list(): Promise<JournalEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new StateError("E_JOURNAL_READ", `cannot read ${this.dir}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const entries: JournalEntry[] = [];
    for (const name of names.filter((n) => n.endsWith(".json") && !n.startsWith(".")).sort()) {
      entries.push(await this.#read(join(this.dir, name)));
    }
    return entries;
  }

  async write(entry: JournalEntry): Promise<void> {
    const path = this.pathOf(entry.id);
    try {
      await writeFileAtomic(path, serialiseEntry(entry), { mode: 0o600, dirMode: 0o700 });
    } catch (error) {
      throw new StateError("E_JOURNAL_WRITE", `cannot write ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async remove(id: string): Promise<void> {
    const path = this.pathOf(id);
    try {
      await rm(path, { force: true });
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await syncDirectory(this.dir);
    } catch (error) {
      throw new StateError("E_JOURNAL_WRITE", `cannot remove ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async #read(path: string): Promise<JournalEntry> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, "utf8"));
    } catch (error) {
      // Never quote the file: it may hold a secret.
      throw new StateError(
        "E_JOURNAL_CORRUPT",
        `${path} is not a readable journal entry: ${(error as Error).name}`,
        {
          cause: error,
        },
      );
    }
    const result = entrySchema.safeParse(parsed);
    if (!result.success) {
      const first = result.error.issues[0];
      throw new StateError(
        "E_JOURNAL_CORRUPT",
        `${path}: ${first?.path.join(".") ?? ""}: ${first?.code ?? "invalid"}; fix or move the file aside`,
      );
    }
    const { version: _version, secret, ...rest } = result.data;
    return { ...rest, secret: secret === null ? null : new Secret(secret) };
  }
}

const LOCK_FILE = ".lock";

/** The file body: the one place a journal secret is unwrapped. */
export function serialiseEntry(entry: JournalEntry): string {
  const plain: Record<string, unknown> = { version: 1 };
  // The schema's key order, so every file reads the same way.
  for (const key of Object.keys(entrySchema.shape)) {
    if (key !== "version") plain[key] = entry[key as keyof JournalEntry];
  }
  plain["secret"] = entry.step === "minted" && entry.secret ? entry.secret.reveal() : null;
  return `${JSON.stringify(plain, null, 2)}\n`;
}

/** The journal as the pure core sees it: src/core/rotation-plan.ts `journalView`. */
export { journalView };

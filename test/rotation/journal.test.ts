import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { clientKey } from "../../src/core/rotation.js";
import { StateError } from "../../src/errors.js";
import { Secret } from "../../src/secret.js";
import {
  FileJournalStore,
  journalView,
  newJournalEntry,
  type JournalEntry,
} from "../../src/state/journal.js";

/** The journal on real files: modes, where a secret may be, corrupt files, the core's view. */

const ACC = "0123456789abcdef0123456789abcdef";
const SECRET = "canary-journal-secret-0123456789";

async function store(): Promise<FileJournalStore> {
  const dir = await mkdtemp(join(tmpdir(), "cf-journal-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return new FileJournalStore(dir);
}

function entry(fields: Partial<JournalEntry> = {}): JournalEntry {
  return newJournalEntry(new Date("2026-01-01T00:00:00Z"), {
    op: "rotate",
    reason: "scheduled",
    account_id: ACC,
    client_name: "alpha",
    client_id: "id-alpha",
    target: { sink: "default", key: "alpha" },
    delete_old: "after-grace",
    grace_seconds: 60,
    unused: false,
    created_by_tool: true,
    existing_client_ids: [],
    ...fields,
  });
}

describe("FileJournalStore", () => {
  it("writes private files and holds the secret only while the step is minted", async () => {
    const journal = await store();
    const minted = entry({
      step: "minted",
      secret: new Secret(SECRET),
      fingerprint: new Secret(SECRET).fingerprint(),
    });
    await journal.write(minted);
    expect((await stat(journal.pathOf(minted.id))).mode & 0o777).toBe(0o600);
    expect((await stat(journal.dir)).mode & 0o777).toBe(0o700);
    expect(await readFile(journal.pathOf(minted.id), "utf8")).toContain(SECRET);
    const [back] = await journal.list();
    expect(back?.secret?.reveal()).toBe(SECRET);
    expect(JSON.stringify(back)).not.toContain(SECRET); // in memory it stays wrapped

    await journal.write({ ...minted, step: "published", published_at: "2026-01-01T00:01:00.000Z" });
    const text = await readFile(journal.pathOf(minted.id), "utf8");
    expect(text).not.toContain(SECRET);
    expect(text).toContain(minted.fingerprint ?? "?");
    // Even an entry that still carries the value in memory is scrubbed once past `minted`.
    await journal.write({ ...minted, step: "done" });
    expect(await readFile(journal.pathOf(minted.id), "utf8")).not.toContain(SECRET);
  });

  it("refuses a corrupt file with a stable code and without quoting it", async () => {
    const journal = await store();
    await journal.write(entry());
    await writeFile(join(journal.dir, "zzz.json"), `{"secret": "${SECRET}", `);
    const error = await journal.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    expect((error as StateError).code).toBe("E_JOURNAL_CORRUPT");
    expect((error as Error).message).not.toContain(SECRET);
  });

  it("removes entries durably; a missing directory is an empty journal", async () => {
    const journal = await store();
    expect(await journal.list()).toEqual([]);
    const e = entry();
    await journal.write(e);
    await journal.remove(e.id);
    expect(await journal.list()).toEqual([]);
  });
});

describe("journalView", () => {
  it("gives the core the active operation, the last publish and whether the tool created the client", () => {
    const view = journalView([
      entry({
        id: "a",
        op: "create",
        reason: "create",
        step: "done",
        published_at: "2026-01-01T00:00:00.000Z",
      }),
      entry({ id: "b", step: "published", created_by_tool: false, published_at: "2026-01-05T00:00:00.000Z" }),
      entry({ id: "c", client_id: null, client_name: "pending-create" }),
    ]);
    expect([...view.keys()]).toEqual([clientKey(ACC, "id-alpha")]);
    expect(view.get(clientKey(ACC, "id-alpha"))).toMatchObject({
      created_by_tool: true,
      last_published_at: "2026-01-05T00:00:00.000Z",
      active: { step: "published", delete_old: "after-grace", grace_seconds: 60, blocked: null },
    });
  });
});

describe("FileJournalStore.lock", () => {
  // Between processes, hosts and containers: test/state/lock.test.ts.
  it("queues runs within one process", async () => {
    const journal = await store();
    const order: string[] = [];
    const first = await journal.lock();
    const second = journal.lock().then((release) => {
      order.push("second");
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    order.push("first releases");
    await first();
    await (
      await second
    )();
    expect(order).toEqual(["first releases", "second"]);
  });
});

import { mkdtemp, readFile, writeFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileInventoryStore, withOwned, withoutOwned } from "../../src/state/inventory.js";

const ACCOUNT = "0123456789abcdef0123456789abcdef";

describe("inventory store", () => {
  it("starts empty, saves atomically with mode 0600, and loads what it saved", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cfog-state-"));
    const store = new FileInventoryStore(dir);
    expect(await store.load()).toEqual({ accounts: {} });
    let inventory = withOwned({ accounts: {} }, ACCOUNT, {
      client_id: "b".repeat(32),
      client_name: "two",
      origin: "created",
      since: "2026-11-26T00:00:00.000Z",
    });
    inventory = withOwned(inventory, ACCOUNT, {
      client_id: "a".repeat(32),
      client_name: "one",
      origin: "adopted",
      since: "2026-11-26T00:00:00.000Z",
    });
    await store.save(inventory);
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    const loaded = await store.load();
    expect(loaded.accounts[ACCOUNT]?.map((e) => e.client_id)).toEqual(["a".repeat(32), "b".repeat(32)]);
    const without = withoutOwned(loaded, ACCOUNT, "a".repeat(32));
    expect(without.accounts[ACCOUNT]?.map((e) => e.client_name)).toEqual(["two"]);
    expect(JSON.parse(await readFile(store.path, "utf8")).version).toBe(1);
  });

  it("refuses a corrupt inventory with a coded error instead of treating it as empty", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cfog-state-"));
    const store = new FileInventoryStore(dir);
    await writeFile(store.path, "{not json");
    await expect(store.load()).rejects.toMatchObject({ code: "E_STATE_CORRUPT" });
    await writeFile(store.path, JSON.stringify({ version: 1, accounts: { x: [{ client_id: 1 }] } }));
    await expect(store.load()).rejects.toMatchObject({ code: "E_STATE_CORRUPT" });
  });
});

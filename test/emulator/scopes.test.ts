import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FAILURES } from "../../src/emulator/behaviour.js";
import { startEmulator } from "../../src/emulator/index.js";
import { DEFAULT_SCOPES_FILE, loadScopeCatalogue } from "../../src/emulator/scopes.js";
import { ACCOUNT_A, startTestEmulator, testOptions } from "../helpers/emulator.js";
import { call, clientBody, errorCode } from "./support.js";

describe("scope catalogue", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "emulator-scopes-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("ships about 30 kebab-cased .read/.write items with unique ids", () => {
    const catalogue = loadScopeCatalogue(DEFAULT_SCOPES_FILE);
    expect(catalogue.items.length).toBeGreaterThanOrEqual(30);
    expect(catalogue.ids.size).toBe(catalogue.items.length);
    for (const item of catalogue.items) {
      expect(item.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*\.(read|write)$/);
      expect(item.name).not.toBe("");
      expect(item.category).toBeTruthy();
      expect(item.scopes?.length).toBeGreaterThan(0);
    }
  });

  it("replaces the catalogue with scopesFile", async () => {
    const scopesFile = join(dir, "scopes.json");
    await writeFile(scopesFile, JSON.stringify([{ id: "custom-thing.read", name: "Custom Thing Read" }]));
    const emu = await startTestEmulator({ scopesFile });
    const served = await call<unknown[]>(emu, "GET", "/oauth/scopes");
    expect(served.body.result).toEqual([{ id: "custom-thing.read", name: "Custom Thing Read" }]);
    const path = `/accounts/${ACCOUNT_A}/oauth_clients`;
    expect(
      (await call(emu, "POST", path, { body: clientBody({ scopes: ["custom-thing.read"] }) })).status,
    ).toBe(200);
    const refused = await call(emu, "POST", path, {
      body: clientBody({ scopes: ["account-settings.read"] }),
    });
    expect(errorCode(refused)).toBe(FAILURES.invalidScope.code);
  });

  it.each([
    ["not JSON", "[{"],
    ["not a list", '{"id":"a.read"}'],
    ["an item without a name", '[{"id":"a.read"}]'],
  ])("refuses a scopes file that is %s", async (_name, text) => {
    const scopesFile = join(dir, "bad.json");
    await writeFile(scopesFile, text);
    await expect(startEmulator(testOptions({ scopesFile }))).rejects.toMatchObject({
      code: "E_EMULATOR_SCOPES",
    });
  });
});

import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startEmulator } from "../../src/emulator/index.js";
import { ACCOUNT_A, control, testOptions, verifyClientUri } from "../helpers/emulator.js";
import { call, createClient, type Client } from "./support.js";

const CLIENTS = `/accounts/${ACCOUNT_A}/oauth_clients`;

describe("statePath", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "emulator-state-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps clients, verification and both secrets across a restart, and never writes a secret", async () => {
    const statePath = join(dir, "nested", "state.json");
    const first = await startEmulator(testOptions({ statePath }));
    const kept = await createClient(first, ACCOUNT_A, { client_uri: "https://app.example.com/" });
    const gone = await createClient(first, ACCOUNT_A, { client_name: "deleted" });
    await verifyClientUri(first, ACCOUNT_A, kept.client_id);
    const rotated = await call<{ client_secret: string }>(
      first,
      "POST",
      `${CLIENTS}/${kept.client_id}/rotate_secret`,
    );
    await call(first, "DELETE", `${CLIENTS}/${gone.client_id}`);
    const before = (await call<Client>(first, "GET", `${CLIENTS}/${kept.client_id}`)).body.result;
    await first.stop();

    const text = await readFile(statePath, "utf8");
    expect(text).not.toContain(kept.client_secret);
    expect(text).not.toContain(rotated.body.result.client_secret);
    expect((await readdir(join(dir, "nested"))).sort()).toEqual(["state.json"]);

    const second = await startEmulator(testOptions({ statePath }));
    try {
      const list = (await call<Client[]>(second, "GET", CLIENTS)).body.result;
      expect(list).toEqual([before]);
      const check = (secret: string | undefined) =>
        control(second, "POST", "check-secret", {
          account_id: ACCOUNT_A,
          client_id: kept.client_id,
          client_secret: secret,
        });
      expect(await check(kept.client_secret)).toEqual({ valid: true, slot: "rotated" });
      expect(await check(rotated.body.result.client_secret)).toEqual({ valid: true, slot: "current" });
      const fresh = await createClient(second, ACCOUNT_A);
      expect(fresh.client_id).not.toBe(kept.client_id);
    } finally {
      await second.stop();
    }
  });

  it("writes in the background while running, without waiting for stop", async () => {
    const statePath = join(dir, "state.json");
    const emu = await startEmulator(testOptions({ statePath }));
    try {
      const created = await Promise.all(
        [1, 2, 3].map((n) => createClient(emu, ACCOUNT_A, { client_name: `c${n}` })),
      );
      const expected = created.map((c) => c.client_id).sort();
      await vi.waitFor(async () => {
        const onDisk = JSON.parse(await readFile(statePath, "utf8")) as {
          clients: Array<{ client: Client }>;
        };
        expect(onDisk.clients.map((c) => c.client.client_id).sort()).toEqual(expected);
      });
    } finally {
      await emu.stop();
    }
  });

  it("refuses to start on a corrupt state file", async () => {
    const statePath = join(dir, "state.json");
    await writeFile(statePath, "{not json");
    await expect(startEmulator(testOptions({ statePath }))).rejects.toMatchObject({
      code: "E_EMULATOR_STATE",
    });
    await writeFile(statePath, JSON.stringify({ version: 9, clients: [] }));
    await expect(startEmulator(testOptions({ statePath }))).rejects.toMatchObject({
      code: "E_EMULATOR_STATE",
    });
  });
});

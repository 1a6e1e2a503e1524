import { describe, expect, it } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { ACCOUNT_A, WRITE_TOKEN, control, startTestEmulator } from "../helpers/emulator.js";
import { call, clientBody, createClient, type Client } from "./support.js";

const CLIENTS = `/accounts/${ACCOUNT_A}/oauth_clients`;

/** A raw request whose outcome is a status, or "reset" when the connection died. */
async function attempt(
  emu: EmulatorHandle,
  method: string,
  path: string,
  body?: unknown,
): Promise<number | "reset"> {
  try {
    const res = await fetch(`${emu.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${WRITE_TOKEN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return "reset";
  }
}

async function listed(emu: EmulatorHandle): Promise<Client[]> {
  return (await call<Client[]>(emu, "GET", CLIENTS)).body.result;
}

describe("faults", () => {
  it("answers 500 before doing anything, with rate-limit headers", async () => {
    const emu = await startTestEmulator({ fault5xxRate: 1 });
    const reply = await fetch(`${emu.url}${CLIENTS}`, {
      method: "POST",
      headers: { authorization: `Bearer ${WRITE_TOKEN}` },
      body: JSON.stringify(clientBody()),
    });
    expect(reply.status).toBe(500);
    expect(reply.headers.get("ratelimit-policy")).toMatch(/^"default";q=/);
    expect(((await reply.json()) as { success: boolean }).success).toBe(false);
    expect(await control<unknown[]>(emu, "GET", `clients?account_id=${ACCOUNT_A}`)).toEqual([]);
    expect((await control<{ faults: { error_5xx: number } }>(emu, "GET", "stats")).faults.error_5xx).toBe(1);
  });

  it("resets the connection without doing anything", async () => {
    const emu = await startTestEmulator({ faultResetRate: 1 });
    expect(await attempt(emu, "POST", CLIENTS, clientBody())).toBe("reset");
    expect(await control<unknown[]>(emu, "GET", "clients")).toEqual([]);
    const stats = await control<{ by_status: Record<string, number>; faults: { reset: number } }>(
      emu,
      "GET",
      "stats",
    );
    expect(stats.faults.reset).toBe(1);
    expect(stats.by_status["reset"]).toBe(1);
  });

  it("commit-then-drop applies the mutation and then kills the response", async () => {
    const emu = await startTestEmulator();
    const existing = await createClient(emu, ACCOUNT_A);
    await control(emu, "POST", "faults", { faultDropAfterCommitRate: 1 });
    expect(await attempt(emu, "POST", CLIENTS, clientBody({ client_name: "dropped create" }))).toBe("reset");
    expect(
      await attempt(emu, "PATCH", `${CLIENTS}/${existing.client_id}`, { client_name: "dropped patch" }),
    ).toBe("reset");
    expect(await attempt(emu, "GET", CLIENTS)).toBe(200);
    await control(emu, "POST", "faults", { faultDropAfterCommitRate: 0 });
    const names = (await listed(emu)).map((c) => c["client_name"]);
    expect(names).toEqual(["dropped patch", "dropped create"]);
    const stats = await control<{ faults: { drop_after_commit: number } }>(emu, "GET", "stats");
    expect(stats.faults.drop_after_commit).toBe(2);
  });

  it("replays the same faults and ids for the same seed", async () => {
    const run = async (seed: number) => {
      const emu = await startTestEmulator({ seed, fault5xxRate: 0.4, faultResetRate: 0.2 });
      const outcomes: Array<number | "reset"> = [];
      for (let i = 0; i < 30; i++)
        outcomes.push(await attempt(emu, "POST", CLIENTS, clientBody({ client_name: `c${i}` })));
      await control(emu, "POST", "faults", { fault5xxRate: 0, faultResetRate: 0 });
      return { outcomes, ids: (await listed(emu)).map((c) => c.client_id) };
    };
    const first = await run(42);
    const second = await run(42);
    expect(second).toEqual(first);
    expect(new Set(first.outcomes)).toEqual(new Set([200, 500, "reset"]));
    const other = await run(43);
    expect(other.outcomes).not.toEqual(first.outcomes);
  });

  it("never applies faults to the control endpoints", async () => {
    const emu = await startTestEmulator({ faultResetRate: 1, fault5xxRate: 1, latencyMs: 5 });
    for (let i = 0; i < 5; i++) expect((await fetch(`${emu.origin}/__emulator/stats`)).status).toBe(200);
    expect(await control(emu, "GET", "faults")).toEqual({
      latencyMs: 5,
      fault5xxRate: 1,
      faultResetRate: 1,
      faultDropAfterCommitRate: 0,
      listDropRate: 0,
      listDropIds: [],
      listTotalCountOffset: 0,
    });
  });

  it("changes faults at runtime and refuses rates outside 0..1", async () => {
    const emu = await startTestEmulator();
    expect(await attempt(emu, "GET", CLIENTS)).toBe(200);
    await control(emu, "POST", "faults", { fault5xxRate: 1 });
    expect(await attempt(emu, "GET", CLIENTS)).toBe(500);
    const bad = await fetch(`${emu.origin}/__emulator/faults`, {
      method: "POST",
      body: '{"faultResetRate":2}',
    });
    expect(bad.status).toBe(400);
    expect((await control<{ faultResetRate: number }>(emu, "GET", "faults")).faultResetRate).toBe(0);
  });

  it("list faults: named ids and a rate leave clients out of list answers, never out of GET", async () => {
    const emu = await startTestEmulator({ seed: 7 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++)
      ids.push((await createClient(emu, ACCOUNT_A, { client_name: `c${i}` })).client_id);
    await control(emu, "POST", "faults", { listDropIds: [ids[1], ids[4]] });
    const reply = await call<Client[]>(emu, "GET", CLIENTS);
    expect(reply.body.success).toBe(true);
    expect(reply.body.result.map((c) => c.client_id)).toEqual([ids[0], ids[2], ids[3], ids[5]]);
    // The count agrees with the shortened answer: the drop alone is not given away by result_info.
    expect(reply.body.result_info).toMatchObject({ count: 4, total_count: 4 });
    expect((await call(emu, "GET", `${CLIENTS}/${ids[1]}`)).status).toBe(200);

    await control(emu, "POST", "faults", { listDropIds: [], listDropRate: 1 });
    expect(await listed(emu)).toEqual([]);
    const stats = await control<{ faults: { list_dropped: number } }>(emu, "GET", "stats");
    expect(stats.faults.list_dropped).toBe(2 + 6);
  });

  it("list faults: a drop rate replays the same answers for the same seed", async () => {
    const run = async (seed: number) => {
      const emu = await startTestEmulator({ seed });
      for (let i = 0; i < 12; i++) await createClient(emu, ACCOUNT_A, { client_name: `c${i}` });
      await control(emu, "POST", "faults", { listDropRate: 0.5 });
      const answers: string[][] = [];
      for (let i = 0; i < 4; i++) answers.push((await listed(emu)).map((c) => c.client_name as string));
      return answers;
    };
    const first = await run(3);
    expect(await run(3)).toEqual(first);
    const lengths = first.map((a) => a.length);
    expect(lengths.some((n) => n > 0 && n < 12)).toBe(true);
  });

  it("list faults: total_count offset, and settings are checked", async () => {
    const emu = await startTestEmulator({ listTotalCountOffset: 2 });
    await createClient(emu, ACCOUNT_A, { client_name: "one" });
    const reply = await call<Client[]>(emu, "GET", CLIENTS);
    expect(reply.body.result).toHaveLength(1);
    expect(reply.body.result_info).toMatchObject({ count: 1, total_count: 3 });
    for (const bad of [{ listDropIds: "x" }, { listDropRate: 1.5 }, { listTotalCountOffset: 0.5 }]) {
      const res = await fetch(`${emu.origin}/__emulator/faults`, {
        method: "POST",
        body: JSON.stringify(bad),
      });
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    expect(await control(emu, "GET", "faults")).toMatchObject({ listTotalCountOffset: 2, listDropIds: [] });
  });
});

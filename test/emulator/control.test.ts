import { describe, expect, it } from "vitest";
import type { StatsSnapshot } from "../../src/emulator/index.js";
import { ACCOUNT_A, ACCOUNT_B, control, startTestEmulator } from "../helpers/emulator.js";
import { call, createClient } from "./support.js";

const CLIENTS = `/accounts/${ACCOUNT_A}/oauth_clients`;

describe("control endpoints", () => {
  it("counts requests by method, route template and status", async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 4, windowSeconds: 60 } });
    const c = await createClient(emu, ACCOUNT_A);
    await call(emu, "PATCH", `${CLIENTS}/${c.client_id}`, { body: {} });
    await call(emu, "GET", `${CLIENTS}/${"f".repeat(32)}`);
    await call(emu, "GET", "/oauth/scopes");
    await call(emu, "GET", CLIENTS);
    const stats = await control<StatsSnapshot>(emu, "GET", "stats");
    expect(stats).toEqual({
      total: 5,
      rate_limited: 1,
      by_method: { POST: 1, PATCH: 1, GET: 3 },
      by_route: {
        "POST /accounts/:account_id/oauth_clients": 1,
        "PATCH /accounts/:account_id/oauth_clients/:client_id": 1,
        "GET /accounts/:account_id/oauth_clients/:client_id": 1,
        "GET /oauth/scopes": 1,
        "GET /accounts/:account_id/oauth_clients": 1,
      },
      by_status: { "200": 3, "404": 1, "429": 1 },
      by_route_status: {
        "POST /accounts/:account_id/oauth_clients": { "200": 1 },
        "PATCH /accounts/:account_id/oauth_clients/:client_id": { "200": 1 },
        "GET /accounts/:account_id/oauth_clients/:client_id": { "404": 1 },
        "GET /oauth/scopes": { "200": 1 },
        "GET /accounts/:account_id/oauth_clients": { "429": 1 },
      },
      faults: { error_5xx: 0, reset: 0, drop_after_commit: 0, list_dropped: 0 },
    });
  });

  it("reset clears clients, stats and rate windows, and replays the same ids", async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 2, windowSeconds: 300 } });
    const first = await createClient(emu, ACCOUNT_A);
    await call(emu, "GET", CLIENTS);
    expect((await call(emu, "GET", CLIENTS)).status).toBe(429);
    expect(await control(emu, "POST", "reset")).toEqual({ reset: true });
    expect((await control<StatsSnapshot>(emu, "GET", "stats")).total).toBe(0);
    expect(await control(emu, "GET", "clients")).toEqual([]);
    const again = await createClient(emu, ACCOUNT_A);
    expect(again.client_id).toBe(first.client_id);
  });

  it("dumps clients per account without secrets", async () => {
    const emu = await startTestEmulator();
    const a = await createClient(emu, ACCOUNT_A);
    await createClient(emu, ACCOUNT_B, { token_endpoint_auth_method: "none" });
    const all = await control<Array<Record<string, unknown>>>(emu, "GET", "clients");
    expect(all.map((c) => [c["account_id"], c["has_secret"]])).toEqual([
      [ACCOUNT_A, true],
      [ACCOUNT_B, false],
    ]);
    const onlyA = await control<Array<Record<string, unknown>>>(
      emu,
      "GET",
      `clients?account_id=${ACCOUNT_A}`,
    );
    expect(onlyA.map((c) => c["client_id"])).toEqual([a.client_id]);
    expect(JSON.stringify(all)).not.toContain(a.client_secret);
  });

  it("sets verification status and refuses bad input", async () => {
    const emu = await startTestEmulator();
    const c = await createClient(emu, ACCOUNT_A, { client_uri: "https://app.example.com/" });
    const noUri = await createClient(emu, ACCOUNT_A);
    const set = (client_id: string, status: string) =>
      fetch(`${emu.origin}/__emulator/verification`, {
        method: "POST",
        body: JSON.stringify({ account_id: ACCOUNT_A, client_id, status }),
      });
    const ok = (await (await set(c.client_id, "in_progress")).json()) as { result: Record<string, unknown> };
    expect(ok.result["client_uri_verification"]).toMatchObject({ status: "in_progress" });
    expect((await set(c.client_id, "done")).status).toBe(400);
    expect((await set(noUri.client_id, "verified")).status).toBe(400);
    expect((await set("0".repeat(32), "verified")).status).toBe(404);
  });

  it("check-secret answers for unknown secrets and 404s unknown clients", async () => {
    const emu = await startTestEmulator();
    const c = await createClient(emu, ACCOUNT_A);
    const body = { account_id: ACCOUNT_A, client_id: c.client_id, client_secret: "guess" };
    expect(await control(emu, "POST", "check-secret", body)).toEqual({ valid: false, slot: null });
    expect(await control(emu, "POST", "check-secret", { ...body, client_secret: c.client_secret })).toEqual({
      valid: true,
      slot: "current",
    });
    const res = await fetch(`${emu.origin}/__emulator/check-secret`, {
      method: "POST",
      body: JSON.stringify({ ...body, account_id: ACCOUNT_B }),
    });
    expect(res.status).toBe(404);
    expect((await fetch(`${emu.origin}/__emulator/nothing`)).status).toBe(404);
  });
});

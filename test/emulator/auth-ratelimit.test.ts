import { describe, expect, it } from "vitest";
import { FAILURES } from "../../src/emulator/behaviour.js";
import {
  ACCOUNT_A,
  READ_TOKEN,
  WRITE_TOKEN,
  control,
  startTestEmulator,
  useEmulator,
} from "../helpers/emulator.js";
import { call, clientBody, createClient, errorCode, manualClock } from "./support.js";

const CLIENTS = `/accounts/${ACCOUNT_A}/oauth_clients`;

describe("auth", () => {
  const emu = useEmulator();

  it("answers 401 code 10000 without credentials", async () => {
    const reply = await call(emu(), "GET", CLIENTS, { token: null });
    expect(reply.status).toBe(401);
    expect(errorCode(reply)).toBe(10000);
  });

  it("answers 403 code 10000 for an unknown token", async () => {
    const reply = await call(emu(), "GET", CLIENTS, { token: "stolen" });
    expect(reply.status).toBe(403);
    expect(errorCode(reply)).toBe(10000);
  });

  it("lets a read-only token list, get and read scopes, and refuses every write with 403", async () => {
    const c = await createClient(emu(), ACCOUNT_A);
    const one = `${CLIENTS}/${c.client_id}`;
    for (const path of [CLIENTS, one, "/oauth/scopes"]) {
      expect((await call(emu(), "GET", path, { token: READ_TOKEN })).status).toBe(200);
    }
    const writes: Array<[string, string, unknown]> = [
      ["POST", CLIENTS, clientBody()],
      ["PATCH", one, { client_name: "x" }],
      ["DELETE", one, undefined],
      ["POST", `${one}/rotate_secret`, undefined],
      ["DELETE", `${one}/rotate_secret`, undefined],
    ];
    for (const [method, path, body] of writes) {
      const reply = await call(emu(), method, path, { token: READ_TOKEN, body });
      expect(reply.status, `${method} ${path}`).toBe(403);
      expect(errorCode(reply)).toBe(FAILURES.authReadOnly.code);
    }
    expect((await call(emu(), "GET", one)).body.result).toMatchObject({ client_name: "Demo app" });
  });

  it("accepts X-Auth-Email + X-Auth-Key when the key is a listed token", async () => {
    const ok = await call(emu(), "GET", CLIENTS, {
      token: null,
      headers: { "x-auth-email": "ops@example.com", "x-auth-key": WRITE_TOKEN },
    });
    expect(ok.status).toBe(200);
    const bad = await call(emu(), "GET", CLIENTS, {
      token: null,
      headers: { "x-auth-email": "ops@example.com", "x-auth-key": "wrong" },
    });
    expect(bad.status).toBe(403);
  });

  it("accepts any non-empty credential when no token list is configured", async () => {
    const open = await startTestEmulator({ tokens: [], readOnlyTokens: [] });
    expect((await call(open, "POST", CLIENTS, { token: "anything", body: clientBody() })).status).toBe(200);
    const key = await call(open, "GET", CLIENTS, {
      token: null,
      headers: { "x-auth-email": "a@example.com", "x-auth-key": "k" },
    });
    expect(key.status).toBe(200);
    expect((await call(open, "GET", CLIENTS, { token: null })).status).toBe(401);
  });
});

describe("rate limit", () => {
  it("sends Ratelimit and Ratelimit-Policy on every response, errors included", async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 10, windowSeconds: 60 } });
    const ok = await call(emu, "GET", CLIENTS);
    expect(ok.headers.get("ratelimit")).toMatch(/^"default";r=9;t=\d+$/);
    expect(ok.headers.get("ratelimit-policy")).toBe('"default";q=10;w=60');
    const notFound = await call(emu, "GET", `${CLIENTS}/${"0".repeat(32)}`);
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get("ratelimit")).toMatch(/^"default";r=8;t=\d+$/);
    const invalid = await call(emu, "POST", CLIENTS, { body: {} });
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get("ratelimit-policy")).toBe('"default";q=10;w=60');
    const anonymous = await call(emu, "GET", CLIENTS, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("ratelimit")).toMatch(/^"default";r=9;t=\d+$/);
  });

  it("locks a credential out with 429 and Retry-After for the rest of the window, then lets it back", async () => {
    const clock = manualClock();
    const emu = await startTestEmulator({ rateLimit: { quota: 3, windowSeconds: 60 }, now: clock.now });
    for (let i = 0; i < 3; i++) expect((await call(emu, "GET", CLIENTS)).status).toBe(200);
    clock.advance(20_000);
    const limited = await call(emu, "GET", CLIENTS);
    expect(limited.status).toBe(429);
    expect(errorCode(limited)).toBe(FAILURES.rateLimited.code);
    expect(limited.headers.get("retry-after")).toBe("40");
    expect(limited.headers.get("ratelimit")).toBe('"default";r=0;t=40');
    expect(limited.headers.get("ratelimit-policy")).toBe('"default";q=3;w=60');
    clock.advance(39_000);
    expect((await call(emu, "POST", CLIENTS, { body: clientBody() })).status).toBe(429);
    expect((await call(emu, "GET", CLIENTS, { token: READ_TOKEN })).status).toBe(200);
    expect((await control<{ rate_limited: number }>(emu, "GET", "stats")).rate_limited).toBe(2);
    clock.advance(1_000);
    const back = await call(emu, "GET", CLIENTS);
    expect(back.status).toBe(200);
    expect(back.headers.get("ratelimit")).toBe('"default";r=2;t=60');
    expect(back.headers.get("retry-after")).toBeNull();
  });

  it("does not rate limit or count control endpoints", async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 1, windowSeconds: 60 } });
    for (let i = 0; i < 5; i++) await control(emu, "GET", "stats");
    const res = await fetch(`${emu.origin}/__emulator/stats`);
    expect(res.headers.get("ratelimit")).toBeNull();
    expect((await call(emu, "GET", CLIENTS)).status).toBe(200);
  });
});

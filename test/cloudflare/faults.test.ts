import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { CloudflareApiError } from "../../src/cloudflare/index.js";
import { startTestEmulator } from "../helpers/emulator.js";
import {
  ACCOUNT,
  body,
  CLIENT_ROUTE,
  CLIENTS_ROUTE,
  rejection,
  ROTATE_ROUTE,
  routeStats,
  secretIsValid,
  setFaults,
  stats,
  WRITE_TOKEN,
  writer,
} from "./support.js";

describe("retries", () => {
  it("retries GETs through injected 5xx faults", async () => {
    const emu = await startTestEmulator({ seed: 7, fault5xxRate: 0.4 });
    const api = writer(emu, { maxAttempts: 10 });
    try {
      for (let i = 0; i < 20; i++) expect(await api.listClients(ACCOUNT)).toEqual([]);
      const s = await stats(emu);
      expect(s.faults.error_5xx).toBeGreaterThan(0);
      expect(s.by_route_status[`GET ${CLIENTS_ROUTE}`]).toEqual({ "200": 20, "500": s.faults.error_5xx });
    } finally {
      await api.close();
    }
  });

  it("retries GETs and PATCHes through connection resets", async () => {
    const emu = await startTestEmulator({ seed: 11 });
    const api = writer(emu, { maxAttempts: 10 });
    try {
      const { client } = await api.createClient(ACCOUNT, body("resets"), { existingClientIds: [] });
      await setFaults(emu, { faultResetRate: 0.4 });
      for (let i = 0; i < 10; i++) {
        const uri = `https://app.example.com/cb/${i}`;
        expect(await api.updateClient(ACCOUNT, client.client_id, { redirect_uris: [uri] })).toMatchObject({
          redirect_uris: [uri],
        });
        expect((await api.getClient(ACCOUNT, client.client_id)).redirect_uris).toEqual([uri]);
      }
      expect((await stats(emu)).faults.reset).toBeGreaterThan(0);
      // Exhausted on resets: the error (and its undici cause) never carries the token.
      const failing = writer(emu, { maxAttempts: 1 });
      await setFaults(emu, { faultResetRate: 1 });
      const error = await rejection(failing.listClients(ACCOUNT));
      await failing.close();
      expect(error).toMatchObject({ code: "E_API_NETWORK", ambiguous: true, retryable: true });
      expect(inspect(error, { depth: 10 })).not.toContain(WRITE_TOKEN);
    } finally {
      await api.close();
    }
  });

  it("retries a create refused before sending (ECONNREFUSED), without any check", async () => {
    const port = await freePort();
    const api = writer({ url: `http://127.0.0.1:${port}/client/v4` }, { maxAttempts: 3 });
    try {
      const error = await rejection(api.createClient(ACCOUNT, body("refused"), { existingClientIds: [] }));
      // Had the failure been treated as ambiguous, the check (a list) would fail: E_CREATE_AMBIGUOUS.
      expect(error).toMatchObject({ code: "E_API_NETWORK", ambiguous: false, attempts: 3, retryable: true });
      expect(error.message).toContain("ECONNREFUSED");
    } finally {
      await api.close();
    }
  });

  it("gives up after maxAttempts with the last error", async () => {
    const emu = await startTestEmulator({ fault5xxRate: 1 });
    const api = writer(emu, { maxAttempts: 3 });
    try {
      const error = await rejection(api.listScopes());
      expect(error).toMatchObject({ code: "E_API_HTTP", status: 500, attempts: 3, disposition: "transient" });
      expect((await stats(emu)).total).toBe(3);
    } finally {
      await api.close();
    }
  });
});

describe("no blind create retries", () => {
  it("makes exactly 50 clients from 50 creates when 30% of answers are dropped after commit", async () => {
    const emu = await startTestEmulator({ seed: 42, faultDropAfterCommitRate: 0.3 });
    const api = writer(emu, { maxAttempts: 8 });
    try {
      const results = [];
      for (let i = 0; i < 50; i++) {
        results.push(await api.createClient(ACCOUNT, body(`dup-check-${i}`), { existingClientIds: [] }));
      }
      const recovered = results.filter((r) => r.recovered);
      expect(recovered.length).toBeGreaterThan(0);
      for (const r of recovered) expect(r).toMatchObject({ secret: null, secretLost: true });

      await setFaults(emu, { faultDropAfterCommitRate: 0 });
      const live = await api.listClients(ACCOUNT);
      expect(live).toHaveLength(50);
      expect(new Set(live.map((c) => c.client_name)).size).toBe(50);
      // Exactly 50 creates reached the store: 200s plus the dropped answers, nothing more.
      const creates = await routeStats(emu, `POST ${CLIENTS_ROUTE}`);
      expect(creates).toEqual({ "200": 50 - recovered.length, dropped: recovered.length });

      // The answered ones carry a working secret; a lost one can be replaced by rotating.
      const answered = results.find((r) => !r.recovered)!;
      expect(await secretIsValid(emu, answered.client.client_id, answered.secret!)).toBe(true);
      const minted = await api.rotateSecret(ACCOUNT, recovered[0]!.client.client_id);
      expect(await secretIsValid(emu, recovered[0]!.client.client_id, minted)).toBe(true);
    } finally {
      await api.close();
    }
  });

  it("does not mistake a client that existed before the create for the one it made", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      const first = await api.createClient(ACCOUNT, body("same-name"));
      await setFaults(emu, { faultDropAfterCommitRate: 1 });
      const second = await api.createClient(ACCOUNT, body("same-name")); // snapshot taken by listing
      expect(second).toMatchObject({ recovered: true, secretLost: true });
      expect(second.client.client_id).not.toBe(first.client.client_id);
      await setFaults(emu, { faultDropAfterCommitRate: 0 });
      expect((await api.listClients(ACCOUNT)).filter((c) => c.client_name === "same-name")).toHaveLength(2);
      expect(await routeStats(emu, `POST ${CLIENTS_ROUTE}`)).toEqual({ "200": 1, dropped: 1 });
    } finally {
      await api.close();
    }
  });

  it("re-sends a create that a 5xx refused before doing anything", async () => {
    const emu = await startTestEmulator({ fault5xxRate: 1 });
    // The injected sleep clears the fault, so exactly the first attempt fails.
    const api = writer(emu, { random: () => 1, sleep: () => setFaults(emu, { fault5xxRate: 0 }) });
    try {
      const created = await api.createClient(ACCOUNT, body("after-5xx"), { existingClientIds: [] });
      expect(created).toMatchObject({ recovered: false, secretLost: false });
      expect(await routeStats(emu, `POST ${CLIENTS_ROUTE}`)).toEqual({ "200": 1, "500": 1 });
      expect((await routeStats(emu, `GET ${CLIENTS_ROUTE}`))["200"]).toBe(1); // the check
    } finally {
      await api.close();
    }
  });
});

describe("rotation and deletes after an ambiguous failure", () => {
  it("fails with E_ROTATE_AMBIGUOUS, never a second rotate, when the answer is lost after commit", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      const { client } = await api.createClient(ACCOUNT, body("rotate-lost"), { existingClientIds: [] });
      await setFaults(emu, { faultDropAfterCommitRate: 1 });
      const error = await rejection(api.rotateSecret(ACCOUNT, client.client_id));
      expect(error).toBeInstanceOf(CloudflareApiError);
      expect(error).toMatchObject({ code: "E_ROTATE_AMBIGUOUS", retryable: false, ambiguous: true });
      expect(error.message).toContain("has_rotated_secret is now true");
      expect(await routeStats(emu, `POST ${ROTATE_ROUTE}`)).toEqual({ dropped: 1 });
    } finally {
      await api.close();
    }
  });

  it("re-sends a rotate once a re-read shows it did not happen", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu, { random: () => 1, sleep: () => setFaults(emu, { fault5xxRate: 0 }) });
    try {
      const { client } = await api.createClient(ACCOUNT, body("rotate-retry"), { existingClientIds: [] });
      await setFaults(emu, { fault5xxRate: 1 });
      const secret = await api.rotateSecret(ACCOUNT, client.client_id);
      expect(await secretIsValid(emu, client.client_id, secret)).toBe(true);
      expect(await routeStats(emu, `POST ${ROTATE_ROUTE}`)).toEqual({ "200": 1, "500": 1 });
      expect(await routeStats(emu, `GET ${CLIENT_ROUTE}`)).toEqual({ "200": 1 });
    } finally {
      await api.close();
    }
  });

  it("treats a delete whose answer was lost as done once the client is gone", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      const { client } = await api.createClient(ACCOUNT, body("delete-lost"), { existingClientIds: [] });
      await api.rotateSecret(ACCOUNT, client.client_id);
      await setFaults(emu, { faultDropAfterCommitRate: 1 });
      await api.deleteRotatedSecret(ACCOUNT, client.client_id);
      await api.deleteClient(ACCOUNT, client.client_id);
      await setFaults(emu, { faultDropAfterCommitRate: 0 });
      expect(await api.listClients(ACCOUNT)).toEqual([]);
      expect(await routeStats(emu, `DELETE ${CLIENT_ROUTE}`)).toEqual({ dropped: 1 });
      expect(await routeStats(emu, `DELETE ${ROTATE_ROUTE}`)).toEqual({ dropped: 1 });
    } finally {
      await api.close();
    }
  });
});

describe("rate limit", () => {
  it("honours Retry-After from the emulator's lockout instead of failing", async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 5, windowSeconds: 2 } });
    const delays: number[] = [];
    const api = writer(emu, {
      rateBudget: { enabled: false },
      sleep: (ms, signal) => {
        delays.push(ms);
        return sleep(ms, undefined, { signal });
      },
    });
    try {
      for (let i = 0; i < 8; i++) expect(await api.listClients(ACCOUNT)).toEqual([]);
      const s = await stats(emu);
      expect(s.rate_limited).toBeGreaterThan(0);
      expect(s.by_route_status[`GET ${CLIENTS_ROUTE}`]?.["200"]).toBe(8);
      // Waits came from Retry-After (whole seconds), not from the 10-100 ms backoff.
      expect(delays.length).toBe(s.rate_limited);
      for (const d of delays) expect(d % 1000 === 0 && d >= 1000).toBe(true);
    } finally {
      await api.close();
    }
  });

  it("gives up with E_API_RATE_LIMITED when Retry-After is past the total-time bound", async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 2, windowSeconds: 30 } });
    const api = writer(emu, { rateBudget: { enabled: false }, maxRetryTimeMs: 1_000 });
    try {
      await api.listClients(ACCOUNT);
      await api.listClients(ACCOUNT);
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toMatchObject({ code: "E_API_RATE_LIMITED", status: 429, retryable: true, attempts: 1 });
      expect((await stats(emu)).rate_limited).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("paces itself under a small quota so no request is refused", async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 6, windowSeconds: 1 } });
    const api = writer(emu, { rateBudget: { resetMarginMs: 250 } });
    try {
      await Promise.all(Array.from({ length: 12 }, () => api.listClients(ACCOUNT)));
      const s = await stats(emu);
      expect(s.rate_limited).toBe(0);
      expect(s.total).toBe(12);
      expect(api.budget.snapshot()).toMatchObject({ quota: 6, window: 1, inFlight: 0 });
    } finally {
      await api.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

import { describe, expect, it } from "vitest";
import { startTestEmulator } from "../helpers/emulator.js";
import { ACCOUNT, body, stats, writer } from "./support.js";

/**
 * The rate budget against the emulator's real limiter: quota 100 per 4 s, 500 calls from 6 workers
 * sharing one client. Going over would mean 429s (and on the real API a lockout), so the assertion is
 * the emulator's own count of refused requests. Takes 5 windows by nature, about 20 s.
 */
describe("rate budget end to end", () => {
  it("finishes 500 mixed list/get calls at concurrency 6 with zero 429s", { timeout: 180_000 }, async () => {
    const emu = await startTestEmulator({ rateLimit: { quota: 100, windowSeconds: 4 } });
    const api = writer(emu, { maxAttempts: 1 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push(
          (await api.createClient(ACCOUNT, body(`budget-${i}`), { existingClientIds: [] })).client.client_id,
        );
      }
      let next = 0;
      const worker = async () => {
        for (let n = next++; n < 500; n = next++) {
          if (n % 2 === 0) expect(await api.listClients(ACCOUNT)).toHaveLength(3);
          else expect((await api.getClient(ACCOUNT, ids[n % 3]!)).client_id).toBe(ids[n % 3]);
        }
      };
      await Promise.all(Array.from({ length: 6 }, worker));

      const s = await stats(emu);
      expect(s.rate_limited).toBe(0);
      expect(s.by_method["GET"]).toBe(500);
      expect(s.total).toBe(503);
      const snap = api.budget.snapshot();
      expect(snap).toMatchObject({ quota: 100, window: 4, inFlight: 0 });
      expect(snap.remaining).toBeGreaterThanOrEqual(0);
    } finally {
      await api.close();
    }
  });
});

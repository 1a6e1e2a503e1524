import { describe, expect, it } from "vitest";
import type { SecretEvent } from "../../src/emulator/store.js";
import { ACCOUNT_A, ACCOUNT_B, control, startTestEmulator } from "../helpers/emulator.js";
import { call, createClient } from "./support.js";

/**
 * `GET /__emulator/secret-events`: when each secret was issued, rotated, its rotated secret deleted
 * or its client deleted, on the emulator's clock (here a manual one, so the times are exact). The
 * consumer proofs measure their windows from these moments (test/oauth/consumer-proof.test.ts).
 */
describe("secret events", () => {
  it("records issue, rotation, deletion of the rotated secret and of the client, with the store's clock and no secret", async () => {
    let now = Date.parse("2026-12-01T00:00:00.000Z");
    const emu = await startTestEmulator({ now: () => new Date(now) });
    const path = `/accounts/${ACCOUNT_A}/oauth_clients`;
    const created = await createClient(emu, ACCOUNT_A);
    const id = created.client_id;
    const other = await createClient(emu, ACCOUNT_B);
    const publicClient = await createClient(emu, ACCOUNT_A, {
      token_endpoint_auth_method: "none",
      client_name: "spa",
    });
    now += 1_250;
    const rotated = await call<{ client_secret: string }>(emu, "POST", `${path}/${id}/rotate_secret`);
    now += 7;
    expect((await call(emu, "DELETE", `${path}/${id}/rotate_secret`)).status).toBe(200);
    now += 3;
    expect((await call(emu, "DELETE", `${path}/${id}`)).status).toBe(200);

    const mine = await control<SecretEvent[]>(emu, "GET", `secret-events?client_id=${id}`);
    expect(mine).toEqual([
      { at: "2026-12-01T00:00:00.000Z", account_id: ACCOUNT_A, client_id: id, event: "secret_issued" },
      { at: "2026-12-01T00:00:01.250Z", account_id: ACCOUNT_A, client_id: id, event: "secret_rotated" },
      {
        at: "2026-12-01T00:00:01.257Z",
        account_id: ACCOUNT_A,
        client_id: id,
        event: "rotated_secret_deleted",
      },
      { at: "2026-12-01T00:00:01.260Z", account_id: ACCOUNT_A, client_id: id, event: "client_deleted" },
    ]);
    // A public client has no secret to issue.
    const accountA = await control<SecretEvent[]>(emu, "GET", `secret-events?account_id=${ACCOUNT_A}`);
    expect(accountA.map((e) => e.client_id)).not.toContain(publicClient.client_id);
    expect(accountA.map((e) => e.client_id)).not.toContain(other.client_id);
    const all = await control<SecretEvent[]>(emu, "GET", "secret-events");
    expect(all.filter((e) => e.client_id === other.client_id).map((e) => e.event)).toEqual(["secret_issued"]);
    const text = JSON.stringify(all);
    for (const secret of [created.client_secret, other.client_secret, rotated.body.result.client_secret]) {
      expect(typeof secret).toBe("string");
      expect(text).not.toContain(secret);
    }

    await control(emu, "POST", "reset");
    expect(await control(emu, "GET", "secret-events")).toEqual([]);
  });
});

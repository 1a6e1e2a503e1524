import { describe, expect, it } from "vitest";
import { ApiFailure } from "../../src/emulator/failure.js";
import { createStreams } from "../../src/emulator/prng.js";
import { loadScopeCatalogue } from "../../src/emulator/scopes.js";
import { ClientStore } from "../../src/emulator/store.js";
import { ACCOUNT_A, ACCOUNT_B } from "../helpers/emulator.js";
import { clientBody } from "./support.js";

/** The store's rules without HTTP: the same module the server calls, driven directly. */
function newStore(seed = 5) {
  const streams = createStreams(seed);
  return new ClientStore({
    catalogue: loadScopeCatalogue(),
    now: () => new Date("2026-02-01T00:00:00.000Z"),
    random: () => streams,
  });
}

function failureOf(fn: () => unknown): ApiFailure {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiFailure) return error;
    throw error;
  }
  throw new Error("expected an ApiFailure");
}

describe("ClientStore", () => {
  it("creates the same ids and secrets for the same seed", () => {
    const a = newStore(9).create(ACCOUNT_A, clientBody());
    const b = newStore(9).create(ACCOUNT_A, clientBody());
    const c = newStore(10).create(ACCOUNT_A, clientBody());
    expect(b).toEqual(a);
    expect(c.client.client_id).not.toBe(a.client.client_id);
  });

  it("changes nothing when a PATCH fails", () => {
    const store = newStore();
    const { client } = store.create(ACCOUNT_A, clientBody());
    const failure = failureOf(() =>
      store.update(ACCOUNT_A, client.client_id, { client_name: "x", scopes: ["a:b"] }),
    );
    expect(failure.kind).toBe("invalidScope");
    expect(failure.code).toBe("E_EMULATOR_REFUSED");
    expect(store.get(ACCOUNT_A, client.client_id)).toBe(client);
  });

  it("round-trips through a snapshot with secret digests only", () => {
    const store = newStore();
    const { client, client_secret } = store.create(ACCOUNT_A, clientBody());
    store.create(ACCOUNT_B, clientBody({ token_endpoint_auth_method: "none" }));
    const snapshot = JSON.parse(JSON.stringify(store.toSnapshot())) as unknown;
    expect(JSON.stringify(snapshot)).not.toContain(client_secret);
    const copy = newStore(99);
    copy.loadSnapshot(snapshot, "memory");
    expect(copy.dump()).toEqual(store.dump());
    expect(copy.checkSecret(ACCOUNT_A, client.client_id, client_secret)).toEqual({
      valid: true,
      slot: "current",
    });
  });

  it("holds 10,000 clients across accounts and lists them in creation order", () => {
    const store = newStore();
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      ids.push(
        store.create(i % 2 ? ACCOUNT_A : ACCOUNT_B, clientBody({ client_name: `c${i}` })).client.client_id,
      );
    }
    expect(store.size).toBe(10_000);
    expect(new Set(ids).size).toBe(10_000);
    expect(store.list(ACCOUNT_A).map((c) => c.client_id)).toEqual(ids.filter((_, i) => i % 2));
  });
});

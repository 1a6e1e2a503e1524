import { describe, expect, it } from "vitest";
import { expectedClients, judgeListing, unlistedIds, type ConfirmOutcome } from "../../src/core/listing.js";
import { ACCOUNT_A, ACCOUNT_B, desired, id, inventory, live, owned, state } from "./fixtures.js";

/**
 * core/listing.ts: which clients a list answer must show, and the verdict once every client it left
 * out has been looked up. The GETs themselves are made by engine/live.ts (tested end to end in
 * test/e2e/list-omissions.test.ts).
 */

const A = id("a");
const B = id("b");
const C = id("c");
const PINNED = id("p");

describe("expectedClients", () => {
  it("owned, pinned and journaled ids, per account in scope; owned counts only the inventory", () => {
    const desiredState = state([
      desired("pinned", {}, { client_id: PINNED }),
      desired("other", {}, { account_id: ACCOUNT_B }),
    ]);
    const inv = inventory({ [ACCOUNT_A]: [owned(A, "a"), owned(B, "b"), owned(A, "a")] });
    const journal = [
      { account_id: ACCOUNT_A, client_id: C },
      { account_id: ACCOUNT_A, client_id: null },
      { account_id: ACCOUNT_B, client_id: id("j") },
    ];
    const expected = expectedClients([ACCOUNT_A], desiredState, inv, journal);
    expect([...expected.keys()]).toEqual([ACCOUNT_A]);
    expect(expected.get(ACCOUNT_A)).toEqual({ ids: new Set([A, B, PINNED, C]), owned: 2 });
  });

  it("an account with nothing on record expects nothing", () => {
    const expected = expectedClients([ACCOUNT_B], state([]), inventory());
    expect(expected.get(ACCOUNT_B)).toEqual({ ids: new Set(), owned: 0 });
  });
});

describe("unlistedIds", () => {
  it("the expected ids the list did not show, sorted", () => {
    const expected = { ids: new Set([C, A, B]), owned: 3 };
    expect(unlistedIds([live(B, {})], expected)).toEqual([A, C]);
    expect(unlistedIds([live(A, {}), live(B, {}), live(C, {}), live(id("x"), {})], expected)).toEqual([]);
    expect(unlistedIds([], undefined)).toEqual([]);
  });
});

describe("judgeListing", () => {
  const expected = { ids: new Set([A, B, C]), owned: 3 };
  const gone = (clientId: string): ConfirmOutcome => ({ client_id: clientId, status: "gone" });
  const found = (clientId: string): ConfirmOutcome => ({ client_id: clientId, status: "found" });
  const failed = (clientId: string): ConfirmOutcome => ({
    client_id: clientId,
    status: "failed",
    error: { code: "E_API_HTTP", message: "GET …: 500" },
  });

  it("every unlisted client confirmed gone: complete, and those are the gone ones", () => {
    expect(judgeListing(ACCOUNT_A, 1, expected, [gone(A), gone(C)])).toEqual({
      ok: true,
      gone: new Set([A, C]),
    });
    expect(judgeListing(ACCOUNT_A, 3, expected, [])).toEqual({ ok: true, gone: new Set() });
  });

  it("a client found by GET: E_LIST_INCOMPLETE, saying what was seen", () => {
    const verdict = judgeListing(ACCOUNT_A, 0, expected, [gone(A), found(B), failed(C)]);
    expect(verdict).toEqual({
      ok: false,
      code: "E_LIST_INCOMPLETE",
      client_ids: [B],
      message: `account ${ACCOUNT_A}: the list showed 0 clients and the inventory owns 3; client ${B} exists but was not listed: the list answer is incomplete, so nothing is planned or changed; run again later`,
    });
  });

  it("several found: names the first three and counts the rest", () => {
    const ids = [A, B, C, id("d"), id("e")];
    const verdict = judgeListing(ACCOUNT_A, 1, { ids: new Set(ids), owned: 5 }, ids.map(found));
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.message).toContain("the list showed 1 client and the inventory owns 5");
    expect(verdict.message).toContain(`clients ${A}, ${B}, ${C} and 2 more exist but were not listed`);
  });

  it("a lookup that failed: E_LIST_UNCONFIRMED with the lookup's error", () => {
    const verdict = judgeListing(ACCOUNT_A, 2, expected, [gone(A), failed(C)]);
    expect(verdict).toMatchObject({ ok: false, code: "E_LIST_UNCONFIRMED", client_ids: [C] });
    if (verdict.ok) return;
    expect(verdict.message).toContain(
      `client ${C} was not listed and could not be looked up (E_API_HTTP: GET …: 500)`,
    );
    expect(verdict.message).toContain("nothing is planned or changed");
  });
});

import { describe, expect, it } from "vitest";
import { OAUTH_LIFETIMES } from "../../src/emulator/behaviour.js";
import { OAuthGrants } from "../../src/emulator/grants.js";

/**
 * The authorization server's sweep (src/emulator/grants.ts): what has expired is dropped when the next
 * code or token is issued, what has not stays (a used refresh token is kept until it expires, to catch
 * a replay), and the walk stops at the first live entry. Held on a manual clock.
 */
describe("the grant store's sweep", () => {
  it("drops expired codes and tokens, keeps live and used-but-unexpired ones, and refuses expired ones", () => {
    let now = Date.parse("2026-12-01T00:00:00Z");
    const grants = new OAuthGrants(() => new Date(now));
    const login = (): string => {
      const code = grants.issueCode({
        clientId: "c",
        redirectUri: "https://app.example.com/callback",
        scopes: ["offline_access"],
        userId: "u",
      });
      const tokens = grants.exchangeCode("c", code, "https://app.example.com/callback", undefined, true);
      return tokens.refresh_token ?? "";
    };
    // A refresh loop: every refresh keeps the used token and adds a new one.
    let refresh = login();
    for (let i = 0; i < 50; i++) refresh = grants.refresh("c", refresh, undefined).refresh_token ?? "";
    expect(grants.size).toEqual({ codes: 1, access: 51, refresh: 51 });

    // Past the access lifetime: the next issue drops the expired access tokens and the code, and
    // keeps the refresh tokens (used ones included) until theirs.
    now += OAUTH_LIFETIMES.accessTokenSeconds * 1000;
    const early = refresh;
    expect(grants.refresh("c", refresh, undefined).refresh_token).toBeTruthy();
    expect(grants.size).toEqual({ codes: 0, access: 1, refresh: 52 });
    expect(() => grants.refresh("c", early, undefined)).toThrow(/already used/);

    // The reuse above revoked the grant; a new login, then past every lifetime of the old grant's tokens.
    const fresh = login();
    now += OAUTH_LIFETIMES.refreshTokenSeconds * 1000 - 1;
    expect(grants.refresh("c", fresh, undefined).refresh_token).toBeTruthy();
    now += 2;
    const last = login();
    // Left: the live tokens of the refresh a moment ago, and the new login's code and tokens.
    expect(grants.size).toEqual({ codes: 1, access: 2, refresh: 2 });
    expect(grants.refresh("c", last, undefined).refresh_token).toBeTruthy();
  });

  it("never accepts an entry after its expiry, even when the clock stepped back and the walk stopped early", () => {
    let now = Date.parse("2026-12-01T00:00:00Z");
    const grants = new OAuthGrants(() => new Date(now));
    const issue = () =>
      grants.issueCode({ clientId: "c", redirectUri: "https://app.example.com/cb", scopes: [], userId: "u" });
    issue();
    now -= 60_000; // the clock steps back a minute: the next code expires before the first
    const second = issue();
    now += OAUTH_LIFETIMES.codeSeconds * 1000 + 30_000; // past the second's expiry, not the first's
    issue();
    expect(grants.size.codes).toBe(3);
    expect(() => grants.exchangeCode("c", second, "https://app.example.com/cb", undefined, false)).toThrow(
      /unknown, expired/,
    );
  });
});

import { describe, expect, it } from "vitest";
import { closest, levenshtein } from "../../src/config/suggest.js";

describe("suggestions", () => {
  it("counts edits, with a swap of neighbours as one", () => {
    expect(levenshtein("prune", "prune")).toBe(0);
    expect(levenshtein("prun", "prune")).toBe(1);
    expect(levenshtein("vualt", "vault")).toBe(1);
    expect(levenshtein("kitten", "sitting")).toBe(3);
  });

  it.each([
    ["prun", ["prune", "desired", "ignore"], "prune"],
    ["scope", ["scopes", "optional_scopes"], "scopes"],
    ["tokenEndpointAuthMethod", ["token_endpoint_auth_method", "client_name"], "token_endpoint_auth_method"],
    ["redirect_uri", ["redirect_uris", "post_logout_redirect_uris"], "redirect_uris"],
    ["authorisation_code", ["authorization_code", "refresh_token"], "authorization_code"],
  ])("suggests %s -> %s", (word, candidates, expected) => {
    expect(closest(word, candidates)).toBe(expected);
  });

  it("suggests nothing when nothing is close", () => {
    expect(closest("bucket", ["type", "dir", "format"])).toBeUndefined();
    expect(closest("client_credentials", ["authorization_code", "refresh_token"])).toBeUndefined();
    expect(closest("x".repeat(500), ["x"])).toBeUndefined();
  });
});

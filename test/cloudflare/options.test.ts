import { describe, expect, it } from "vitest";
import { clientOptionsFromEnv, DEFAULT_BASE_URL } from "../../src/cloudflare/index.js";
import { GitOpsError } from "../../src/errors.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof GitOpsError ? e.code : "not a GitOpsError";
  }
  return undefined;
}

describe("clientOptionsFromEnv", () => {
  it("reads a token and defaults the base URL", () => {
    const opts = clientOptionsFromEnv({ CLOUDFLARE_API_TOKEN: "tok-canary" });
    expect(opts.baseUrl).toBe(DEFAULT_BASE_URL);
    expect(opts.credentials.kind).toBe("token");
    expect(JSON.stringify(opts)).not.toContain("tok-canary");
  });

  it("reads email + key and a custom base URL without trailing slash", () => {
    const opts = clientOptionsFromEnv({
      CLOUDFLARE_BASE_URL: "http://127.0.0.1:9/client/v4/",
      CLOUDFLARE_EMAIL: "ops@example.com",
      CLOUDFLARE_API_KEY: "key-canary",
    });
    expect(opts.baseUrl).toBe("http://127.0.0.1:9/client/v4");
    expect(opts.credentials).toMatchObject({ kind: "key", email: "ops@example.com" });
    expect(JSON.stringify(opts)).not.toContain("key-canary");
  });

  it("prefers the token when both kinds are set", () => {
    const opts = clientOptionsFromEnv({
      CLOUDFLARE_API_TOKEN: "t",
      CLOUDFLARE_EMAIL: "e",
      CLOUDFLARE_API_KEY: "k",
    });
    expect(opts.credentials.kind).toBe("token");
  });

  it("fails with E_NO_CREDENTIALS naming what is missing", () => {
    expect(codeOf(() => clientOptionsFromEnv({}))).toBe("E_NO_CREDENTIALS");
    expect(codeOf(() => clientOptionsFromEnv({ CLOUDFLARE_API_TOKEN: "  " }))).toBe("E_NO_CREDENTIALS");
    expect(() => clientOptionsFromEnv({ CLOUDFLARE_EMAIL: "ops@example.com" })).toThrow(/CLOUDFLARE_API_KEY/);
  });

  it("rejects an unusable base URL", () => {
    expect(
      codeOf(() => clientOptionsFromEnv({ CLOUDFLARE_API_TOKEN: "t", CLOUDFLARE_BASE_URL: "nope" })),
    ).toBe("E_BAD_BASE_URL");
    expect(
      codeOf(() =>
        clientOptionsFromEnv({ CLOUDFLARE_API_TOKEN: "t", CLOUDFLARE_BASE_URL: "ftp://x/client/v4" }),
      ),
    ).toBe("E_BAD_BASE_URL");
  });
});

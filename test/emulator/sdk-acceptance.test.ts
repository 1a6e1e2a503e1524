import Cloudflare from "cloudflare";
import { describe, expect, it } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import {
  ACCOUNT_A,
  READ_TOKEN,
  WRITE_TOKEN,
  control,
  startTestEmulator,
  useEmulator,
  verifyClientUri,
} from "../helpers/emulator.js";

/**
 * Acceptance: the official `cloudflare` SDK (7.3.x) drives the emulator through the whole client
 * life cycle. If the SDK can talk to the emulator, the reconciler's tests against it mean something.
 */

function sdk(emu: EmulatorHandle, token = WRITE_TOKEN): Cloudflare {
  return new Cloudflare({
    apiToken: token,
    apiEmail: null,
    apiKey: null,
    userServiceKey: null,
    baseURL: emu.url,
    maxRetries: 0,
  });
}

/** The rejection of `promise`, which must be an SDK APIError. */
async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof Cloudflare.APIError>> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Cloudflare.APIError);
  return error as InstanceType<typeof Cloudflare.APIError>;
}

const base = {
  account_id: ACCOUNT_A,
  redirect_uris: ["https://app.example.com/callback"],
  response_types: ["code" as const],
};

describe("the official cloudflare SDK against the emulator", () => {
  const emu = useEmulator();

  it("runs the whole life cycle", async () => {
    const cf = sdk(emu());
    const clients = cf.iam.oauthClients;

    const scopes = await cf.iam.oauthScopes.list();
    expect(scopes.result.map((s) => s.id)).toContain("account-settings.read");

    const confidential = await clients.create({
      ...base,
      client_name: "Dashboard",
      grant_types: ["authorization_code", "refresh_token"],
      scopes: ["account-settings.read", "email"],
      token_endpoint_auth_method: "client_secret_basic",
      client_uri: "https://app.example.com/",
      logo_uri: "https://app.example.com/logo.png",
    });
    expect(confidential.client_secret).toMatch(/^[0-9a-f]{64}$/);
    expect(confidential.scopes).toEqual(["account-settings.read", "email", "offline_access"]);
    expect(confidential.client_uri_verification?.status).toBe("pending");
    const id = confidential.client_id;

    const pkce = await clients.create({
      ...base,
      client_name: "CLI",
      grant_types: ["authorization_code"],
      scopes: ["user-details.read"],
      token_endpoint_auth_method: "none",
    });
    expect(pkce.client_secret).toBeUndefined();

    const page = await clients.list({ account_id: ACCOUNT_A });
    expect(page.result.map((c) => c.client_id)).toEqual([id, pkce.client_id]);
    expect(page.result.every((c) => !("client_secret" in c))).toBe(true);

    const got = await clients.get(id, { account_id: ACCOUNT_A });
    expect(got.client_name).toBe("Dashboard");

    const renamed = await clients.update(id, { account_id: ACCOUNT_A, client_name: "Dashboard 2" });
    expect(renamed.client_name).toBe("Dashboard 2");
    expect(renamed.redirect_uris).toEqual(base.redirect_uris);

    const replaced = await clients.update(id, {
      account_id: ACCOUNT_A,
      redirect_uris: ["https://app.example.com/b", "https://app.example.com/c"],
    });
    expect(replaced.redirect_uris).toEqual(["https://app.example.com/b", "https://app.example.com/c"]);

    await verifyClientUri(emu(), ACCOUNT_A, id);
    const promoted = await clients.update(id, { account_id: ACCOUNT_A, visibility: "public" });
    expect(promoted.visibility).toBe("public");
    expect(promoted.promoted_at).toBeTruthy();

    const demotion = await apiError(
      clients.update(id, { account_id: ACCOUNT_A, visibility: "private" as unknown as "public" }),
    );
    expect(demotion.status).toBe(400);
    expect((await clients.get(id, { account_id: ACCOUNT_A })).visibility).toBe("public");

    const rotated = await clients.rotateSecret(id, { account_id: ACCOUNT_A });
    expect(rotated.client_secret).toMatch(/^[0-9a-f]{64}$/);
    expect((await clients.get(id, { account_id: ACCOUNT_A })).has_rotated_secret).toBe(true);
    const secondRotate = await apiError(clients.rotateSecret(id, { account_id: ACCOUNT_A }));
    expect(secondRotate).toBeInstanceOf(Cloudflare.BadRequestError);
    expect(secondRotate.status).toBe(400);

    const deletedRotated = await clients.deleteRotatedSecret(id, { account_id: ACCOUNT_A });
    expect(deletedRotated).toEqual({ id });
    expect((await clients.get(id, { account_id: ACCOUNT_A })).has_rotated_secret).toBe(false);
    const check = (secret: string | undefined) =>
      control(emu(), "POST", "check-secret", { account_id: ACCOUNT_A, client_id: id, client_secret: secret });
    expect(await check(confidential.client_secret)).toEqual({ valid: false, slot: null });
    expect(await check(rotated.client_secret)).toEqual({ valid: true, slot: "current" });

    expect(await clients.delete(id, { account_id: ACCOUNT_A })).toEqual({ id });
    const missing = await apiError(clients.get(id, { account_id: ACCOUNT_A }));
    expect(missing).toBeInstanceOf(Cloudflare.NotFoundError);
    expect(missing.status).toBe(404);
  });

  it.each([["account:read"], ["account.read"]])("refuses scope %s with 400", async (scope) => {
    const error = await apiError(
      sdk(emu()).iam.oauthClients.create({
        ...base,
        client_name: "Bad",
        grant_types: ["authorization_code"],
        scopes: [scope],
        token_endpoint_auth_method: "client_secret_post",
      }),
    );
    expect(error).toBeInstanceOf(Cloudflare.BadRequestError);
    expect(error.errors[0]?.message).toContain(scope);
  });

  it("gives a read-only token 403 on writes and lets it read", async () => {
    const reader = sdk(emu(), READ_TOKEN);
    expect((await reader.iam.oauthClients.list({ account_id: ACCOUNT_A })).result).toBeInstanceOf(Array);
    const error = await apiError(
      reader.iam.oauthClients.create({
        ...base,
        client_name: "Nope",
        grant_types: ["authorization_code"],
        scopes: ["email"],
        token_endpoint_auth_method: "none",
      }),
    );
    expect(error).toBeInstanceOf(Cloudflare.PermissionDeniedError);
    expect(error.status).toBe(403);
  });

  it("gets 429 with Retry-After once the quota is spent", async () => {
    const limited = await startTestEmulator({ rateLimit: { quota: 3, windowSeconds: 120 } });
    const cf = sdk(limited);
    for (let i = 0; i < 3; i++) await cf.iam.oauthClients.list({ account_id: ACCOUNT_A });
    const error = await apiError(cf.iam.oauthClients.list({ account_id: ACCOUNT_A }));
    expect(error).toBeInstanceOf(Cloudflare.RateLimitError);
    expect(error.status).toBe(429);
    expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
    expect(error.headers?.get("ratelimit")).toMatch(/^"default";r=0;t=\d+$/);
  });
});

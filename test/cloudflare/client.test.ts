import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { countMismatch } from "../../src/cloudflare/client.js";
import { CloudflareApiError, createClient } from "../../src/cloudflare/index.js";
import { Secret } from "../../src/secret.js";
import { startTestEmulator } from "../helpers/emulator.js";
import {
  ACCOUNT,
  body,
  capturingLogger,
  CLIENTS_ROUTE,
  optionsFor,
  READ_TOKEN,
  reader,
  rejection,
  routeStats,
  secretIsValid,
  setFaults,
  stats,
  WRITE_TOKEN,
  writer,
} from "./support.js";

describe("CRUD round trip against the emulator", () => {
  it("creates, reads, updates, rotates and deletes a client", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      const created = await api.createClient(
        ACCOUNT,
        body("round-trip", { client_uri: "https://app.example.com" }),
        {
          existingClientIds: [],
        },
      );
      expect(created).toMatchObject({ secretLost: false, recovered: false });
      expect(created.secret).toBeInstanceOf(Secret);
      const id = created.client.client_id;
      expect(created.client).toMatchObject({ client_name: "round-trip", visibility: "private" });
      expect(created.client).not.toHaveProperty("client_secret");
      expect(await secretIsValid(emu, id, created.secret!)).toBe(true);

      expect((await api.listClients(ACCOUNT)).map((c) => c.client_id)).toEqual([id]);
      expect(await api.getClient(ACCOUNT, id)).toMatchObject({ client_id: id, has_rotated_secret: false });

      const updated = await api.updateClient(ACCOUNT, id, {
        redirect_uris: ["https://b.example.com/cb"],
        tos_uri: "https://b.example.com/tos",
      });
      expect(updated).toMatchObject({
        redirect_uris: ["https://b.example.com/cb"],
        tos_uri: "https://b.example.com/tos",
      });
      const cleared = await api.updateClient(ACCOUNT, id, { tos_uri: null });
      expect(cleared).not.toHaveProperty("tos_uri");
      expect(await api.updateClient(ACCOUNT, id, {})).toMatchObject({ client_id: id });

      const rotated = await api.rotateSecret(ACCOUNT, id);
      expect(rotated).toBeInstanceOf(Secret);
      expect((await api.getClient(ACCOUNT, id)).has_rotated_secret).toBe(true);
      expect(await secretIsValid(emu, id, created.secret!)).toBe(true); // the old one still works
      expect(await secretIsValid(emu, id, rotated)).toBe(true);

      await api.deleteRotatedSecret(ACCOUNT, id);
      expect((await api.getClient(ACCOUNT, id)).has_rotated_secret).toBe(false);
      expect(await secretIsValid(emu, id, created.secret!)).toBe(false);
      expect(await secretIsValid(emu, id, rotated)).toBe(true);

      await api.deleteClient(ACCOUNT, id);
      expect(await api.listClients(ACCOUNT)).toEqual([]);
    } finally {
      await api.close();
    }
  });

  it("returns a null secret for a `none` (public PKCE) client, and lists scopes", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      const created = await api.createClient(ACCOUNT, body("pkce", { token_endpoint_auth_method: "none" }));
      expect(created).toMatchObject({ secret: null, secretLost: false, recovered: false });
      const scopes = await api.listScopes();
      expect(scopes.map((s) => s.id)).toContain("account-settings.read");
    } finally {
      await api.close();
    }
  });

  it("lists the account once before a create when the caller passes no snapshot", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      await api.createClient(ACCOUNT, body("snap"));
      expect((await routeStats(emu, `GET ${CLIENTS_ROUTE}`))["200"]).toBe(1);
      await api.createClient(ACCOUNT, body("snap-2"), { existingClientIds: [] });
      expect((await routeStats(emu, `GET ${CLIENTS_ROUTE}`))["200"]).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("authenticates with X-Auth-Email + X-Auth-Key", async () => {
    const emu = await startTestEmulator();
    const api = createClient(
      optionsFor(emu, {
        credentials: { kind: "key", email: "ops@example.com", key: new Secret(WRITE_TOKEN) },
      }),
    );
    try {
      expect(await api.listClients(ACCOUNT)).toEqual([]);
    } finally {
      await api.close();
    }
  });
});

describe("error mapping", () => {
  it("maps a 400 with Cloudflare codes to E_API_HTTP, terminal, not retried", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      const error = await rejection(
        api.createClient(ACCOUNT, body("bad", { grant_types: ["refresh_token"] }), { existingClientIds: [] }),
      );
      expect(error).toBeInstanceOf(CloudflareApiError);
      expect(error).toMatchObject({
        code: "E_API_HTTP",
        status: 400,
        retryable: false,
        disposition: "terminal",
        method: "POST",
        route: CLIENTS_ROUTE,
        path: `/accounts/${ACCOUNT}/oauth_clients`,
      });
      expect((error as unknown as CloudflareApiError).cfErrors[0]?.code).toBe(1001);
      expect(error.message).toMatch(
        new RegExp(`^POST /accounts/${ACCOUNT}/oauth_clients: 400 \\[1001\\] .*grant_types`),
      );
      expect((await routeStats(emu, `POST ${CLIENTS_ROUTE}`))["400"]).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("maps an unknown client to E_API_NOT_FOUND", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      const error = await rejection(api.getClient(ACCOUNT, "ffffffffffffffffffffffffffffffff"));
      expect(error).toMatchObject({ code: "E_API_NOT_FOUND", status: 404, retryable: false });
      expect(error.message).toContain("404 [7003]");
    } finally {
      await api.close();
    }
  });

  it("lets a read-only token read, and maps its writes and bad tokens to E_API_AUTH", async () => {
    const emu = await startTestEmulator();
    const ro = reader(emu);
    const roWriter = createClient(
      optionsFor(emu, { credentials: { kind: "token", token: new Secret(READ_TOKEN) } }),
    );
    const bad = createClient(optionsFor(emu, { credentials: { kind: "token", token: new Secret("nope") } }));
    try {
      expect(await ro.listClients(ACCOUNT)).toEqual([]);
      const write = await rejection(roWriter.createClient(ACCOUNT, body("ro"), { existingClientIds: [] }));
      expect(write).toMatchObject({
        code: "E_API_AUTH",
        status: 403,
        retryable: false,
        disposition: "terminal",
      });
      expect((write as unknown as CloudflareApiError).cfErrors[0]?.code).toBe(10000);
      const invalid = await rejection(bad.listClients(ACCOUNT));
      expect(invalid).toMatchObject({ code: "E_API_AUTH", status: 403 });
    } finally {
      await Promise.all([ro.close(), roWriter.close(), bad.close()]);
    }
  });

  it("fails a list whose result_info.total_count disagrees with it: E_API_LIST_COUNT_MISMATCH, transient, retried", async () => {
    const emu = await startTestEmulator({ listTotalCountOffset: 1 });
    const api = writer(emu);
    try {
      await api.createClient(ACCOUNT, body("one"), { existingClientIds: [] });
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toBeInstanceOf(CloudflareApiError);
      expect(error).toMatchObject({
        code: "E_API_LIST_COUNT_MISMATCH",
        retryable: true,
        disposition: "transient",
        attempts: 4,
        route: CLIENTS_ROUTE,
      });
      expect(error.message).toContain("the list holds 1 client but result_info.total_count says 2");
      expect((await routeStats(emu, `GET ${CLIENTS_ROUTE}`))["200"]).toBe(4);

      // A count that agrees again reads normally; an answer without result_info is taken as it is.
      await setFaults(emu, { listTotalCountOffset: 0 });
      expect((await api.listClients(ACCOUNT)).map((c) => c.client_name)).toEqual(["one"]);
    } finally {
      await api.close();
    }
  });

  it("countMismatch: only a numeric total_count that differs is a problem", () => {
    expect(countMismatch(3, undefined)).toBeNull();
    expect(countMismatch(3, { count: 3 })).toBeNull();
    expect(countMismatch(3, { total_count: 3 })).toBeNull();
    expect(countMismatch(0, { total_count: "3" })).toBeNull();
    expect(countMismatch(0, { total_count: 3 })).toContain(
      "holds 0 clients but result_info.total_count says 3",
    );
    expect(countMismatch(5, { total_count: 3 })).toContain("holds 5 clients");
  });

  it("rejects an empty id before sending anything", async () => {
    const emu = await startTestEmulator();
    const api = writer(emu);
    try {
      expect(await rejection(api.getClient(ACCOUNT, " "))).toMatchObject({ code: "E_API_ARGUMENT" });
      expect((await stats(emu)).total).toBe(0);
    } finally {
      await api.close();
    }
  });
});

describe("createReader", () => {
  it("exposes only the read methods, with no way back to the writer", async () => {
    const emu = await startTestEmulator();
    const ro = reader(emu);
    try {
      expect(Object.keys(ro).sort()).toEqual(["budget", "close", "getClient", "listClients", "listScopes"]);
      expect(Object.isFrozen(ro)).toBe(true);
      expect("createClient" in ro).toBe(false);
      expect("rotateSecret" in ro).toBe(false);
      expect(Object.getPrototypeOf(ro)).toBe(Object.prototype);
      await ro.listScopes();
      expect(ro.budget.snapshot()).toMatchObject({ quota: 1200, window: 300 });
      expect(Object.keys(ro.budget)).toEqual(["snapshot"]);
    } finally {
      await ro.close();
    }
  });
});

describe("secrets never leak", () => {
  it("prints [REDACTED] for a create result and keeps secrets and tokens out of the logs", async () => {
    const emu = await startTestEmulator();
    const { logger, lines } = capturingLogger();
    const api = writer(emu, { logger });
    try {
      const created = await api.createClient(ACCOUNT, body("redaction"), { existingClientIds: [] });
      const raw = created.secret!.reveal();
      expect(JSON.stringify(created)).toContain('"secret":"[REDACTED]"');
      expect(JSON.stringify(created)).not.toContain(raw);
      expect(inspect(created, { depth: 10 })).toContain("[REDACTED]");
      expect(inspect(created, { depth: 10 })).not.toContain(raw);
      const rotated = await api.rotateSecret(ACCOUNT, created.client.client_id);
      expect(`${rotated}`).toBe("[REDACTED]");

      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(
        entries.filter((e) => e["component"] === "cloudflare" && e["route"] === CLIENTS_ROUTE),
      ).toContainEqual(
        expect.objectContaining({ method: "POST", status: 200, attempt: 1, durationMs: expect.any(Number) }),
      );
      const all = lines.join("\n");
      for (const canary of [raw, rotated.reveal(), WRITE_TOKEN]) expect(all).not.toContain(canary);
    } finally {
      await api.close();
    }
  });
});

describe("abort and timeout", () => {
  it("rejects with E_API_ABORTED while the request is on the wire", async () => {
    const emu = await startTestEmulator({ latencyMs: 5_000 });
    const api = writer(emu);
    try {
      const controller = new AbortController();
      const pending = api.listClients(ACCOUNT, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      // Had the client waited for the (slow) answer, this would resolve with [] instead.
      expect(await rejection(pending)).toMatchObject({ code: "E_API_ABORTED", retryable: false });
    } finally {
      await api.close();
    }
  });

  it("rejects with E_API_ABORTED during a retry backoff, and sends nothing for an aborted signal", async () => {
    const emu = await startTestEmulator({ fault5xxRate: 1 });
    const api = writer(emu, {
      backoff: { baseMs: 60_000, capMs: 60_000 },
      random: () => 1,
      maxRetryTimeMs: 600_000,
    });
    try {
      const controller = new AbortController();
      const pending = api.listClients(ACCOUNT, { signal: controller.signal });
      setTimeout(() => controller.abort(), 200);
      expect(await rejection(pending)).toMatchObject({ code: "E_API_ABORTED" });
      const before = (await stats(emu)).total;
      expect(before).toBe(1);
      expect(await rejection(api.listClients(ACCOUNT, { signal: AbortSignal.abort() }))).toMatchObject({
        code: "E_API_ABORTED",
      });
      expect((await stats(emu)).total).toBe(before);
    } finally {
      await api.close();
    }
  });

  it("times out each attempt, retries, and reports E_API_TIMEOUT", async () => {
    const emu = await startTestEmulator({ latencyMs: 1_000 });
    const api = writer(emu, { timeoutMs: 100, maxAttempts: 2 });
    try {
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toMatchObject({
        code: "E_API_TIMEOUT",
        retryable: true,
        disposition: "transient",
        attempts: 2,
      });
      // Neither the message nor the undici cause carries the request's headers.
      expect(inspect(error, { depth: 10 })).not.toContain(WRITE_TOKEN);
      expect(JSON.stringify(error)).not.toContain(WRITE_TOKEN);
    } finally {
      await api.close();
    }
  });
});

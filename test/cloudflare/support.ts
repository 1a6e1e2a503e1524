import { Writable } from "node:stream";
import { createClient, createReader, type ClientOptions } from "../../src/cloudflare/index.js";
import type { CreateClientBody } from "../../src/api/oauth-clients.js";
import type { EmulatorHandle, StatsSnapshot } from "../../src/emulator/index.js";
import { createLogger, type Logger } from "../../src/log.js";
import { Secret } from "../../src/secret.js";
import { ACCOUNT_A, control, READ_TOKEN, WRITE_TOKEN } from "../helpers/emulator.js";
import { verifiedSecret } from "../helpers/token-exchange.js";

/** Shared set-up for the API client tests, on top of test/helpers/emulator.ts: real HTTP, no mocks. */

export const ACCOUNT = ACCOUNT_A;
export { READ_TOKEN, WRITE_TOKEN };

/** Client options for `emu`, with a fast backoff so fault tests stay quick. */
export function optionsFor(
  emu: Pick<EmulatorHandle, "url">,
  overrides: Partial<ClientOptions> = {},
): ClientOptions {
  return {
    baseUrl: emu.url,
    credentials: { kind: "token", token: new Secret(WRITE_TOKEN) },
    timeoutMs: 5_000,
    maxAttempts: 4,
    maxRetryTimeMs: 20_000,
    backoff: { baseMs: 10, capMs: 100 },
    ...overrides,
  };
}

export function writer(emu: Pick<EmulatorHandle, "url">, overrides: Partial<ClientOptions> = {}) {
  return createClient(optionsFor(emu, overrides));
}

export function reader(emu: EmulatorHandle, overrides: Partial<ClientOptions> = {}) {
  return createReader(
    optionsFor(emu, { credentials: { kind: "token", token: new Secret(READ_TOKEN) }, ...overrides }),
  );
}

export function stats(emu: EmulatorHandle): Promise<StatsSnapshot> {
  return control<StatsSnapshot>(emu, "GET", "stats");
}

/** Requests the emulator counted for one route template (`POST /accounts/:account_id/oauth_clients`) by outcome. */
export async function routeStats(emu: EmulatorHandle, template: string): Promise<Record<string, number>> {
  return (await stats(emu)).by_route_status[template] ?? {};
}

export async function setFaults(emu: EmulatorHandle, faults: Record<string, number>): Promise<void> {
  await control(emu, "POST", "faults", faults);
}

/** Whether `secret` is currently a valid secret of the client: a token exchange proves it. */
export async function secretIsValid(emu: EmulatorHandle, clientId: string, secret: Secret): Promise<boolean> {
  return (await verifiedSecret(emu, ACCOUNT, clientId, secret.reveal())).valid;
}

export function body(name: string, overrides: Partial<CreateClientBody> = {}): CreateClientBody {
  return {
    client_name: name,
    redirect_uris: ["https://app.example.com/callback"],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    scopes: ["account-settings.read", "offline_access"],
    token_endpoint_auth_method: "client_secret_basic",
    ...overrides,
  };
}

/** A debug-level logger whose JSON lines are kept in `lines`. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level: "debug", destination }), lines };
}

/** Resolves with the error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Record<string, unknown> & Error> {
  try {
    await promise;
  } catch (e) {
    return e as Record<string, unknown> & Error;
  }
  throw new Error("expected a rejection");
}

export const CLIENTS_ROUTE = "/accounts/:account_id/oauth_clients";
export const CLIENT_ROUTE = "/accounts/:account_id/oauth_clients/:client_id";
export const ROTATE_ROUTE = "/accounts/:account_id/oauth_clients/:client_id/rotate_secret";

import type { EmulatorHandle } from "../../src/emulator/index.js";
import { WRITE_TOKEN } from "../helpers/emulator.js";

/** Raw-HTTP helpers for the emulator's own tests: real fetch, the envelope as JSON. */

export interface Envelope<T = unknown> {
  success: boolean;
  errors: Array<{ code: number; message: string }>;
  messages: unknown[];
  result: T;
  result_info?: Record<string, number>;
}

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: Envelope<T>;
}

export type Client = Record<string, unknown> & {
  client_id: string;
  visibility: string;
  scopes: string[];
  updated_at: string;
  created_at: string;
  client_secret?: string;
  client_uri_verification?: { status: string; text: string };
};

export interface CallOptions {
  token?: string | null;
  headers?: Record<string, string>;
  /** A raw string body (sent as is) or a value to JSON-encode. */
  body?: unknown;
}

/** `method path` under /client/v4 with the write token unless told otherwise. */
export async function call<T = unknown>(
  emu: EmulatorHandle,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Reply<T>> {
  const token = options.token === undefined ? WRITE_TOKEN : options.token;
  const headers: Record<string, string> = { ...(token === null ? {} : { authorization: `Bearer ${token}` }) };
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(`${emu.url}${path}`, { method, headers: { ...headers, ...options.headers }, body });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Envelope<T> };
}

/** A valid create body; override any field. */
export function clientBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_name: "Demo app",
    redirect_uris: ["https://app.example.com/callback"],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    scopes: ["account-settings.read", "email"],
    token_endpoint_auth_method: "client_secret_post",
    ...overrides,
  };
}

/** Creates a client and returns the create result (secret included); fails the test on non-200. */
export async function createClient(
  emu: EmulatorHandle,
  account: string,
  overrides: Record<string, unknown> = {},
): Promise<Client> {
  const reply = await call<Client>(emu, "POST", `/accounts/${account}/oauth_clients`, {
    body: clientBody(overrides),
  });
  if (reply.status !== 200)
    throw new Error(`create failed: ${reply.status} ${JSON.stringify(reply.body.errors)}`);
  return reply.body.result;
}

/** A clock the test moves by hand: timestamps and rate windows follow it, nothing waits. */
export function manualClock(start = "2026-01-01T00:00:00.000Z") {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    advance(ms: number) {
      t += ms;
    },
  };
}

/** The first error code of a failure reply. */
export function errorCode(reply: Reply): number | undefined {
  return reply.body.errors[0]?.code;
}

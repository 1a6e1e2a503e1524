import { afterAll, beforeAll, onTestFinished } from "vitest";
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from "../../src/emulator/index.js";

/**
 * Test helper: a real emulator on a free port, stopped after the test (or the file). Tests talk to
 * it over real HTTP; nothing is mocked.
 */

export const ACCOUNT_A = "0123456789abcdef0123456789abcdef";
export const ACCOUNT_B = "fedcba9876543210fedcba9876543210";
export const WRITE_TOKEN = "emulator-write-token";
export const READ_TOKEN = "emulator-read-token";

/** Defaults for tests: port 0, seed 1, one write and one read-only token. */
export function testOptions(options: EmulatorOptions = {}): EmulatorOptions {
  return { port: 0, seed: 1, tokens: [WRITE_TOKEN], readOnlyTokens: [READ_TOKEN], ...options };
}

/** Starts an emulator inside a test and stops it when that test finishes. */
export async function startTestEmulator(options: EmulatorOptions = {}): Promise<EmulatorHandle> {
  const handle = await startEmulator(testOptions(options));
  onTestFinished(() => handle.stop());
  return handle;
}

/** One emulator for a whole file (or describe block): started in beforeAll, stopped in afterAll. */
export function useEmulator(options: EmulatorOptions = {}): () => EmulatorHandle {
  let handle: EmulatorHandle | undefined;
  beforeAll(async () => {
    handle = await startEmulator(testOptions(options));
  });
  afterAll(async () => {
    await handle?.stop();
  });
  return () => {
    if (!handle) throw new Error("useEmulator: the emulator is not started yet (use it inside a test)");
    return handle;
  };
}

/** Calls a control endpoint (`stats`, `reset`, `faults`, `verification`, `check-secret`, `clients`). */
export async function control<T = unknown>(
  emu: EmulatorHandle,
  method: "GET" | "POST",
  name: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${emu.origin}/__emulator/${name}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as { success: boolean; result: T; errors: unknown[] };
  if (!res.ok) throw new Error(`control ${method} ${name}: ${res.status} ${JSON.stringify(json.errors)}`);
  return json.result;
}

/** Marks a client's client_uri host verified (what the DNS check would do on the real API). */
export function verifyClientUri(emu: EmulatorHandle, accountId: string, clientId: string): Promise<unknown> {
  return control(emu, "POST", "verification", {
    account_id: accountId,
    client_id: clientId,
    status: "verified",
  });
}

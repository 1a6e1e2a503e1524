import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createLogger, type Logger } from "../../src/log.js";
import { Secret } from "../../src/secret.js";
import type { SecretRecord } from "../../src/sinks/types.js";

/** Shared bits of the sink tests: records, a log capture, the forms a leaked secret takes. */

export const ACCOUNT = "0123456789abcdef0123456789abcdef";
export const run = promisify(execFile);

/** Fixture scripts, by absolute path. */
export const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

export function record(
  secret: string,
  overrides: Partial<Omit<SecretRecord, "client_secret">> = {},
): SecretRecord {
  return {
    account_id: ACCOUNT,
    client_id: "c".repeat(32),
    client_name: "billing-web",
    client_secret: new Secret(secret),
    issued_at: "2026-11-26T10:00:00.000Z",
    ...overrides,
  };
}

/** A pino logger at debug level whose JSON lines land in `lines`. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    level: "debug",
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { logger, lines };
}

/** The forms a secret is searched for in output: raw, JSON-escaped, base64 (padded or not), base64url. */
export function leakForms(secret: string): string[] {
  const bytes = Buffer.from(secret, "utf8");
  return [
    secret,
    JSON.stringify(secret).slice(1, -1),
    bytes.toString("base64"),
    bytes.toString("base64").replace(/=+$/, ""),
    bytes.toString("base64url"),
  ];
}

/** The forms of `secrets` found in `text` (empty when clean). */
export function leaksIn(text: string, secrets: readonly string[]): string[] {
  return secrets.flatMap((secret) => leakForms(secret).filter((form) => text.includes(form)));
}

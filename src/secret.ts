import { createHash } from "node:crypto";
import { inspect } from "node:util";

const REDACTED = "[REDACTED]";

/**
 * A secret value that refuses to be printed.
 *
 * `toString()`, `toJSON()`, template literals and `util.inspect` all give `[REDACTED]`, so a secret
 * that reaches a log line, a plan, a thrown error or `JSON.stringify` by accident shows nothing. Only
 * code that means to use the value calls `reveal()`: a sink's write, and the emulator's own checks.
 * (docs/DESIGN.md, "Secrets"; renovate scrubs secrets the same way.)
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The raw value. Call only where the value is written to its destination. */
  reveal(): string {
    return this.#value;
  }

  /** A short, non-reversible fingerprint that may stand in for the value in plans and status. */
  fingerprint(): string {
    return fingerprintOf(this.#value);
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** `sha256:` and the first 12 hex characters of the SHA-256 of the value. */
export function fingerprintOf(value: string): string {
  return `sha256:${createHash("sha256").update(value).digest("hex").slice(0, 12)}`;
}

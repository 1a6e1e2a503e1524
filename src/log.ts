import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";

/**
 * Paths pino blanks out wherever they appear. This is the second layer of secret protection: the
 * first is the `Secret` wrapper, which never prints its value. Both are tested with canary values.
 */
export const REDACT_PATHS: readonly string[] = [
  "client_secret",
  "*.client_secret",
  "*.*.client_secret",
  "secret",
  "*.secret",
  "token",
  "*.token",
  "apiToken",
  "*.apiToken",
  "apiKey",
  "*.apiKey",
  "authorization",
  "Authorization",
  "*.authorization",
  "*.Authorization",
  "headers.authorization",
  "headers['x-auth-key']",
  "*.headers.authorization",
  "*.headers['x-auth-key']",
  "req.headers.authorization",
  "req.headers['x-hub-signature-256']",
];

export interface LogOptions {
  level?: string;
  /** Where the JSON lines go; stdout by default. Tests pass a buffer to assert on the output. */
  destination?: DestinationStream;
}

/** The root logger: JSON lines, redaction on, `component` on every child. */
export function createLogger(options: LogOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? process.env["LOG_LEVEL"] ?? "info",
    redact: { paths: [...REDACT_PATHS], censor: "[REDACTED]" },
    base: { name: "cf-oauth-gitops" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** A logger that discards everything, for library use where the caller passes none. */
export const silentLogger: Logger = pino({ level: "silent" });

export type { Logger };

import {
  clientOptionsFromEnv,
  createClient,
  createReader,
  plainHttpBaseUrlWarning,
  type ClientOptions,
} from "../cloudflare/index.js";
import type { OAuthClientsReader, OAuthClientsWriter, ApiHandle } from "../cloudflare/client.js";
import { createLogger, type Logger } from "../log.js";
import type { CliContext } from "./io.js";

/** The API handles and the logger of the one-shot verbs: all `export` needs besides the config. */

/**
 * Logs go to stderr for the one-shot verbs, so stdout carries only the plan (pipe-able into a PR
 * comment or a file). Quiet (`warn`) unless asked.
 */
export function cliLogger(ctx: CliContext, level: string | undefined): Logger {
  return createLogger({ level: level ?? ctx.env["LOG_LEVEL"] ?? "warn", destination: ctx.stderr as never });
}

/**
 * The API client's options from the environment. A plain-http base URL to another machine is said
 * on stderr whatever the log level: the client logs it at warn, and when the logger would not show
 * that line (a CI job run with `--log-level error`), it is said here in words instead, once.
 */
export function apiClientOptions(
  ctx: CliContext,
  overrides: Parameters<typeof clientOptionsFromEnv>[1],
): ClientOptions {
  const options = clientOptionsFromEnv(ctx.env, overrides);
  const warning = plainHttpBaseUrlWarning(options.baseUrl);
  if (warning && !options.logger?.isLevelEnabled("warn")) ctx.stderr.write(`warning: ${warning}\n`);
  return options;
}

/** The read-only API handle: all `plan` and `export` ever construct. */
export function buildReader(ctx: CliContext, logger: Logger): OAuthClientsReader & ApiHandle {
  return createReader(apiClientOptions(ctx, { logger }));
}

/** The read-write handle, for `apply` and `rotate` only. */
export function buildReaderWriter(
  ctx: CliContext,
  logger: Logger,
): OAuthClientsReader & OAuthClientsWriter & ApiHandle {
  return createClient(apiClientOptions(ctx, { logger }));
}

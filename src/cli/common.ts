import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  clientOptionsFromEnv,
  createClient,
  createReader,
  plainHttpBaseUrlWarning,
  type ClientOptions,
} from "../cloudflare/index.js";
import type { OAuthClientsReader, OAuthClientsWriter, ApiHandle } from "../cloudflare/client.js";
import { loadConfig, loadDesiredState, policyFromConfig } from "../config/index.js";
import type { ReconcilerConfig } from "../config/types.js";
import type { DesiredState, Policy } from "../core/model.js";
import { GitOpsError } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import { createSink } from "../sinks/index.js";
import type { SecretSink } from "../sinks/types.js";
import type { SinkResolver } from "../sinks/types.js";
import type { CliContext } from "./io.js";

/** Options every reconciling verb takes. */
export const COMMON_OPTIONS = {
  config: { type: "string", short: "c" },
  "state-dir": { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/** parseArgs with a usage error (exit 1) instead of a stack trace. */
export function parseFlags<O extends NonNullable<ParseArgsConfig["options"]>>(
  verb: string,
  args: string[],
  options: O,
) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new GitOpsError("E_USAGE", `${verb}: ${(error as Error).message}`);
  }
}

export interface LoadedInput {
  config: ReconcilerConfig;
  desired: DesiredState;
  policy: Policy;
}

/** Loads the config (`-c`, default `cf-oauth-gitops.yaml` in the working directory) and the desired state. */
export async function loadInput(
  ctx: CliContext,
  values: { config?: string | undefined; "state-dir"?: string | undefined },
): Promise<LoadedInput> {
  const configPath = resolve(ctx.cwd, values.config ?? "cf-oauth-gitops.yaml");
  const loaded = await loadConfig(configPath, { cwd: ctx.cwd });
  const config = values["state-dir"]
    ? { ...loaded, state_dir: resolve(ctx.cwd, values["state-dir"]) }
    : loaded;
  const desired = await loadDesiredState(config);
  return { config, desired, policy: policyFromConfig(config) };
}

/**
 * Logs go to stderr for the one-shot verbs, so stdout carries only the plan (pipe-able into a PR
 * comment or a file). Quiet (`warn`) unless asked.
 */
export function cliLogger(ctx: CliContext, level: string | undefined): Logger {
  return createLogger({ level: level ?? ctx.env["LOG_LEVEL"] ?? "warn", destination: ctx.stderr as never });
}

/**
 * The API client's options from the environment. A plain-http base URL to another machine is also
 * said on stderr in words, whatever the log level: the client logs it, but a CI job run with
 * `--log-level error` must still show it.
 */
export function apiClientOptions(
  ctx: CliContext,
  overrides: Parameters<typeof clientOptionsFromEnv>[1],
): ClientOptions {
  const options = clientOptionsFromEnv(ctx.env, overrides);
  const warning = plainHttpBaseUrlWarning(options.baseUrl);
  if (warning) ctx.stderr.write(`warning: ${warning}\n`);
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

/** Builds sinks lazily, once each, from the config's named sinks. */
export function sinkResolver(config: ReconcilerConfig, logger: Logger, env: NodeJS.ProcessEnv): SinkResolver {
  const built = new Map<string, SecretSink>();
  return (name: string) => {
    let sink = built.get(name);
    if (!sink) {
      const sinkConfig = config.sinks[name];
      if (!sinkConfig)
        throw new GitOpsError("E_UNKNOWN_SINK", `no sink named '${name}' in ${config.config_file}`);
      sink = createSink(name, sinkConfig, { logger, env });
      built.set(name, sink);
    }
    return sink;
  };
}

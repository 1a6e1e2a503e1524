import { resolve } from "node:path";
import { loadConfig, loadDesiredState, policyFromConfig } from "../config/index.js";
import type { ReconcilerConfig } from "../config/types.js";
import type { DesiredState, Policy } from "../core/model.js";
import { GitOpsError } from "../errors.js";
import type { Logger } from "../log.js";
import { createSink } from "../sinks/index.js";
import type { SecretSink } from "../sinks/types.js";
import type { SinkResolver } from "../sinks/types.js";
import type { CliContext } from "./io.js";

/**
 * What the verbs that read the desired state share: the config and desired state as the options name
 * them, and the sinks. Only `plan`, `apply`, `rotate` and `run` load this module (and with it the
 * sinks); `export` needs the API alone (src/cli/api.ts).
 */

export interface LoadedInput {
  config: ReconcilerConfig;
  desired: DesiredState;
  policy: Policy;
}

/** Loads the config (`-c`, default `cf-oauth-gitops.yaml` in the working directory) and the desired state. */
export async function loadInput(ctx: CliContext, values: ConfigValues): Promise<LoadedInput> {
  const config = await loadCliConfig(ctx, values);
  const desired = await loadDesiredState(config);
  return { config, desired, policy: policyFromConfig(config) };
}

/** The `-c` and `--state-dir` options (src/cli/verbs.ts). */
export interface ConfigValues {
  readonly config: string;
  readonly "state-dir": string | undefined;
}

/** The config named by `-c`, with `--state-dir` in place of its `state_dir` when given. */
export async function loadCliConfig(ctx: CliContext, values: ConfigValues): Promise<ReconcilerConfig> {
  const loaded = await loadConfig(resolve(ctx.cwd, values.config), { cwd: ctx.cwd });
  return values["state-dir"] ? { ...loaded, state_dir: resolve(ctx.cwd, values["state-dir"]) } : loaded;
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

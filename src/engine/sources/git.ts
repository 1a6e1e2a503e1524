import { join } from "node:path";
import { policyFromConfig } from "../../config/index.js";
import type { ReconcilerConfig } from "../../config/types.js";
import { ConfigError } from "../../errors.js";
import type { GitSource } from "../git-source.js";
import { publishOwnership } from "../ownership-ref.js";
import { checkRepositoryConfigPath, loadRepositoryConfig } from "../repo-config.js";
import type { DesiredSource } from "./types.js";

/**
 * The desired state is `source.git.path` in the fetched branch, or, with `source.git.config`, what
 * that file of the commit says (engine/repo-config.ts). File names in messages are relative to the
 * repository root (`clients/web.yaml:12:5`), which is what a reviewer sees in the commit.
 *
 * `now` dates the ownership commits; `scratchDir` holds the object files they are built from.
 */
export function gitDesiredSource(
  config: ReconcilerConfig,
  git: GitSource,
  publishing: { now: () => Date; scratchDir: string } = {
    now: () => new Date(),
    scratchDir: join(config.state_dir, "git", "ownership"),
  },
): DesiredSource {
  const configPath = config.source?.git.config;
  // Refused at start, not at the first run: any root gives the same answer for a relative path.
  if (configPath !== undefined) checkRepositoryConfigPath(config.state_dir, configPath);
  let known: { commit: string; body: string } | null = null;
  return {
    kind: "git",
    prepare: async (signal) => {
      const checkout = await git.sync(signal);
      const revision = checkout.revision;
      if (configPath === undefined) {
        return {
          revision,
          config: { ...config, desired: checkout.desiredPath, display_root: checkout.root },
        };
      }
      try {
        const effective = await loadRepositoryConfig(config, checkout.root, configPath);
        return { revision, config: effective, policy: policyFromConfig(effective) };
      } catch (error) {
        if (error instanceof ConfigError) return { revision, config, configError: error };
        throw error;
      }
    },
    describe: () => ({
      type: "git",
      url: git.displayUrl,
      branch: git.branch,
      ...(configPath !== undefined ? { config: configPath } : {}),
    }),
    publishOwnership: async (inventory, ref, revision, signal) => {
      const result = await publishOwnership((args, s) => git.runInCheckout(args, s), {
        ref,
        inventory,
        revision,
        now: publishing.now(),
        scratchDir: publishing.scratchDir,
        known,
        signal,
      });
      known = { commit: result.commit, body: result.body };
      return result;
    },
  };
}

import { isAbsolute, relative, resolve, sep } from "node:path";
import { DEFAULT_CONFIG_FILE, loadConfig } from "../config/index.js";
import { isWithin } from "../config/yaml-source.js";
import type { ReconcilerConfig } from "../config/types.js";
import { ConfigError, GitOpsError } from "../errors.js";

/**
 * `source.git.config`: the daemon plans with the config file of the commit it applies.
 *
 * A pull request's plan (`plan` in CI) reads the repository's `cf-oauth-gitops.yaml`; a daemon that
 * planned with another copy (a ConfigMap) could prune or judge safety differently from what was
 * reviewed. With `source.git.config`, each run loads that file from the checkout and takes from it
 * every setting that decides the plan: `desired` (which must stay inside the repository), `account_id`,
 * `prune`, `ignore`, `safety` and `ownership`. What only the daemon's machine can answer stays in
 * the daemon's own file: `state_dir`, `sinks` (a sink path relative to a checkout would land in a
 * working copy that every run cleans), `rotation`, `interval`, `source`, `daemon`, `server`, `webhook`.
 */

/** Refuses a `source.git.config` that leaves the repository; `root` is the checkout directory. */
export function checkRepositoryConfigPath(root: string, path: string): string {
  const target = resolve(root, path);
  const rel = relative(root, target);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new GitOpsError(
      "E_GIT_PATH",
      `source.git.config must name a file inside the repository: ${path} (e.g. ${DEFAULT_CONFIG_FILE})`,
    );
  }
  return target;
}

/**
 * The daemon's config for one run: its own, with the plan-deciding settings of `<root>/<path>`.
 * Throws `ConfigError` (located, file names relative to the repository root) when the commit's file
 * is missing or invalid, or names desired state outside the repository: the run is then `invalid`.
 */
export async function loadRepositoryConfig(
  daemon: ReconcilerConfig,
  root: string,
  path: string,
): Promise<ReconcilerConfig> {
  const file = checkRepositoryConfigPath(root, path);
  let repo: ReconcilerConfig;
  try {
    repo = await loadConfig(file, { cwd: root });
  } catch (error) {
    if (error instanceof GitOpsError && error.code === "E_CONFIG_NOT_FOUND") {
      throw new ConfigError([
        {
          file: path,
          line: 1,
          col: 1,
          path: "",
          code: "E_CONFIG_NOT_FOUND",
          message: `this commit has no ${path} (source.git.config names it)`,
        },
      ]);
    }
    throw error;
  }
  if (!isWithin(repo.desired, root)) {
    throw new ConfigError([
      {
        ...repo.desired_location,
        code: "E_GIT_PATH",
        message: "desired must stay inside the repository (source.git.config)",
      },
    ]);
  }
  const { account_id: _account, ownership: _ownership, ...own } = daemon;
  return {
    ...own,
    display_root: root,
    desired: repo.desired,
    desired_location: repo.desired_location,
    ...(repo.account_id !== undefined ? { account_id: repo.account_id } : {}),
    prune: repo.prune,
    ignore: repo.ignore,
    safety: repo.safety,
    ...(repo.ownership ? { ownership: repo.ownership } : {}),
  };
}

import { loadConfig, loadDesiredState } from "../config/index.js";
import { ConfigError, type ConfigIssue, formatIssues } from "../errors.js";
import type { VerbRun } from "./frame.js";
import { ExitCode } from "./io.js";
import type { VALIDATE } from "./verbs.js";

function asWarnings(issues: readonly ConfigIssue[]): string {
  return formatIssues(issues.map((issue) => ({ ...issue, message: `warning: ${issue.message}` })));
}

/**
 * `validate`: the CI gate for a pull request that edits desired state. Imports only the config
 * module, so it runs without an API token and cannot reach the network.
 */
export const runValidate: VerbRun<typeof VALIDATE> = async (ctx, values) => {
  try {
    const config = await loadConfig(values.config, { cwd: ctx.cwd });
    const state = await loadDesiredState(config);
    if (state.warnings.length > 0) ctx.stderr.write(`${asWarnings(state.warnings)}\n`);
    let clients = 0;
    for (const list of state.accounts.values()) clients += list.length;
    ctx.stdout.write(
      `ok: ${clients} clients in ${state.accounts.size} accounts from ${state.files.length} files\n`,
    );
    return ExitCode.ok;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const count = error.issues.length;
    ctx.stderr.write(`${formatIssues(error.issues)}\n${count} problem${count === 1 ? "" : "s"} found\n`);
    return ExitCode.error;
  }
};

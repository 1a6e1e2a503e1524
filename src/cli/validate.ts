import { parseArgs } from "node:util";
import { DEFAULT_CONFIG_FILE, loadConfig, loadDesiredState } from "../config/index.js";
import { ConfigError, type ConfigIssue, GitOpsError, formatIssues } from "../errors.js";
import { type Command, ExitCode } from "./io.js";

const USAGE = `usage: cf-oauth-gitops validate [-c FILE]

Checks the config file and every desired-state file it points to, offline: no credentials, no
network. Prints every problem as file:line:col: path: message [CODE] on stderr and exits 1.

options:
  -c, --config FILE   config file (default: ${DEFAULT_CONFIG_FILE} in the working directory)
  -h, --help          show this help`;

function parseFlags(args: string[]) {
  try {
    return parseArgs({
      args,
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    throw new GitOpsError("E_USAGE", `validate: ${(error as Error).message}`);
  }
}

function asWarnings(issues: readonly ConfigIssue[]): string {
  return formatIssues(issues.map((issue) => ({ ...issue, message: `warning: ${issue.message}` })));
}

/**
 * `validate`: the CI gate for a pull request that edits desired state. Imports only the config
 * module, so it runs without an API token and cannot reach the network.
 */
export const validateCommand: Command = async (ctx) => {
  const flags = parseFlags(ctx.args);
  if (flags.help) {
    ctx.stdout.write(`${USAGE}\n`);
    return ExitCode.ok;
  }
  try {
    const config = await loadConfig(flags.config ?? DEFAULT_CONFIG_FILE, { cwd: ctx.cwd });
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

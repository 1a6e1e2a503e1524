import { dirname, resolve } from "node:path";
import type { Policy } from "../core/model.js";
import { ConfigError, type ConfigIssue, GitOpsError } from "../errors.js";
import { formatDuration, parseDuration, tryParseDuration } from "./duration.js";
import {
  type Locator,
  type YamlContext,
  fromZodIssues,
  isRecord,
  issueAt,
  sortIssues,
  yamlLocator,
} from "./issues.js";
import { fastLocator, parseFastYaml } from "./fast-yaml.js";
import { displayPath } from "./paths.js";
import { sinkRegistry } from "../sinks/registry.js";
import type { SinkRegistry } from "../sinks/descriptor.js";
import { type ConfigOutput, configSchemaFor } from "./schema.js";
import type { ReconcilerConfig, SinkConfig } from "./types.js";
import { parseYamlFile, readSourceFile, toPlainData } from "./yaml-source.js";

/**
 * Loading the reconciler's config file (`cf-oauth-gitops.yaml`): strict (an unknown key is an error
 * with a "did you mean"), every problem located, and the result fully resolved (absolute paths,
 * seconds, defaults) so nothing downstream re-interprets the YAML.
 */

/** The config file looked for in the working directory when `-c` is not given. */
export const DEFAULT_CONFIG_FILE = "cf-oauth-gitops.yaml";

export interface LoadConfigOptions {
  /** Base for a relative `path` and for how files are named in messages; `process.cwd()` by default. */
  cwd?: string;
  /**
   * The sinks `sinks:` may name: src/sinks/registry.ts by default. A test passes a registry with a
   * sink of its own (src/sinks/descriptor.ts `createSinkRegistry`), and the same to
   * `loadDesiredState`.
   */
  sinks?: SinkRegistry;
}

/**
 * Loads and validates the config file. Throws `ConfigError` (every problem, located) or a
 * `GitOpsError` with code `E_CONFIG_NOT_FOUND`. Does not touch the desired-state path: that is
 * `loadDesiredState`'s job (with a git source it may not exist yet).
 */
export async function loadConfig(path: string, options: LoadConfigOptions = {}): Promise<ReconcilerConfig> {
  const cwd = options.cwd ?? process.cwd();
  const absolute = resolve(cwd, path);
  const file = displayPath(cwd, absolute);
  const read = await readSourceFile(absolute, file);
  if (read.issue?.code === "E_NOT_FOUND") {
    throw new GitOpsError("E_CONFIG_NOT_FOUND", `config file not found: ${file} (pass -c FILE)`, {
      context: { file },
    });
  }
  if (read.issue) throw new ConfigError([read.issue]);
  const registry = options.sinks ?? sinkRegistry;
  const build = { absolute, cwd, registry };
  // A file in the plain subset is read by the fast reader (fast-yaml.ts), which spares loading the
  // `yaml` package; any other file, and any file with a problem, is read again with `yaml`, whose
  // locations are the reference (as load-desired.ts does for the desired state).
  const fast = parseFastYaml(read.text);
  if (fast) {
    const where = fastLocator(file, fast);
    const checked = checkConfigData(fast.data, where, registry);
    if (checked.issues.length === 0) return buildConfig(checked.output, { ...build, where });
  }
  const ctx = parseSingleDocument(read.text, file);
  const where = yamlLocator(ctx);
  const plain = toPlainData(ctx);
  if (plain.issue) throw new ConfigError([plain.issue]);
  if (!isRecord(plain.data)) {
    throw new ConfigError([
      issueAt(where, [], "E_TYPE", "the config file is a mapping of settings, e.g. `desired: ./desired`"),
    ]);
  }
  const checked = checkConfigData(plain.data, where, registry);
  if (checked.issues.length > 0) throw new ConfigError(sortIssues(checked.issues, [file]));
  return buildConfig(checked.output, { ...build, where });
}

/** The schema's and the cross-field rules' verdict on the file's data; `output` is valid without issues. */
function checkConfigData(
  data: Record<string, unknown>,
  where: Locator,
  registry: SinkRegistry,
): { output: ConfigOutput; issues: ConfigIssue[] } {
  const schema = configSchemaFor(registry);
  const result = schema.safeParse(data);
  const issues = result.success
    ? []
    : fromZodIssues(result.error.issues, { locator: where, schema, data, basePath: [] });
  issues.push(...checkConfig(data, where, registry));
  return { output: result.data as ConfigOutput, issues };
}

function parseSingleDocument(text: string, file: string): YamlContext {
  const parsed = parseYamlFile(text, file);
  if (parsed.errors.length > 0) throw new ConfigError(parsed.errors);
  const [first, second] = parsed.documents;
  if (first === undefined) {
    throw new ConfigError([
      {
        file,
        line: 1,
        col: 1,
        path: "",
        code: "E_EMPTY_FILE",
        message: "config file is empty; it needs at least `desired:`",
      },
    ]);
  }
  if (second !== undefined) {
    throw new ConfigError([
      issueAt(
        yamlLocator(second),
        [],
        "E_MULTIPLE_DOCUMENTS",
        "the config file holds one YAML document; remove the `---` and what follows",
      ),
    ]);
  }
  return first;
}

/** Rules across fields; they read the raw data so they report even when the schema found other problems. */
function checkConfig(data: Record<string, unknown>, where: Locator, registry: SinkRegistry): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const rotation = isRecord(data.rotation) ? data.rotation : {};
  const duration = (value: unknown, fallback: string) =>
    value === undefined
      ? tryParseDuration(fallback)
      : typeof value === "string"
        ? tryParseDuration(value)
        : undefined;
  const every = duration(rotation.every, "90d");
  const grace = duration(rotation.grace, "24h");
  if (every !== undefined && grace !== undefined && grace >= every) {
    issues.push(
      issueAt(
        where,
        rotation.grace === undefined ? ["rotation", "every"] : ["rotation", "grace"],
        "E_BAD_ROTATION",
        `rotation grace (${formatDuration(grace)}) must be shorter than rotation every (${formatDuration(every)})`,
      ),
    );
  }
  const daemon = isRecord(data.daemon) ? data.daemon : {};
  const deleteDelay = duration(daemon.delete_delay, "1m");
  const quietPeriod = duration(daemon.quiet_period, "1s");
  // The delay is what protects against a half-written file that held still for a quiet period.
  if (
    deleteDelay !== undefined &&
    quietPeriod !== undefined &&
    deleteDelay > 0 &&
    deleteDelay <= quietPeriod
  ) {
    issues.push(
      issueAt(
        where,
        daemon.delete_delay === undefined ? ["daemon", "quiet_period"] : ["daemon", "delete_delay"],
        "E_BAD_DAEMON",
        `daemon delete_delay (${formatDuration(deleteDelay)}) must be longer than daemon quiet_period (${formatDuration(quietPeriod)}), or 0 to delete at once`,
      ),
    );
  }
  // Each sink's rules across its own keys (the file sink's age identity, ...), from its descriptor.
  const sinks = isRecord(data.sinks) ? data.sinks : {};
  for (const [name, sink] of Object.entries(sinks)) {
    if (!isRecord(sink)) continue;
    for (const problem of registry.check(sink)) {
      issues.push(
        issueAt(where, ["sinks", name, ...problem.path], problem.code, problem.message, problem.anchor),
      );
    }
  }
  // With a config file in the repository, the desired state is that file's `desired:`; a `path`
  // beside it would be a second answer to the same question.
  const git = isRecord(data.source) && isRecord(data.source.git) ? data.source.git : {};
  if (git.config !== undefined && git.path !== undefined) {
    issues.push(
      issueAt(
        where,
        ["source", "git", "path"],
        "E_GIT_PATH_AND_CONFIG",
        "`source.git.path` and `source.git.config` exclude each other: with `config`, the desired state is that file's `desired:`",
        "key",
      ),
    );
  }
  issues.push(...checkGitCredentials(data, where));
  const webhook = data.webhook;
  if (isRecord(webhook) && webhook.secret_env === undefined && webhook.secret_file === undefined) {
    issues.push(
      issueAt(
        where,
        ["webhook"],
        "E_REQUIRED",
        "a webhook needs `secret_env` or `secret_file`: unsigned webhooks are refused",
      ),
    );
  }
  return issues;
}

/** How a git URL is reached: the credentials that fit it differ. */
export function gitTransport(url: string): "http" | "ssh" | "other" {
  if (/^https?:\/\//i.test(url)) return "http";
  if (/^ssh:\/\//i.test(url)) return "ssh";
  // scp-like `[user@]host:path`: a colon before any slash, and no `scheme://` (git's own rule).
  if (!url.includes("://") && /^(?:[^/:@\s]+@)?[^/:\s]+:/.test(url)) return "ssh";
  return "other";
}

/**
 * `source.git` credentials fit the URL and come from one place: a token (environment or file) for
 * https, a key with the known hosts for ssh. A key without known hosts is refused: ssh would have to
 * trust whatever host answers first, and a reconciler that can be pointed at a forged repository
 * writes OAuth clients from it.
 */
function checkGitCredentials(data: Record<string, unknown>, where: Locator): ConfigIssue[] {
  const source = isRecord(data.source) ? data.source : {};
  const git = isRecord(source.git) ? source.git : undefined;
  if (!git || typeof git.url !== "string") return [];
  const at = (key: string) => ["source", "git", key];
  const issues: ConfigIssue[] = [];
  const transport = gitTransport(git.url);
  const hasToken = git.token_env !== undefined || git.token_file !== undefined;
  const hasSsh = git.ssh_key_file !== undefined || git.known_hosts_file !== undefined;
  if (git.token_env !== undefined && git.token_file !== undefined) {
    issues.push(
      issueAt(
        where,
        at("token_file"),
        "E_GIT_CREDENTIALS",
        "give `token_env` or `token_file`, not both",
        "key",
      ),
    );
  }
  if (hasToken && transport !== "http") {
    const key = git.token_env !== undefined ? "token_env" : "token_file";
    issues.push(
      issueAt(
        where,
        at(key),
        "E_GIT_CREDENTIALS",
        "a token is sent over http(s) only; for an ssh URL use `ssh_key_file` and `known_hosts_file`",
        "key",
      ),
    );
  }
  if (git.username !== undefined && !hasToken) {
    issues.push(
      issueAt(
        where,
        at("username"),
        "E_GIT_CREDENTIALS",
        "`username` goes with `token_env` or `token_file`",
        "key",
      ),
    );
  }
  if (hasSsh && transport !== "ssh") {
    const key = git.ssh_key_file !== undefined ? "ssh_key_file" : "known_hosts_file";
    issues.push(
      issueAt(
        where,
        at(key),
        "E_GIT_CREDENTIALS",
        "an ssh key is used with an ssh URL only (ssh://host/repo or git@host:repo); for https use `token_env` or `token_file`",
        "key",
      ),
    );
  }
  if (git.ssh_key_file !== undefined && git.known_hosts_file === undefined) {
    issues.push(
      issueAt(
        where,
        at("ssh_key_file"),
        "E_GIT_KNOWN_HOSTS",
        "`ssh_key_file` needs `known_hosts_file` (the host keys to trust, e.g. from `ssh-keyscan HOST`, checked): host keys are never accepted on first use",
        "key",
      ),
    );
  }
  if (hasToken && transport === "http" && /^https?:\/\/[^/]*@/i.test(git.url)) {
    issues.push(
      issueAt(
        where,
        at("url"),
        "E_GIT_CREDENTIALS",
        "the URL carries credentials and a token is configured too; remove them from the URL",
      ),
    );
  }
  return issues;
}

interface BuildContext {
  absolute: string;
  cwd: string;
  where: Locator;
  registry: SinkRegistry;
}

/** Copies `value` without its undefined keys, so the resolved config prints cleanly. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function buildConfig(out: ConfigOutput, { absolute, cwd, where, registry }: BuildContext): ReconcilerConfig {
  const dir = dirname(absolute);
  const at = (path: string) => resolve(dir, path);
  const atOptional = (path: string | undefined) => (path === undefined ? undefined : at(path));
  const sinks: Record<string, SinkConfig> = {};
  // A registry other than the program's may hold types outside `SinkConfig`: they are passed through
  // as their descriptors resolve them, to that registry's `create`.
  for (const [name, sink] of Object.entries(out.sinks))
    sinks[name] = registry.resolve(sink, at) as SinkConfig;
  const { line, col } = where.locate(["desired"]);
  return compact<ReconcilerConfig>({
    config_file: absolute,
    display_root: cwd,
    desired: at(out.desired),
    desired_location: { file: where.file, line, col, path: "desired" },
    account_id: out.account_id,
    state_dir: at(out.state_dir),
    prune: out.prune,
    ignore: out.ignore,
    safety: out.safety,
    sinks,
    rotation: {
      every: parseDuration(out.rotation.every),
      grace: parseDuration(out.rotation.grace),
      schedule: out.rotation.schedule,
      timezone: out.rotation.timezone,
      max_concurrent: out.rotation.max_concurrent,
    },
    interval: parseDuration(out.interval),
    source: out.source && {
      git: compact({
        url: out.source.git.url,
        branch: out.source.git.branch,
        path: out.source.git.path,
        interval: parseDuration(out.source.git.interval),
        config: out.source.git.config,
        token_env: out.source.git.token_env,
        token_file: atOptional(out.source.git.token_file),
        username: out.source.git.username,
        ssh_key_file: atOptional(out.source.git.ssh_key_file),
        known_hosts_file: atOptional(out.source.git.known_hosts_file),
      }),
    },
    ownership: out.ownership && { git: compact({ ref: out.ownership.git.ref, url: out.ownership.git.url }) },
    daemon: {
      delete_delay: parseDuration(out.daemon.delete_delay),
      quiet_period: parseDuration(out.daemon.quiet_period),
    },
    server: { address: out.server.address },
    webhook:
      out.webhook &&
      compact({ secret_env: out.webhook.secret_env, secret_file: atOptional(out.webhook.secret_file) }),
  });
}

/** The parts of the config the pure planning core needs (src/core/model.ts `Policy`). */
export function policyFromConfig(config: ReconcilerConfig): Policy {
  return { prune: config.prune, ignore: [...config.ignore], safety: { ...config.safety } };
}

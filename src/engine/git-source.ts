import { execFile } from "node:child_process";
import { accessSync, chmodSync, constants, copyFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { access, mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep, isAbsolute } from "node:path";
import { gitTransport } from "../config/load-config.js";
import { GitOpsError } from "../errors.js";
import type { Logger } from "../log.js";
import { Secret } from "../secret.js";

/**
 * The config's `source.git`: the desired state lives in a branch of a git repository, cloned into
 * the state directory and read one commit at a time.
 *
 * Everything runs through the system `git` with `execFile` (argv, never a shell), with prompts off and
 * a timeout. Each run fetches the branch, pins the fetched sha, and checks that exact commit out
 * (detached, forced, untracked files cleaned), so the files a run reads always belong to one commit
 * and the status can name it. Symlinks are checked out as plain files (`core.symlinks=false`): a
 * commit cannot point the loader at a file outside the checkout.
 *
 * Credentials (`token_env`/`token_file` for https, `ssh_key_file` + `known_hosts_file` for ssh) reach
 * git through its environment only, never its argv (which `ps` shows every local user) nor
 * `.git/config` in the state directory; git gets no other variable of the daemon's environment
 * (the Cloudflare token, the webhook secret) but what it needs to find programs, proxies and CAs.
 *
 * (Longer than most files here: fetching, credentials (token, token file, ssh key) and the checkout
 * guards are one git session and share its environment and error wording.)
 */

export interface GitSourceOptions {
  url: string;
  branch: string;
  /** Directory inside the repository holding the desired state (`.` for the root). */
  path: string;
  /** Where the working copy lives (created on first use), e.g. `<state_dir>/git/checkout`. */
  checkoutDir: string;
  logger: Logger;
  /** Per git command. Default 120 s. */
  timeoutMs?: number;
  /** The daemon's environment: `token_env` is read from it, and git gets {@link GIT_ENV} of it. */
  env?: NodeJS.ProcessEnv;
  /** https: the token's variable or file (read before every command); see config/schema.ts. */
  token_env?: string;
  token_file?: string;
  /** Sent with the token; default {@link DEFAULT_GIT_USERNAME}. */
  username?: string;
  /** ssh: the private key and the only host keys trusted. */
  ssh_key_file?: string;
  known_hosts_file?: string;
}

/** GitHub's documented user name for a token over https; GitLab and others accept any. */
export const DEFAULT_GIT_USERNAME = "x-access-token";

/**
 * The variables git gets from the daemon's environment, if set: programs and home, locale, temp
 * directory, proxies, CA bundles, an ssh agent. Nothing else, so no secret of the daemon's own
 * (`CLOUDFLARE_API_TOKEN`, the webhook secret, a Vault token) reaches git, ssh or a helper they run,
 * and no `GIT_TRACE_CURL` or `GIT_CONFIG_*` from outside can print or change what is sent.
 */
export const GIT_ENV: readonly string[] = [
  "PATH",
  "HOME",
  "LANG",
  "TMPDIR",
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
  "ALL_PROXY",
  "all_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "GIT_SSL_CAINFO",
  "GIT_SSL_CAPATH",
  "SSH_AUTH_SOCK",
];

/** How git authenticates, resolved at start. */
type GitAuth =
  | { kind: "none" }
  | { kind: "url" }
  | { kind: "token"; username: string; token: Secret | null; file: string | null }
  | { kind: "ssh"; command: string };

/** One commit, checked out. */
export interface GitCheckout {
  /** Full sha of the commit. */
  revision: string;
  /** The working copy's root. */
  root: string;
  /** Absolute path of the desired state inside the working copy. */
  desiredPath: string;
}

const SHA_RE = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export class GitSource {
  readonly #options: GitSourceOptions;
  readonly #log: Logger;
  readonly #display: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #auth: GitAuth;

  /**
   * Checks the branch, path and credentials at once (a `run` that cannot authenticate refuses to
   * start rather than failing every run): the token's variable is set, its file and the ssh files
   * are readable, the known hosts are not empty.
   */
  constructor(options: GitSourceOptions) {
    checkBranch(options.branch);
    if (options.url.startsWith("-")) {
      throw new GitOpsError(
        "E_GIT_URL",
        `source.git.url must not start with '-': ${displayGitUrl(options.url)}`,
      );
    }
    this.#options = options;
    this.#display = displayGitUrl(options.url);
    this.#log = options.logger.child({ component: "git" });
    desiredPathIn(options.checkoutDir, options.path);
    const source = options.env ?? process.env;
    this.#env = pickEnv(source, GIT_ENV);
    this.#auth = resolveAuth(options, source, this.#display);
  }

  /** The repository URL with any credentials removed: safe for logs and status. */
  get displayUrl(): string {
    return this.#display;
  }

  get branch(): string {
    return this.#options.branch;
  }

  /**
   * The sha the remote branch points at now, without touching the working copy (`git ls-remote`):
   * what the poller compares with the revision last seen.
   */
  async remoteRevision(signal?: AbortSignal): Promise<string> {
    const ref = `refs/heads/${this.#options.branch}`;
    const out = await this.#git(["ls-remote", "--exit-code", "--", this.#display, ref], undefined, signal);
    const sha = out.split(/\s+/)[0] ?? "";
    if (!SHA_RE.test(sha)) {
      throw new GitOpsError("E_GIT", `git ls-remote ${this.#display} ${ref}: unexpected answer`, {
        disposition: "transient",
      });
    }
    return sha;
  }

  /** Fetches the branch and checks out the commit it points at. */
  async sync(signal?: AbortSignal): Promise<GitCheckout> {
    const root = this.#options.checkoutDir;
    await this.#ensureRepository(root, signal);
    const branch = this.#options.branch;
    const tracking = `refs/remotes/origin/${branch}`;
    await this.#git(
      ["fetch", "--quiet", "--no-tags", "--prune", "origin", `+refs/heads/${branch}:${tracking}`],
      root,
      signal,
    );
    const revision = (
      await this.#git(["rev-parse", "--verify", "--quiet", `${tracking}^{commit}`], root, signal)
    ).trim();
    if (!SHA_RE.test(revision)) {
      throw new GitOpsError("E_GIT", `${this.#display}: branch ${branch} did not resolve to a commit`);
    }
    await this.#git(["checkout", "--quiet", "--force", "--detach", revision], root, signal);
    await this.#git(["clean", "-ffdxq"], root, signal);
    this.#log.debug({ revision, branch }, "checked out");
    return { revision, root, desiredPath: desiredPathIn(root, this.#options.path) };
  }

  /**
   * Runs one git command in the working copy, with the same credentials, prompts-off environment and
   * timeout as the fetches: how the daemon publishes its ownership record to a ref of this repository
   * (engine/ownership-ref.ts). `origin` is the configured repository. Call after {@link sync}.
   */
  runInCheckout(args: string[], signal?: AbortSignal): Promise<string> {
    return this.#git(args, this.#options.checkoutDir, signal);
  }

  /**
   * A working copy with `origin` set to the configured URL WITHOUT its credentials (they are passed
   * per command through the environment, see #git), re-initialised if it is broken. A lock file left by
   * a git process killed mid-checkout (a pod or OOM kill takes the whole process group) is removed:
   * only this daemon, which holds the state directory's lock, runs git in this working copy.
   */
  async #ensureRepository(root: string, signal?: AbortSignal): Promise<void> {
    if (await exists(join(root, ".git"))) {
      await rm(join(root, ".git", "index.lock"), { force: true });
      await this.#git(["remote", "set-url", "origin", this.#display], root, signal);
      return;
    }
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true, mode: 0o700 });
    await this.#git(["init", "--quiet"], root, signal);
    await this.#git(["config", "core.symlinks", "false"], root, signal);
    await this.#git(["config", "advice.detachedHead", "false"], root, signal);
    await this.#git(["remote", "add", "origin", this.#display], root, signal);
    this.#log.info({ url: this.#display, dir: root }, "initialised the git working copy");
  }

  /** What the configured credentials add to git's environment for one command. */
  async #authEnv(): Promise<{ env: Record<string, string>; secrets: string[] }> {
    const auth = this.#auth;
    switch (auth.kind) {
      case "none":
        return { env: {}, secrets: [] };
      case "url":
        return { env: credentialEnv(this.#options.url, this.#display), secrets: [] };
      case "ssh":
        return { env: { GIT_SSH_COMMAND: auth.command }, secrets: [] };
      case "token": {
        const token = auth.token ?? (await readTokenFile(auth.file as string));
        const header = basicAuthHeader(auth.username, token.reveal());
        return {
          env: extraHeaderEnv(this.#display, header),
          secrets: [token.reveal(), header.slice("Authorization: Basic ".length)],
        };
      }
    }
  }

  async #git(args: string[], cwd: string | undefined, signal?: AbortSignal): Promise<string> {
    const auth = await this.#authEnv();
    const env = {
      ...this.#env,
      ...auth.env,
      GIT_TERMINAL_PROMPT: "0",
      GIT_ASKPASS: "",
      SSH_ASKPASS: "",
      LC_ALL: "C",
    };
    return new Promise((resolvePromise, reject) => {
      execFile(
        "git",
        args,
        {
          ...(cwd ? { cwd } : {}),
          env,
          timeout: this.#options.timeoutMs ?? 120_000,
          maxBuffer: 4 * 1024 * 1024,
          ...(signal ? { signal } : {}),
        },
        (error, stdout, stderr) => {
          if (!error) return resolvePromise(stdout);
          const detail = redactSecrets(
            redactUrl(String(stderr || error.message).trim(), this.#options.url, this.#display),
            auth.secrets,
          );
          const aborted = signal?.aborted === true;
          reject(
            new GitOpsError(
              aborted ? "E_ABORTED" : "E_GIT",
              `git ${args[0]} (${this.#display}, branch ${this.#options.branch}): ${aborted ? "aborted" : detail}`,
              { disposition: "transient", context: { command: args[0] } },
            ),
          );
        },
      );
    });
  }
}

/**
 * Credentials in an https URL become an `http.<url>.extraHeader` for that one git command, passed
 * through git's environment config (GIT_CONFIG_COUNT, git 2.31+): never written to `.git/config` in
 * the state directory and never on a command line other local users can read.
 */
export function credentialEnv(url: string, display: string): Record<string, string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return {};
  }
  if (!parsed.username && !parsed.password) return {};
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  return extraHeaderEnv(display, basicAuthHeader(user, password));
}

function basicAuthHeader(user: string, password: string): string {
  return `Authorization: Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/** One `http.<url>.extraHeader` through git's environment config: sent to that URL only. */
function extraHeaderEnv(url: string, header: string): Record<string, string> {
  return { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: `http.${url}.extraHeader`, GIT_CONFIG_VALUE_0: header };
}

/**
 * The ssh command git runs (`GIT_SSH_COMMAND`, read by a shell, hence the quoting): only the given
 * key (`IdentitiesOnly`, no agent keys), only the given host keys (`UserKnownHostsFile`, the global
 * file off, `StrictHostKeyChecking=yes`: an unknown or changed host key fails the fetch), never a
 * prompt (`BatchMode`), and the known hosts file never rewritten (`UpdateHostKeys=no`: it is read-only
 * in a pod).
 */
export function sshCommand(knownHostsFile: string, keyFile?: string): string {
  return [
    "ssh",
    ...(keyFile === undefined ? [] : ["-i", shellQuote(keyFile), "-o", "IdentitiesOnly=yes"]),
    "-o",
    `UserKnownHostsFile=${shellQuote(knownHostsFile)}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "UpdateHostKeys=no",
    "-o",
    "BatchMode=yes",
  ].join(" ");
}

/** `'...'` for a POSIX shell, with embedded quotes closed, escaped and reopened. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function credentialError(message: string, disposition: "terminal" | "transient" = "terminal"): GitOpsError {
  return new GitOpsError("E_GIT_CREDENTIALS", message, { disposition, context: { component: "git" } });
}

/** The credentials of `options`, checked (the config loader has checked that they fit the URL). */
function resolveAuth(options: GitSourceOptions, env: NodeJS.ProcessEnv, display: string): GitAuth {
  const { token_env, token_file, ssh_key_file, known_hosts_file } = options;
  if (token_env !== undefined || token_file !== undefined) {
    if (gitTransport(options.url) !== "http")
      throw credentialError(`source.git: a token is sent over http(s) only, not to ${display}`);
    if (display !== options.url)
      throw credentialError("source.git: the URL carries credentials and a token is configured too");
    const username = options.username ?? DEFAULT_GIT_USERNAME;
    if (token_env !== undefined) {
      const value = env[token_env]?.trim() ?? "";
      if (value === "")
        throw credentialError(`source.git.token_env: environment variable ${token_env} is empty or not set`);
      return { kind: "token", username, token: new Secret(value), file: null };
    }
    readable(token_file as string, "source.git.token_file");
    return { kind: "token", username, token: null, file: token_file as string };
  }
  if (ssh_key_file !== undefined || known_hosts_file !== undefined) {
    if (known_hosts_file === undefined) {
      throw new GitOpsError(
        "E_GIT_KNOWN_HOSTS",
        "source.git.ssh_key_file needs known_hosts_file: host keys are never accepted on first use",
      );
    }
    readable(known_hosts_file, "source.git.known_hosts_file");
    if (statSync(known_hosts_file).size === 0) {
      throw new GitOpsError(
        "E_GIT_KNOWN_HOSTS",
        `source.git.known_hosts_file ${known_hosts_file} is empty: no host would be trusted`,
      );
    }
    // Known hosts alone: the keys ssh finds itself (an agent, ~/.ssh), the host checked all the same.
    if (ssh_key_file === undefined) return { kind: "ssh", command: sshCommand(known_hosts_file) };
    readable(ssh_key_file, "source.git.ssh_key_file");
    return { kind: "ssh", command: sshCommand(known_hosts_file, privateKeyFile(ssh_key_file)) };
  }
  return display === options.url ? { kind: "none" } : { kind: "url" };
}

function readable(path: string, what: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (error) {
    throw credentialError(
      `${what}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
    );
  }
}

/**
 * ssh refuses a key that others than its owner can read. A Kubernetes Secret volume in a pod with
 * `fsGroup` (deploy/kubernetes/deployment.yaml needs it for the state volume) is mounted group-readable
 * (0440), so such a key is copied, once, into a fresh 0700 directory under the temp directory (an
 * emptyDir in the pod) as 0600, and removed when the process exits.
 */
function privateKeyFile(path: string): string {
  if ((statSync(path).mode & 0o077) === 0) return path;
  const dir = mkdtempSync(join(tmpdir(), "cf-oauth-gitops-ssh-"));
  const copy = join(dir, "key");
  copyFileSync(path, copy);
  chmodSync(copy, 0o600);
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return copy;
}

async function readTokenFile(file: string): Promise<Secret> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw credentialError(
      `source.git.token_file: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      "transient",
    );
  }
  const token = text.trim();
  if (token === "") throw credentialError(`source.git.token_file ${file} is empty`, "transient");
  return new Secret(token);
}

function pickEnv(source: NodeJS.ProcessEnv, names: readonly string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of names) if (source[name] !== undefined) env[name] = source[name];
  return env;
}

function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join("[REDACTED]");
  return out;
}

/**
 * `https://user:token@host/repo` -> `https://host/repo`; an ssh URL keeps its user (`ssh://git@host`
 * is who to log in as, not a credential) and loses only a password; other forms are returned unchanged.
 */
export function displayGitUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const http = parsed.protocol === "http:" || parsed.protocol === "https:";
    if (!parsed.password && (!http || !parsed.username)) return url;
    if (http) parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return url;
  }
}

function redactUrl(text: string, url: string, display: string): string {
  return url === display ? text : text.split(url).join(display);
}

function checkBranch(branch: string): void {
  // Refuse what could be read as an option or leave refs/heads/ (git check-ref-format's main rules).
  if (
    branch.length === 0 ||
    branch.startsWith("-") ||
    branch.startsWith("/") ||
    branch.endsWith("/") ||
    branch.endsWith(".lock") ||
    branch.includes("..") ||
    branch.includes("@{") ||
    // eslint-disable-next-line no-control-regex
    /[\s~^:?*[\\\u0000-\u001f\u007f]/.test(branch)
  ) {
    throw new GitOpsError(
      "E_GIT_BRANCH",
      `source.git.branch is not a branch name: ${JSON.stringify(branch)}`,
    );
  }
}

/** `path` resolved inside `root`; a path that leaves the working copy is refused. */
function desiredPathIn(root: string, path: string): string {
  const target = resolve(root, path);
  const rel = relative(root, target);
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new GitOpsError("E_GIT_PATH", `source.git.path must stay inside the repository: ${path}`);
  }
  return target;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

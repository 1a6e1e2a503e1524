import { execFile } from "node:child_process";
import { access, mkdir, rm } from "node:fs/promises";
import { join, relative, resolve, sep, isAbsolute } from "node:path";
import { GitOpsError } from "../errors.js";
import type { Logger } from "../log.js";

/**
 * The config's `source.git`: the desired state lives in a branch of a git repository, cloned into
 * the state directory and read one commit at a time.
 *
 * Everything runs through the system `git` with `execFile` (argv, never a shell), with prompts off and
 * a timeout. Each run fetches the branch, pins the fetched sha, and checks that exact commit out
 * (detached, forced, untracked files cleaned), so the files a run reads always belong to one commit
 * and the status can name it. Symlinks are checked out as plain files (`core.symlinks=false`): a
 * commit cannot point the loader at a file outside the checkout.
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
  env?: NodeJS.ProcessEnv;
}

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

  #git(args: string[], cwd: string | undefined, signal?: AbortSignal): Promise<string> {
    const env = {
      ...(this.#options.env ?? process.env),
      ...credentialEnv(this.#options.url, this.#display),
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
          const detail = redactUrl(String(stderr || error.message).trim(), this.#options.url, this.#display);
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
  const basic = Buffer.from(`${user}:${password}`).toString("base64");
  return {
    GIT_CONFIG_COUNT: "1",
    GIT_CONFIG_KEY_0: `http.${display}.extraHeader`,
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
  };
}

/** `https://user:token@host/repo` -> `https://host/repo`; other forms are returned unchanged. */
export function displayGitUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = "";
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

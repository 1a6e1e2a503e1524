import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ReconcilerConfig } from "../config/types.js";
import type { Inventory } from "../core/model.js";
import { GitOpsError, StateError } from "../errors.js";
import { type InventoryStore, parseInventory, serializeInventory } from "../state/inventory.js";
import { credentialEnv, displayGitUrl } from "./git-source.js";

/**
 * The ownership record shared through git (config `ownership.git`).
 *
 * `run` keeps its inventory in its state directory (state/inventory.ts); a pull request's `plan` runs
 * in a fresh checkout where that directory does not exist, and without it every owned client reads as
 * "not owned; never touched", so a pull request that removes an owned client would plan no delete
 * while the merge deletes it. So the daemon publishes a copy, `inventory.json` in the same format as
 * the state file (account ids, client ids, names, origin and time; never a secret), as a commit on a
 * ref of the repository it already fetches from (`refs/cf-oauth-gitops/ownership` by default), with
 * the credentials it fetches with; `plan` reads that ref, and refuses to plan when it cannot.
 *
 * The commit is built from git objects alone (`hash-object` of a blob, a one-entry tree and a commit),
 * so publishing never touches the working copy a run reads. Each publication's parent is the commit
 * the ref held when it was read, and the push is a plain one: a ref that moved meanwhile is refused as
 * not a fast-forward (compare-and-swap), and the next run reads it again. The local state file stays
 * the daemon's source of truth; the ref is a copy, compared byte for byte ({@link serializeInventory}).
 */

/** The file the ref's commit holds. */
export const OWNERSHIP_FILE = "inventory.json";

/** Runs one git command (argv) in a repository whose `origin` holds the ref; resolves with stdout. */
export type GitRunner = (args: string[], signal?: AbortSignal) => Promise<string>;

/** The record as read from the ref. */
export interface PublishedOwnership {
  /** The ref's commit. */
  commit: string;
  inventory: Inventory;
  /** The file's bytes as published. */
  body: string;
  /** The commit's time (ISO), i.e. when it was published. */
  published_at: string | null;
  /** The desired-state commit of the run that published it (its `Applied-Revision:` trailer). */
  revision: string | null;
}

const OID_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const IDENTITY = "cf-oauth-gitops <cf-oauth-gitops@localhost>";

/** The commit the remote ref points at, or null when the remote has no such ref. */
export async function remoteOwnershipCommit(
  run: GitRunner,
  ref: string,
  signal?: AbortSignal,
): Promise<string | null> {
  const out = await run(["ls-remote", "--", "origin", ref], signal);
  // ls-remote matches patterns by their tail: only the exact name counts.
  for (const line of out.split("\n")) {
    const [sha, name] = line.trim().split(/\s+/);
    if (name === ref && sha && OID_RE.test(sha)) return sha;
  }
  return null;
}

/**
 * Fetches the ref's objects (without writing FETCH_HEAD or any local ref: in a user's checkout nothing
 * visible changes) and checks that `commit` arrived. False when the ref moved on meanwhile.
 */
async function fetchCommit(run: GitRunner, ref: string, commit: string, signal?: AbortSignal) {
  await run(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin", ref], signal);
  try {
    await run(["cat-file", "-e", `${commit}^{commit}`], signal);
    return true;
  } catch {
    return false;
  }
}

/** Reads the published record; null when the ref does not exist. */
export async function readPublishedOwnership(
  run: GitRunner,
  ref: string,
  signal?: AbortSignal,
): Promise<PublishedOwnership | null> {
  let commit: string | null = null;
  for (let attempt = 0; attempt < 3 && commit === null; attempt++) {
    const remote = await remoteOwnershipCommit(run, ref, signal);
    if (remote === null) return null;
    if (await fetchCommit(run, ref, remote, signal)) commit = remote;
  }
  if (commit === null) {
    throw new GitOpsError("E_GIT", `${ref} kept moving while it was fetched`, { disposition: "transient" });
  }
  let body: string;
  try {
    body = await run(["cat-file", "blob", `${commit}:${OWNERSHIP_FILE}`], signal);
  } catch {
    throw new StateError("E_STATE_CORRUPT", `${ref} (commit ${commit}) holds no ${OWNERSHIP_FILE}`);
  }
  const inventory = parseInventory(body, `${ref}:${OWNERSHIP_FILE}`);
  const header = await run(["cat-file", "commit", commit], signal);
  return { commit, inventory, body, ...commitFacts(header) };
}

/** The committer time and the `Applied-Revision:` trailer of a raw commit object. */
function commitFacts(raw: string): { published_at: string | null; revision: string | null } {
  const committer = /^committer .* (\d+) [+-]\d{4}$/m.exec(raw);
  const revision = /^Applied-Revision: ([0-9a-f]{40,64})$/m.exec(raw);
  return {
    published_at: committer?.[1] ? new Date(Number(committer[1]) * 1000).toISOString() : null,
    revision: revision?.[1] ?? null,
  };
}

export interface PublishOptions {
  ref: string;
  inventory: Inventory;
  /** A private directory for the object files handed to `git hash-object` (created if missing). */
  scratchDir: string;
  now: Date;
  /** The desired-state commit of the run publishing (recorded as a trailer). */
  revision: string | null;
  /** What this process last published or saw there: unchanged, nothing is fetched. */
  known?: { commit: string; body: string } | null;
  signal?: AbortSignal;
}

export interface PublishResult {
  /** The commit the ref holds now. */
  commit: string;
  /** False when the ref already held exactly this inventory. */
  changed: boolean;
  body: string;
}

/** Publishes the inventory to the ref unless the ref already holds exactly it. */
export async function publishOwnership(run: GitRunner, options: PublishOptions): Promise<PublishResult> {
  const { ref, signal } = options;
  const body = serializeInventory(options.inventory);
  const remote = await remoteOwnershipCommit(run, ref, signal);
  if (remote !== null && options.known?.commit === remote && options.known.body === body) {
    return { commit: remote, changed: false, body };
  }
  let parent: string | null = null;
  if (remote !== null) {
    if (!(await fetchCommit(run, ref, remote, signal))) {
      throw new GitOpsError("E_GIT", `${ref} moved while it was fetched; the next run publishes again`, {
        disposition: "transient",
      });
    }
    parent = remote;
    let published: string | null;
    try {
      published = await run(["cat-file", "blob", `${remote}:${OWNERSHIP_FILE}`], signal);
    } catch {
      published = null; // something else sits there: the record goes on top of it
    }
    if (published === body) return { commit: remote, changed: false, body };
  }
  await mkdir(options.scratchDir, { recursive: true, mode: 0o700 });
  const hash = (type: "blob" | "tree" | "commit", content: Buffer) =>
    hashObject(run, options.scratchDir, type, content, signal);
  const blob = await hash("blob", Buffer.from(body, "utf8"));
  const tree = await hash(
    "tree",
    Buffer.concat([Buffer.from(`100644 ${OWNERSHIP_FILE}\0`, "utf8"), Buffer.from(blob, "hex")]),
  );
  const commit = await hash("commit", commitObject(tree, parent, options.now, options.revision));
  // A plain push: from `parent` it is a fast-forward, and anything else is refused by the remote.
  await run(["push", "--quiet", "--no-verify", "origin", `${commit}:${ref}`], signal);
  return { commit, changed: true, body };
}

function commitObject(tree: string, parent: string | null, now: Date, revision: string | null): Buffer {
  const when = `${Math.floor(now.getTime() / 1000)} +0000`;
  const lines = [
    `tree ${tree}`,
    ...(parent ? [`parent ${parent}`] : []),
    `author ${IDENTITY} ${when}`,
    `committer ${IDENTITY} ${when}`,
    "",
    "cf-oauth-gitops ownership record",
    "",
    `The OAuth clients cf-oauth-gitops created or adopted, per account (${OWNERSHIP_FILE}: ids and`,
    "names, never a secret). Written by `cf-oauth-gitops run`; read by `cf-oauth-gitops plan`.",
    ...(revision ? ["", `Applied-Revision: ${revision}`] : []),
    "",
  ];
  return Buffer.from(lines.join("\n"), "utf8");
}

async function hashObject(
  run: GitRunner,
  dir: string,
  type: "blob" | "tree" | "commit",
  content: Buffer,
  signal?: AbortSignal,
): Promise<string> {
  const path = join(dir, `object.${type}`);
  await writeFile(path, content, { mode: 0o600 });
  const oid = (await run(["hash-object", "-w", "--no-filters", "-t", type, "--", path], signal)).trim();
  if (!OID_RE.test(oid)) throw new GitOpsError("E_GIT", `git hash-object gave no object id for the ${type}`);
  return oid;
}

/** What `plan` plans from: the record read once, never written back. */
export class ReadOnlyInventoryStore implements InventoryStore {
  readonly #inventory: Inventory;

  constructor(inventory: Inventory) {
    this.#inventory = inventory;
  }

  load(): Promise<Inventory> {
    return Promise.resolve(this.#inventory);
  }

  save(): Promise<void> {
    return Promise.reject(
      new StateError("E_STATE_READ_ONLY", "the published ownership record is written by `run` only"),
    );
  }
}

/** The record `plan` read, and from where (for the plan's note; no credentials). */
export interface OwnershipForPlan extends PublishedOwnership {
  ref: string;
  /** `origin of <dir>` or the URL without credentials. */
  where: string;
}

/**
 * Reads `ownership.git` for `plan`: from `ownership.git.url` when set, else from the `origin` of the
 * git clone holding the config file (a CI checkout, whose own credentials then apply), else from
 * `source.git.url`. Every failure, a missing ref included, is `E_OWNERSHIP_UNREADABLE`: a plan
 * without the record would show owned clients as unmanaged and the deletes a merge makes as nothing.
 */
export async function readOwnershipForPlan(
  config: ReconcilerConfig,
  ref: string,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<OwnershipForPlan> {
  const configDir = dirname(config.config_file);
  let where = `the origin of the clone holding ${config.config_file}`;
  const unreadable = (detail: string, cause?: unknown) =>
    new GitOpsError(
      "E_OWNERSHIP_UNREADABLE",
      `cannot read the ownership record ${ref} from ${where}: ${detail}. Without it, clients this tool ` +
        "owns would show as not owned and their deletes would not be planned, so nothing was planned " +
        "(README, Plans in CI)",
      { cause, context: { ref } },
    );
  let repo: Repository;
  try {
    let url = config.ownership?.git.url;
    if (url === undefined && !(await insideWorkTree(configDir, env, signal))) {
      url = config.source?.git.url;
      if (url === undefined) throw unreadable("the config file is not in a git clone; set ownership.git.url");
    }
    if (url === undefined) {
      repo = { run: localRunner(configDir, env), close: async () => undefined };
    } else {
      where = displayGitUrl(url);
      if (url.startsWith("-")) throw unreadable("the URL must not start with '-'");
      repo = await tempRepository(url, env);
    }
  } catch (error) {
    if (error instanceof GitOpsError && error.code === "E_OWNERSHIP_UNREADABLE") throw error;
    throw unreadable((error as Error).message, error);
  }
  try {
    const record = await readPublishedOwnership(repo.run, ref, signal);
    if (record === null) {
      throw unreadable(
        "the ref does not exist (`run` publishes it after its first run when the config has ownership.git)",
      );
    }
    return { ...record, ref, where };
  } catch (error) {
    if (error instanceof GitOpsError && error.code === "E_OWNERSHIP_UNREADABLE") throw error;
    throw unreadable((error as Error).message, error);
  } finally {
    await repo.close();
  }
}

interface Repository {
  run: GitRunner;
  close(): Promise<void>;
}

async function insideWorkTree(dir: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<boolean> {
  try {
    return (await localRunner(dir, env)(["rev-parse", "--is-inside-work-tree"], signal)).trim() === "true";
  } catch {
    return false;
  }
}

/** A throw-away bare repository whose `origin` is `url` (credentials in the URL go by environment). */
async function tempRepository(url: string, env: NodeJS.ProcessEnv): Promise<Repository> {
  const dir = await mkdtemp(join(tmpdir(), "cf-oauth-gitops-ownership-"));
  const display = displayGitUrl(url);
  const run = localRunner(dir, { ...env, ...credentialEnv(url, display) }, [url, display]);
  try {
    await run(["init", "--quiet", "--bare"]);
    await run(["remote", "add", "origin", display]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { run, close: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The system git in `cwd` (argv, never a shell), prompts off, a timeout. Messages lose any
 * `user:password@` of a URL they quote.
 */
export function localRunner(
  cwd: string,
  env: NodeJS.ProcessEnv,
  redact: [string, string] | null = null,
  timeoutMs = 60_000,
): GitRunner {
  const childEnv = { ...env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "", LC_ALL: "C" };
  return (args, signal) =>
    new Promise((resolvePromise, reject) => {
      execFile(
        "git",
        args,
        {
          cwd,
          env: childEnv,
          timeout: timeoutMs,
          maxBuffer: 16 * 1024 * 1024,
          ...(signal ? { signal } : {}),
        },
        (error, stdout, stderr) => {
          if (!error) return resolvePromise(stdout);
          let detail = String(stderr || error.message).trim();
          if (redact && redact[0] !== redact[1]) detail = detail.split(redact[0]).join(redact[1]);
          detail = detail.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, "$1");
          reject(new GitOpsError("E_GIT", `git ${args[0]}: ${detail}`, { disposition: "transient" }));
        },
      );
    });
}

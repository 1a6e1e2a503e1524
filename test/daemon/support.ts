import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { ACCOUNT_A, control, WRITE_TOKEN } from "../helpers/emulator.js";
import { program } from "../helpers/program.js";

/**
 * The daemon as a real process (test/helpers/program.ts: `cf-oauth-gitops run ...`) against a real emulator,
 * real git repositories and temp directories. The helpers read the daemon's JSON log lines (stdout)
 * and its HTTP endpoints; nothing is mocked.
 */

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789";

/** One JSON log line. */
export type LogLine = Record<string, unknown> & { msg?: string; component?: string };

/** The daemon's log line that ends a run (any result). */
export const runFinished = (l: LogLine): boolean =>
  l.component === "daemon" && typeof l.msg === "string" && l.msg.startsWith("run finished");

export interface DaemonProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:PORT`, read from the `listening` log line. */
  url: string;
  lines: LogLine[];
  /** Raw stdout and stderr so far (for secret scans and failure messages). */
  output(): string;
  /** Resolves with the first line (already seen or coming) matching `predicate`. */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  get<T = unknown>(path: string): Promise<{ status: number; body: T; text: string }>;
}

export interface StartOptions {
  cwd: string;
  args?: string[];
  emulator: EmulatorHandle;
  env?: Record<string, string>;
  /** Wait for the `listening` line (false for `--once`). Default true. */
  listening?: boolean;
  /** Moves the daemon's clock ahead (seconds, or a duration such as `91d`): see test/helpers/program.ts. */
  clockOffset?: number | string;
}

/** Starts `cf-oauth-gitops run` and waits until it serves HTTP. Killed after the test if still running. */
export async function startDaemon(options: StartOptions): Promise<DaemonProcess> {
  const cli = program({ clockOffset: options.clockOffset });
  const child = spawn(
    process.execPath,
    [...cli.args, "run", "-c", "cf-oauth-gitops.yaml", ...(options.args ?? ["--listen", "127.0.0.1:0"])],
    {
      cwd: options.cwd,
      env: {
        PATH: process.env["PATH"] ?? "",
        HOME: process.env["HOME"] ?? "",
        CLOUDFLARE_BASE_URL: options.emulator.url,
        CLOUDFLARE_API_TOKEN: WRITE_TOKEN,
        WEBHOOK_SECRET,
        ...options.env,
        ...cli.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const lines: LogLine[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let raw = "";
  let pending = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    raw += chunk;
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of waiters) {
        if (w.predicate(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (raw += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });

  const waitForLine = (predicate: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> => {
    const seen = lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms; output:\n${raw.slice(-4000)}`));
      }, timeoutMs);
      waiter.resolve = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
      waiters.add(waiter);
      void exited.then(() => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`the daemon exited before a matching line; output:\n${raw.slice(-4000)}`));
      });
    });
  };

  let url = "";
  if (options.listening !== false) {
    const listening = await waitForLine((l) => l.msg === "listening" && l.component === "server");
    url = listening["url"] as string;
  }
  return {
    child,
    url,
    lines,
    output: () => raw,
    waitForLine,
    exited,
    stop: async (signal = "SIGTERM") => {
      child.kill(signal);
      return exited;
    },
    get: async <T>(path: string) => {
      const res = await fetch(`${url}${path}`);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // text/plain endpoints
      }
      return { status: res.status, body: body as T, text };
    },
  };
}

/** Polls `check` until it returns a value other than undefined (or throws after `timeoutMs`). */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A temp directory removed after the test. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `cf-oauth-gitops-${prefix}-`));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A confidential client entry as YAML (one list item). */
export function clientYaml(name: string, redirect = `https://${name}.example/callback`): string {
  return [
    `  - client_name: ${name}`,
    `    token_endpoint_auth_method: client_secret_post`,
    `    grant_types: [authorization_code, refresh_token]`,
    `    response_types: [code]`,
    `    redirect_uris: [${redirect}]`,
    `    scopes: [openid, email]`,
  ].join("\n");
}

/** A desired-state file for ACCOUNT_A. */
export function desiredYaml(entries: string[]): string {
  return `account_id: ${ACCOUNT_A}\nclients:\n${entries.join("\n")}\n`;
}

/** Writes the daemon's config (and any extra top-level YAML) into `dir`. */
export async function writeConfig(dir: string, extra: string): Promise<void> {
  await writeFile(
    join(dir, "cf-oauth-gitops.yaml"),
    [
      `account_id: ${ACCOUNT_A}`,
      "desired: ./desired",
      "state_dir: ./state",
      "prune: owned",
      "sinks:",
      "  default:",
      "    type: file",
      "    dir: ./secrets",
      extra,
    ].join("\n") + "\n",
  );
}

/**
 * The `source: git:` block of a daemon config (desired files under `clients/` of `url`), with a
 * `webhook:` block reading its secret from WEBHOOK_SECRET when `webhook` is set.
 */
export function gitSourceYaml(
  url: string,
  options: { poll: string; webhook?: boolean; branch?: boolean } = { poll: "1h" },
): string[] {
  return [
    "source:",
    "  git:",
    `    url: ${url}`,
    ...(options.branch === false ? [] : ["    branch: main"]),
    "    path: clients",
    `    interval: ${options.poll}`,
    ...(options.webhook ? ["webhook:", "  secret_env: WEBHOOK_SECRET"] : []),
  ];
}

/** Live clients of ACCOUNT_A, by name. */
export async function liveByName(emu: EmulatorHandle): Promise<Map<string, Record<string, unknown>>> {
  const clients = await control<Record<string, unknown>[]>(emu, "GET", `clients?account_id=${ACCOUNT_A}`);
  return new Map(clients.map((c) => [c["client_name"] as string, c]));
}

/** Write calls the emulator has counted (POST, PATCH, DELETE under /client/v4). */
export async function writeCount(emu: EmulatorHandle): Promise<number> {
  const stats = await control<{ by_method: Record<string, number> }>(emu, "GET", "stats");
  return (stats.by_method["POST"] ?? 0) + (stats.by_method["PATCH"] ?? 0) + (stats.by_method["DELETE"] ?? 0);
}

/** Changes a field of a live client through the API itself (what a person in the dashboard does). */
export async function patchLive(
  emu: EmulatorHandle,
  clientId: string,
  body: Record<string, unknown>,
): Promise<void> {
  const res = await fetch(`${emu.url}/accounts/${ACCOUNT_A}/oauth_clients/${clientId}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${WRITE_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`PATCH failed: ${res.status} ${await res.text()}`);
}

/**
 * A GitHub-style signed push delivery. Each body is new (a random `after`, as real pushes differ)
 * unless `after` is given: the daemon's replay key is the signed body.
 */
export async function postWebhook(
  daemonUrl: string,
  options: {
    secret?: string;
    signature?: string | null;
    bearer?: string;
    delivery?: string;
    ref?: string;
    after?: string;
  } = {},
): Promise<{ status: number; body: string }> {
  const after = options.after ?? randomUUID().replace(/-/g, "").padEnd(40, "0");
  const body = JSON.stringify({ ref: options.ref ?? "refs/heads/main", after });
  const headers: Record<string, string> = { "content-type": "application/json", "x-github-event": "push" };
  headers["x-github-delivery"] = options.delivery ?? randomUUID();
  if (options.bearer !== undefined) {
    delete headers["x-github-event"];
    headers["authorization"] = `Bearer ${options.bearer}`;
  } else if (options.signature !== null) {
    headers["x-hub-signature-256"] =
      options.signature ??
      `sha256=${createHmac("sha256", options.secret ?? WEBHOOK_SECRET)
        .update(body)
        .digest("hex")}`;
  }
  const res = await fetch(`${daemonUrl}/hooks/git`, { method: "POST", headers, body });
  return { status: res.status, body: await res.text() };
}

/** A bare repository and a working clone that commits and pushes to it, through the system git. */
export class GitRepo {
  readonly bare: string;
  readonly work: string;

  private constructor(root: string) {
    this.bare = join(root, "origin.git");
    this.work = join(root, "work");
  }

  static async create(root: string): Promise<GitRepo> {
    const repo = new GitRepo(root);
    git(root, ["init", "--quiet", "--bare", "--initial-branch=main", repo.bare]);
    git(root, ["init", "--quiet", "--initial-branch=main", repo.work]);
    git(repo.work, ["remote", "add", "origin", repo.bare]);
    return repo;
  }

  get url(): string {
    return `file://${this.bare}`;
  }

  /** Writes files (relative path -> content), commits, pushes; returns the new sha. */
  async commit(files: Record<string, string>, message = "change"): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(this.work, path)), { recursive: true });
      await writeFile(join(this.work, path), content);
    }
    git(this.work, ["add", "-A"]);
    git(this.work, ["commit", "--quiet", "-m", message]);
    git(this.work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    return git(this.work, ["rev-parse", "HEAD"]).trim();
  }

  /**
   * Commits `files` on `branch` (started from main's head), pushes that branch (a pull request's
   * branch), and returns the working clone to main; returns the new sha.
   */
  async commitOnBranch(branch: string, files: Record<string, string>, message = "change"): Promise<string> {
    git(this.work, ["checkout", "--quiet", "-B", branch, "main"]);
    try {
      for (const [path, content] of Object.entries(files)) {
        await mkdir(dirname(join(this.work, path)), { recursive: true });
        await writeFile(join(this.work, path), content);
      }
      git(this.work, ["add", "-A"]);
      git(this.work, ["commit", "--quiet", "-m", message]);
      git(this.work, ["push", "--quiet", "origin", `HEAD:refs/heads/${branch}`]);
      return git(this.work, ["rev-parse", "HEAD"]).trim();
    } finally {
      git(this.work, ["checkout", "--quiet", "main"]);
    }
  }

  /** Merges `branch` into main (fast-forward when it can) and pushes main; returns main's new sha. */
  merge(branch: string): string {
    git(this.work, ["merge", "--quiet", "--no-edit", branch]);
    git(this.work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    return git(this.work, ["rev-parse", "HEAD"]).trim();
  }

  /** A fresh clone of `branch` into `dir` (what a CI job checks out). */
  cloneTo(dir: string, branch = "main"): void {
    git(dirname(dir), ["clone", "--quiet", "--branch", branch, this.url, dir]);
  }

  /** Runs git in the bare repository (inspecting refs the daemon pushed). */
  gitBare(args: string[]): string {
    return git(this.bare, args);
  }
}

function git(cwd: string, args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: cwd,
      GIT_AUTHOR_NAME: "test",
      GIT_AUTHOR_EMAIL: "test@example.com",
      GIT_COMMITTER_NAME: "test",
      GIT_COMMITTER_EMAIL: "test@example.com",
      GIT_CONFIG_NOSYSTEM: "1",
    },
  });
}

/** Reads a file sink record (`<dir>/<account>/<key>.json`). */
export async function readSinkRecord(
  dir: string,
  key: string,
): Promise<{ client_id: string; client_secret: string }> {
  return JSON.parse(await readFile(join(dir, ACCOUNT_A, `${key}.json`), "utf8")) as {
    client_id: string;
    client_secret: string;
  };
}

/**
 * A strict parser of the Prometheus text exposition format (0.0.4): every line is a comment, blank,
 * or `name{label="value",...} value [timestamp]`; HELP/TYPE lines name valid metrics; samples belong
 * to the family announced by the TYPE line before them. Throws on the first violation.
 */
export function parsePrometheusText(
  text: string,
): Map<string, { type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }> {
  const families = new Map<
    string,
    { type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }
  >();
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  let current: string | null = null;
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  text.split("\n").forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // other comments are allowed
      const [, kind, name, rest] = m as unknown as [string, string, string, string | undefined];
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      if (kind === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest ?? ""))
          throw new Error(`bad type, ${where}`);
        if (families.has(name)) throw new Error(`duplicate TYPE, ${where}`);
        families.set(name, { type: rest as string, samples: [] });
        current = name;
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample, ${where}`);
    const [, name, , labelText, valueText] = m as unknown as [
      string,
      string,
      string,
      string | undefined,
      string,
    ];
    const labels: Record<string, string> = {};
    if (labelText) {
      const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"\s*(,|$)/y;
      let pos = 0;
      while (pos < labelText.length) {
        LABEL.lastIndex = pos;
        const lm = LABEL.exec(labelText);
        if (!lm) throw new Error(`bad labels, ${where}`);
        labels[lm[1] as string] = (lm[2] as string).replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
        pos = LABEL.lastIndex;
      }
    }
    const value = /^[+-]?Inf$/.test(valueText)
      ? valueText.startsWith("-")
        ? -Infinity
        : Infinity
      : valueText === "NaN"
        ? NaN
        : Number(valueText);
    if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`bad value, ${where}`);
    const family = current === null ? undefined : families.get(current);
    const base =
      family?.type === "histogram"
        ? name.replace(/_(bucket|sum|count)$/, "")
        : family?.type === "summary"
          ? name.replace(/_(sum|count)$/, "")
          : name;
    if (!family || base !== current) throw new Error(`sample outside its family, ${where}`);
    family.samples.push({ name, labels, value });
  });
  return families;
}

import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { join, relative } from "node:path";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { filesUnder, LIST_ROUTE, stats } from "../e2e/support.js";
import { type DaemonProcess, eventually, parsePrometheusText, WEBHOOK_SECRET } from "../daemon/support.js";
import { control } from "../helpers/emulator.js";

/**
 * Pieces shared by the daemon reliability suites (webhook-abuse, daemon-crash, daemon-canary): what
 * the daemon has done so far as its log, /status, /metrics and the emulator's stats see it, raw HTTP
 * requests that fetch() cannot make (chunked bodies, trickled headers), and a collector of every
 * secret that passes through the sink and the journal while a daemon runs.
 */

/** GitHub's `X-Hub-Signature-256` value for `body` under `secret`. */
export function sign(body: string | Buffer, secret = WEBHOOK_SECRET): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** A push to `main`, as GitHub delivers it (only `ref` matters to the daemon). */
export function pushBody(after = "0".repeat(40), padding = 0): string {
  return JSON.stringify({ ref: "refs/heads/main", after, pad: " ".repeat(padding) });
}

/** Sum of the samples of `name` whose labels include `labels`. */
export async function metric(
  daemon: DaemonProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const families = parsePrometheusText((await daemon.get<string>("/metrics")).text);
  return (families.get(name)?.samples ?? [])
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

/** `/status` `queue` (src/engine/daemon.ts `QueueStatus`): what the daemon holds to do. */
export interface QueueState {
  running: boolean;
  next_run: { reasons: string[]; held_by: string; starts_at: string | null } | null;
  pending_triggers: { trigger: string; kind: string; paths: number; due_at: string | null }[];
  runs_started: number;
  runs_finished: number;
}

/** Everything that moves when the daemon starts a run or calls the API. */
export interface Activity {
  /** `/status` `queue.runs_started` and `runs_finished`. */
  started: number;
  finished: number;
  /** `cf_oauth_gitops_runs_total`, all results. */
  runs: number;
  /** `cf_oauth_gitops_triggers_total{reason="webhook"}`. */
  webhookTriggers: number;
  /** `/status`: a run in flight, a run requested and not started, triggers about to request. */
  running: boolean;
  queued: boolean;
  pendingTriggers: number;
  /** The id of the last finished run. */
  lastRunId: number | null;
  /** Requests the emulator counted (every route under /client/v4). */
  api: number;
  /** List calls among them. */
  lists: number;
}

interface StatusView {
  queue: QueueState;
  last_run: { id: number } | null;
}

/** A snapshot of {@link Activity}, the daemon's part read off one `/status`. */
export async function activity(daemon: DaemonProcess, emu: EmulatorHandle): Promise<Activity> {
  return activityFrom(daemon, emu, (await daemon.get<StatusView>("/status")).body);
}

async function activityFrom(
  daemon: DaemonProcess,
  emu: EmulatorHandle,
  status: StatusView,
): Promise<Activity> {
  const s = await stats(emu);
  return {
    started: status.queue.runs_started,
    finished: status.queue.runs_finished,
    runs: await metric(daemon, "cf_oauth_gitops_runs_total"),
    webhookTriggers: await metric(daemon, "cf_oauth_gitops_triggers_total", { reason: "webhook" }),
    running: status.queue.running,
    queued: status.queue.next_run !== null,
    pendingTriggers: status.queue.pending_triggers.length,
    lastRunId: status.last_run?.id ?? null,
    api: s.total,
    lists: s.by_route[LIST_ROUTE] ?? 0,
  };
}

/**
 * True when the daemon says, in one status, that it holds nothing to do: no run in flight, none
 * requested, no trigger about to request one, and every run it started finished. From there only
 * new input (a webhook, a file change, a timer firing) can start a run.
 */
export function isIdle(queue: QueueState): boolean {
  return (
    !queue.running &&
    queue.next_run === null &&
    queue.pending_triggers.length === 0 &&
    queue.runs_started === queue.runs_finished
  );
}

/**
 * Waits for positive evidence of idleness: one `/status` whose `queue` is idle ({@link isIdle}),
 * then the emulator reporting no API request in flight (a request a client gave up on is still
 * counted once it ends), and returns the activity as of then. No "quiet for a while": the daemon's
 * own account says nothing is left, so the counts read after it are final until new input.
 */
export async function waitIdle(
  daemon: DaemonProcess,
  emu: EmulatorHandle,
  { timeoutMs = 60_000 } = {},
): Promise<Activity> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = (await daemon.get<StatusView>("/status")).body;
    if (isIdle(status.queue)) {
      await eventually(
        async () =>
          (await control<{ requests: number }>(emu, "GET", "in-flight")).requests === 0 ? true : undefined,
        Math.max(1_000, deadline - Date.now()),
        "no API request in flight at the emulator",
      );
      return activityFrom(daemon, emu, status);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the daemon did not go idle: ${JSON.stringify(status.queue)}\n${daemon.output().slice(-3000)}`,
      );
    }
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An HTTP answer read off a raw request; `status` 0 when the server closed without one. */
export interface RawAnswer {
  status: number;
  text: string;
}

/**
 * POSTs `total` bytes to `/hooks/git` as a chunked body (no Content-Length), in 64 KiB chunks, with
 * `headers`. The server may answer and close while the body is still being written: the answer
 * counts, the write error after it does not.
 */
export function postChunked(url: string, headers: Record<string, string>, body: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/hooks/git`, { method: "POST", headers });
    let answered = false;
    req.on("response", (res) => {
      answered = true;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (answered) return;
      if (error.code === "EPIPE" || error.code === "ECONNRESET") return resolve({ status: 0, text: "" });
      reject(error);
    });
    void (async () => {
      for (let at = 0; at < body.length && !req.destroyed; at += 64 * 1024) {
        if (!req.write(body.subarray(at, at + 64 * 1024))) {
          await new Promise<void>((r) => {
            const done = () => {
              req.off("drain", done);
              req.off("close", done);
              r();
            };
            req.on("drain", done);
            req.on("close", done);
          });
        }
      }
      if (!req.destroyed) req.end();
    })();
  });
}

/** What became of a request written piece by piece. */
export interface TrickleOutcome {
  /** Pieces written before the server answered or closed (all of them when it never did first). */
  written: number;
  pieces: number;
  /** True when the server answered or closed before the last piece was written. */
  cutOff: boolean;
  /** The raw answer (status line and all), if any. */
  answer: string;
}

/**
 * Writes `pieces` to a raw TCP connection `intervalMs` apart (a slow client: headers or body a few
 * bytes at a time) and resolves once the server has closed the connection or, after the last
 * piece, answered.
 */
export function trickle(url: string, pieces: readonly string[], intervalMs: number): Promise<TrickleOutcome> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let written = 0;
    let answer = "";
    let cutOff = false;
    let timer: NodeJS.Timeout | null = null;
    const socket = connect(Number(port), hostname);
    const finish = () => {
      if (timer) clearTimeout(timer);
      resolve({ written, pieces: pieces.length, cutOff, answer });
    };
    socket.setEncoding("utf8");
    socket.on("error", () => undefined);
    socket.on("data", (chunk: string) => {
      if (written < pieces.length) cutOff = true;
      answer += chunk;
    });
    socket.on("close", () => {
      if (written < pieces.length) cutOff = true;
      finish();
    });
    const next = () => {
      timer = null;
      if (socket.destroyed || cutOff) return;
      socket.write(pieces[written] as string);
      written += 1;
      // After the last piece a server that keeps the connection open has answered: close our side.
      if (written === pieces.length) timer = setTimeout(() => socket.end(), 1_000);
      else timer = setTimeout(next, intervalMs);
    };
    socket.once("connect", next);
  });
}

/** One state file as it was at one moment. */
export interface StateSnapshot {
  path: string;
  text: string;
}

/**
 * Polls the sink directory and the state directory while a daemon runs: every `client_secret` a
 * sink file held and every secret a journal entry held are collected (the canaries), and every
 * distinct version of every state file is kept to be searched for them afterwards.
 */
export class SecretWatch {
  readonly secrets = new Set<string>();
  /** Per sink file (relative to the sink directory): the secrets it held, in the order seen. */
  readonly history = new Map<string, string[]>();
  readonly snapshots: StateSnapshot[] = [];
  readonly #seen = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #busy: Promise<void> = Promise.resolve();

  constructor(
    readonly secretsDir: string,
    readonly stateDir: string,
  ) {}

  start(intervalMs = 40): void {
    const tick = () => {
      this.#busy = this.sample().finally(() => {
        if (this.#timer) this.#timer = setTimeout(tick, intervalMs);
      });
    };
    this.#timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#busy;
    await this.sample();
  }

  /** One look at both directories (files replaced mid-read are skipped; the next look sees them). */
  async sample(): Promise<void> {
    for (const path of await filesUnder(this.secretsDir)) {
      const json = await readJson(path);
      const secret = json?.["client_secret"];
      if (typeof secret !== "string" || secret === "") continue;
      this.secrets.add(secret);
      const seen = this.history.get(relative(this.secretsDir, path)) ?? [];
      if (seen.at(-1) !== secret) seen.push(secret);
      this.history.set(relative(this.secretsDir, path), seen);
    }
    for (const path of await filesUnder(this.stateDir)) {
      if (path.includes(`${join(this.stateDir, "git")}/`)) continue;
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch {
        continue;
      }
      const key = `${path}\u0000${text}`;
      if (this.#seen.has(key)) continue;
      this.#seen.add(key);
      this.snapshots.push({ path: relative(this.stateDir, path), text });
      const secret = parseJson(text)?.["secret"];
      if (typeof secret === "string" && secret !== "") this.secrets.add(secret);
    }
  }
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return parseJson(await readFile(path, "utf8"));
  } catch {
    return null;
  }
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A git repository served over HTTP with basic auth, as a git host with a token in the URL is. */
export interface GitHttpServer {
  /** `http://USER:TOKEN@127.0.0.1:PORT/origin.git`: the URL with its credentials. */
  url: string;
  /** Requests that carried the right credentials (the token was really used). */
  authorized: number;
  close(): Promise<void>;
}

/**
 * Serves a bare repository over git's "dumb" HTTP protocol (static files; `git update-server-info`
 * is run before each `info/refs`), refusing every request without `Authorization: Basic` for
 * `user:token` (git then retries with the credentials in the URL).
 */
export async function serveGitOverHttp(bareDir: string, user: string, token: string): Promise<GitHttpServer> {
  const expected = `Basic ${Buffer.from(`${user}:${token}`).toString("base64")}`;
  const state = { authorized: 0 };
  const server = createServer((req, res) => {
    void (async () => {
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end();
        return;
      }
      state.authorized += 1;
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      const rest = path.replace(/^\/origin\.git\//, "");
      if (rest === path || rest.split("/").includes("..")) return void res.writeHead(404).end();
      if (rest === "info/refs") execFileSync("git", ["update-server-info"], { cwd: bareDir });
      try {
        const body = await readFile(join(bareDir, rest));
        res.writeHead(200, { "content-type": "application/octet-stream" }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${user}:${token}@127.0.0.1:${port}/origin.git`,
    get authorized() {
      return state.authorized;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

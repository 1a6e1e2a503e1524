import { spawn } from "node:child_process";
import { access, constants, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import type { Readable } from "node:stream";
import { z } from "zod";
import { type ErrorCode, SinkError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { describeExecRecord } from "./naming.js";
import { addressLabel, revealRecord, storedRecord } from "./record.js";
import { pieceScrubbedExcerpt } from "./redact.js";
import type { SecretRecord, SecretSink, SinkAddress, StoredRecord } from "./types.js";

export interface ExecSinkOptions {
  /** argv of the write command; run directly (execFile), never through a shell. */
  command: string[];
  /**
   * argv of the read-back command. Without it `read` fails with `E_SINK_READ_UNSUPPORTED` and the
   * preflight refuses the sink: a secret that cannot be read back can never count as published (the
   * config requires it; src/sinks/exec.ts).
   */
  read_command?: string[];
  /** argv of the preflight; without it the preflight checks that the commands are executable. */
  check_command?: string[];
  /**
   * A command still running after this long is sent SIGTERM with its process group, and SIGKILL
   * {@link KILL_GRACE_MS} later: a failed write.
   */
  timeout_seconds: number;
  /**
   * Names of variables passed from `env` to the commands, besides {@link BASE_ENV} (e.g. `GNUPGHOME`,
   * `PASSWORD_STORE_DIR`). Nothing else reaches them: the reconciler's own environment holds
   * `CLOUDFLARE_API_TOKEN`, Vault tokens and the webhook secret.
   */
  pass_env?: readonly string[];
  /** Where the passed variables are read from; the reconciler's own environment by default. */
  env?: NodeJS.ProcessEnv;
  /** Config name of the sink, for messages. */
  name?: string;
  logger?: Logger;
}

/** At most this much output is kept from a command; more is a failure. */
const MAX_OUTPUT = 1024 * 1024;

/**
 * Passed to every command whatever the config says: enough to find programs, a home directory and a
 * locale. Everything else must be named in `pass_env`.
 */
export const BASE_ENV: readonly string[] = ["PATH", "HOME", "LANG"];

/** After SIGTERM on a timeout, the process group gets this long to exit before SIGKILL. */
export const KILL_GRACE_MS = 2_000;

/**
 * After a command exits, its output pipes get this long to reach end-of-file before they are
 * destroyed. Whatever the command left in its process group is killed when it exits, so only a
 * process that left the group (`setsid`, a daemon) can still hold them.
 */
export const PIPE_DRAIN_MS = 1_000;

/** What the read command may print: the stored JSON (a `version` is used for check-and-set). */
const readOutputSchema = z.object({
  client_secret: z.string(),
  client_id: z.string().optional(),
  account_id: z.string().optional(),
  client_name: z.string().optional(),
  issued_at: z.string().optional(),
  version: z.string().nullable().optional(),
});

/**
 * Hands the record to a program of the user's choosing: any secret store with a CLI (`pass`,
 * `op`, `bw`, `aws secretsmanager`, ...) through a small script.
 *
 * Commands are spawned from an argv array, with no shell, as the leaders of their own process
 * groups, with an environment of {@link BASE_ENV} and the variables named in `pass_env` only. A
 * command is done when it exits: whatever it left running in its group is then killed, and pipes
 * still held open by a process that left the group are closed after {@link PIPE_DRAIN_MS}, so a
 * stray background process can never hold a run (and the state lock) past the timeout.
 * Protocol: each command gets one JSON object on stdin, and nothing secret in argv or the
 * environment (both are visible to other users through /proc):
 * - write: `{"account_id","client_id","client_name","client_secret","issued_at","key","action":"write"}`
 *   plus `"expected_version"` when the caller asked for check-and-set (a script may enforce it; the
 *   sink itself has no versions). Exit 0 means stored. Any other exit, or running past
 *   `timeout_seconds`, is a failed write (`E_SINK_EXEC_FAILED` / `E_SINK_EXEC_TIMEOUT`): the error
 *   names argv[0] and the exit code and carries a short excerpt of stderr from which every piece of
 *   the secret of 8 characters or more (`MIN_PIECE_LENGTH`) is scrubbed (raw, JSON-escaped,
 *   URL-encoded, hex, base64; src/sinks/redact.ts). Nothing a command prints is logged. stdout is
 *   ignored.
 * - read: `{"key","account_id","action":"read"}`. Print the stored JSON (the five fields, optionally
 *   `"version"`), or just the secret on the first line, or nothing when there is no record; exit 0.
 *   A bare secret (or JSON without `client_id`) says nothing of the client: the read-back after a
 *   write then compares the secret alone (a freshly minted secret belongs to one client only), and
 *   the secret's age is taken from the journal.
 * - check: `{"key","account_id","action":"check"}`. Exit 0 when a write of that key would succeed.
 *
 * The preflight (`checkWritable`, before anything is minted) runs `check_command` when there is one,
 * or else checks that the commands are executable; then it runs `read_command` for the exact key and
 * requires it to succeed with output it understands. It does not write: a probe record at that key
 * would overwrite the secret in use, and the protocol has no delete. So what is proven is that the
 * store answers reads of that key and, as far as the script's check can tell, accepts a write.
 *
 * Example: storing in `pass` (the script the tests run for real against gpg, and that ships as an
 * example: examples/sinks/pass-sink.sh). Configure it as command, read_command and
 * check_command alike, with `pass_env: [GNUPGHOME, PASSWORD_STORE_DIR]` where those are set; it
 * dispatches on `action`:
 * ```sh
 * #!/bin/sh
 * set -eu
 * umask 077
 * input=$(cat)
 * # one node run validates action/account_id/key ([A-Za-z0-9._@-], no "..") and prints
 * # `action=... account=... key=...` for eval; the secret stays in "$input" and in pipes only
 * vars=$(printf '%s' "$input" | node -e '...')    # (a failure here stops the script: set -e)
 * eval "$vars"
 * entry="cf-oauth-gitops/$account/$key"
 * store="${PASSWORD_STORE_DIR:-$HOME/.password-store}"
 * case "$action" in
 *   write) # first line the secret (the pass convention), then "client_id: ..." etc.
 *          body=$(printf '%s' "$input" | node -e '...')
 *          printf '%s\n' "$body" | pass insert --multiline --force "$entry" >/dev/null ;;
 *   read)  [ -f "$store/$entry.gpg" ] || exit 0        # nothing stored: print nothing
 *          pass show "$entry" | node -e '...lines back to JSON...' ;;
 *   check) [ -f "$store/.gpg-id" ] ;;                   # the store is initialised
 * esac
 * ```
 */
export class ExecSink implements SecretSink {
  readonly type = "exec";
  readonly #options: ExecSinkOptions;
  /** The commands' whole environment, built once: {@link BASE_ENV} plus `pass_env`. */
  readonly #childEnv: NodeJS.ProcessEnv;
  readonly #logger: Logger;

  constructor(options: ExecSinkOptions) {
    checkArgv("command", options.command);
    if (options.read_command) checkArgv("read_command", options.read_command);
    if (options.check_command) checkArgv("check_command", options.check_command);
    if (!(options.timeout_seconds > 0)) {
      throw new SinkError("E_SINK_CONFIG", "sink=exec: timeout_seconds must be greater than 0", {
        disposition: "terminal",
        context: { sink: "exec" },
      });
    }
    this.#options = options;
    this.#childEnv = childEnvironment(options.env ?? process.env, options.pass_env ?? []);
    this.#logger = (options.logger ?? silentLogger).child({
      component: "sink",
      sink: "exec",
      sink_name: options.name,
    });
  }

  /** Whether `read` can work: a `read_command` is configured. */
  get readable(): boolean {
    return this.#options.read_command !== undefined;
  }

  describe(address: SinkAddress): string {
    return describeExecRecord(this.#options, address);
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    const readCommand = this.#options.read_command;
    if (!readCommand) {
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        "sink=exec: no read_command is configured, so a written secret could never be read back",
        { disposition: "terminal", context: { sink: "exec", address: addressLabel(address) } },
      );
    }
    if (this.#options.check_command) {
      const result = await this.#run(this.#options.check_command, { ...addressOf(address), action: "check" });
      if (!result.ok) {
        throw this.#failure("E_SINK_NOT_WRITABLE", "check", this.#options.check_command, result, address);
      }
    } else {
      for (const argv of [this.#options.command, readCommand]) {
        const file = argv[0] as string;
        if (!(await isExecutable(file, this.#childEnv))) {
          throw new SinkError("E_SINK_NOT_WRITABLE", `sink=exec: ${file} is not an executable file`, {
            context: { sink: "exec", command: file, address: addressLabel(address) },
          });
        }
      }
    }
    // Read the exact key: a read command that fails, or prints what no read-back could accept, is
    // found now, before a secret is minted and left waiting in the journal.
    try {
      await this.read(address);
    } catch (error) {
      const cause = error as SinkError;
      throw new SinkError(
        "E_SINK_NOT_WRITABLE",
        `sink=exec: preflight read of ${addressLabel(address)} failed: ${cause.message.replace(/^sink=exec: /, "")}`,
        { cause, context: { sink: "exec", address: addressLabel(address), read_code: cause.code } },
      );
    }
  }

  async write(
    address: SinkAddress,
    record: SecretRecord,
    expectedVersion?: string | null,
  ): Promise<{ version: string | null }> {
    const plain = revealRecord(record);
    const input: Record<string, unknown> = { ...plain, key: address.key, action: "write" };
    if (expectedVersion !== undefined) input["expected_version"] = expectedVersion;
    const result = await this.#run(this.#options.command, input);
    if (!result.ok) {
      const code = result.timedOut ? "E_SINK_EXEC_TIMEOUT" : "E_SINK_EXEC_FAILED";
      throw this.#failure(code, "write", this.#options.command, result, address, [plain.client_secret]);
    }
    this.#logger.debug(
      { command: this.#options.command[0], address: addressLabel(address) },
      "secret written",
    );
    return { version: null };
  }

  async read(address: SinkAddress): Promise<StoredRecord | null> {
    const argv = this.#options.read_command;
    if (!argv) {
      throw new SinkError(
        "E_SINK_READ_UNSUPPORTED",
        "sink=exec: no read_command is configured, so records cannot be read back",
        { disposition: "terminal", context: { sink: "exec", address: addressLabel(address) } },
      );
    }
    const result = await this.#run(argv, { ...addressOf(address), action: "read" });
    if (!result.ok) {
      const code = result.timedOut ? "E_SINK_EXEC_TIMEOUT" : "E_SINK_READ";
      // stdout may hold the secret; only stderr is quoted, and even that is scrubbed of what stdout held.
      throw this.#failure(code, "read", argv, result, address, valuesIn(result.stdout));
    }
    return parseReadOutput(result.stdout, address, argv[0] as string);
  }

  #failure(
    code: ErrorCode,
    action: string,
    argv: readonly string[],
    result: RunResult,
    address: SinkAddress,
    secrets: readonly string[] = [],
  ): SinkError {
    const command = argv[0] as string;
    const how = result.timedOut
      ? `timed out after ${this.#options.timeout_seconds}s and was killed`
      : result.spawnError
        ? `could not be started (${result.spawnError})`
        : result.exitCode !== null
          ? `exited with code ${result.exitCode}`
          : `was killed by ${result.signal ?? "a signal"}`;
    const stderr = pieceScrubbedExcerpt(result.stderr, secrets);
    this.#logger.warn(
      { command, action, exit_code: result.exitCode, address: addressLabel(address) },
      "command failed",
    );
    return new SinkError(
      code,
      `sink=exec: ${action} command ${command} ${how}${stderr ? `: ${stderr}` : ""}`,
      {
        context: {
          sink: "exec",
          action,
          command,
          exit_code: result.exitCode,
          signal: result.signal,
          address: addressLabel(address),
        },
      },
    );
  }

  #run(argv: readonly string[], input: Record<string, unknown>): Promise<RunResult> {
    return runCommand(argv, `${JSON.stringify(input)}\n`, {
      timeoutMs: this.#options.timeout_seconds * 1000,
      env: this.#childEnv,
    });
  }
}

/** The outcome of one command run. `stdout` is raw (it may hold a secret); `stderr` is raw too. */
interface RunResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  spawnError: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs argv with `input` on stdin, without a shell (spawn with an argv array, as execFile does). The
 * child leads its own process group so that a timeout reaches whatever it started too (a script's
 * `sleep`, a hung `gpg`), not just the script; execFile cannot do that, as it drops `detached`.
 *
 * The run ends when the child exits ('exit'), not when its pipes close ('close'): a background
 * process holding stdout or stderr would otherwise keep the run, and the state lock, waiting for as
 * long as it lives. On exit the group is killed, which ends such processes and with them the pipes;
 * the output already written is still read to the end. A process that left the group may keep the
 * pipes open: they are destroyed after {@link PIPE_DRAIN_MS}.
 */
function runCommand(
  argv: readonly string[],
  input: string,
  options: { timeoutMs: number; env: NodeJS.ProcessEnv },
): Promise<RunResult> {
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise((resolve) => {
    let timedOut = false;
    let overflow = false;
    let spawnError: string | null = null;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const out = { stdout: "", stderr: "" };
    const child = spawn(file, args, {
      env: options.env,
      detached: true,
      shell: false,
      stdio: ["pipe", "pipe", "pipe"],
      windowsHide: true,
    });
    const pid = child.pid;
    const finish = (exitCode: number | null, signal: string | null): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      const ok = exitCode === 0 && !timedOut && !overflow && spawnError === null;
      resolve({
        ok,
        exitCode: spawnError === null ? exitCode : null,
        signal,
        timedOut,
        spawnError: spawnError ?? (overflow ? "output over 1 MiB" : null),
        stdout: out.stdout,
        stderr: out.stderr,
      });
    };
    const collect = (stream: "stdout" | "stderr") => (chunk: string) => {
      if (out[stream].length + chunk.length > MAX_OUTPUT) {
        overflow = true;
        signalGroup(pid, "SIGKILL");
        return;
      }
      out[stream] += chunk;
    };
    child.stdout.setEncoding("utf8").on("data", collect("stdout"));
    child.stderr.setEncoding("utf8").on("data", collect("stderr"));
    timers.push(
      setTimeout(() => {
        timedOut = true;
        signalGroup(pid, "SIGTERM");
        timers.push(setTimeout(() => signalGroup(pid, "SIGKILL"), KILL_GRACE_MS));
      }, options.timeoutMs),
    );
    child.on("error", (error: NodeJS.ErrnoException) => {
      spawnError = error.code ?? "spawn failed";
      // A child that never started emits no 'exit'.
      if (pid === undefined) finish(null, null);
    });
    child.on("exit", (exitCode, signal) => {
      for (const timer of timers.splice(0)) clearTimeout(timer);
      // What the command left behind in its group goes with it; that also closes the pipes it held.
      signalGroup(pid, "SIGKILL");
      timers.push(setTimeout(() => finish(exitCode, signal), PIPE_DRAIN_MS));
      void Promise.all([closed(child.stdout), closed(child.stderr)]).then(() => finish(exitCode, signal));
    });
    // A command that exits without reading its input makes the write fail with EPIPE: not our failure.
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
  });
}

/** Resolves once `stream` has closed (at end-of-file, or destroyed). */
function closed(stream: Readable): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once("close", () => resolve()));
}

/**
 * Signals the process group `pid` leads. Only the group: after the leader has exited its pid may be
 * reused, and a group id cannot be taken while the group has members.
 */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is empty: nothing left to stop
  }
}

/** {@link BASE_ENV} and the `pass_env` names, as far as they are set in `source`. */
function childEnvironment(source: NodeJS.ProcessEnv, passEnv: readonly string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...BASE_ENV, ...passEnv]) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function parseReadOutput(stdout: string, address: SinkAddress, command: string): StoredRecord | null {
  const text = stdout.trim();
  if (text === "") return null;
  if (text.startsWith("{")) {
    let parsed: z.infer<typeof readOutputSchema>;
    try {
      parsed = readOutputSchema.parse(JSON.parse(text));
    } catch {
      throw new SinkError(
        "E_SINK_CORRUPT",
        `sink=exec: read command ${command} printed JSON that is not a record`,
        {
          context: { sink: "exec", command, address: addressLabel(address) },
        },
      );
    }
    return storedRecord(
      {
        client_id: parsed.client_id ?? "",
        client_secret: parsed.client_secret,
        account_id: parsed.account_id ?? address.account_id,
        client_name: parsed.client_name ?? "",
        issued_at: parsed.issued_at ?? "",
      },
      parsed.version ?? null,
    );
  }
  // Just the secret: the first line, as `pass show` conventions have it.
  const secret = text.split("\n")[0] as string;
  return storedRecord(
    { client_id: "", client_secret: secret, account_id: address.account_id, client_name: "", issued_at: "" },
    null,
  );
}

/** Everything in a read command's stdout that might be the secret, to scrub from its stderr. */
function valuesIn(stdout: string): string[] {
  const values = stdout.split("\n").map((line) => line.trim());
  try {
    const parsed: unknown = JSON.parse(stdout);
    const secret = (parsed as { client_secret?: unknown } | null)?.client_secret;
    if (typeof secret === "string") values.push(secret);
  } catch {
    // not JSON
  }
  return values.filter((value) => value !== "");
}

function addressOf(address: SinkAddress): { key: string; account_id: string } {
  return { key: address.key, account_id: address.account_id };
}

function checkArgv(field: string, argv: readonly string[] | undefined): void {
  if (!Array.isArray(argv) || argv.length === 0 || typeof argv[0] !== "string" || argv[0] === "") {
    throw new SinkError("E_SINK_CONFIG", `sink=exec: ${field} must be a non-empty argv array`, {
      disposition: "terminal",
      context: { sink: "exec", field },
    });
  }
}

/** Resolves a command like execvp does (through PATH when it has no slash) and checks it can run. */
async function isExecutable(file: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const candidates = file.includes("/")
    ? [file]
    : (env["PATH"] ?? "").split(delimiter).map((dir) => join(dir === "" ? "." : dir, file));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return true;
    } catch {
      // try the next one
    }
  }
  return false;
}

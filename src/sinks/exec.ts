import { spawn } from "node:child_process";
import { access, constants, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { z } from "zod";
import { SinkError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { addressLabel, revealRecord, storedRecord } from "./record.js";
import { excerpt } from "./redact.js";
import type { SecretRecord, SecretSink, SinkAddress, StoredRecord } from "./types.js";

export interface ExecSinkOptions {
  /** argv of the write command; run directly (execFile), never through a shell. */
  command: string[];
  /** argv of the read-back command; without it `read` fails with `E_SINK_READ_UNSUPPORTED`. */
  read_command?: string[];
  /** argv of the preflight; without it the preflight checks that the commands are executable. */
  check_command?: string[];
  /** A command still running after this long is killed (with its process group): a failed write. */
  timeout_seconds: number;
  /** Environment of the commands; the reconciler's own by default. */
  env?: NodeJS.ProcessEnv;
  /** Config name of the sink, for messages. */
  name?: string;
  logger?: Logger;
}

/** At most this much output is kept from a command; more is a failure. */
const MAX_OUTPUT = 1024 * 1024;

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
 * Commands are spawned from an argv array, with no shell. Protocol: each command gets one JSON
 * object on stdin, and nothing secret in argv or the environment (both are visible to other users
 * through /proc):
 * - write: `{"account_id","client_id","client_name","client_secret","issued_at","key","action":"write"}`
 *   plus `"expected_version"` when the caller asked for check-and-set (a script may enforce it; the
 *   sink itself has no versions). Exit 0 means stored. Any other exit, or running past
 *   `timeout_seconds`, is a failed write (`E_SINK_EXEC_FAILED` / `E_SINK_EXEC_TIMEOUT`): the error
 *   names argv[0] and the exit code and carries a short excerpt of stderr with the secret scrubbed
 *   out (raw, JSON-escaped, base64). stdout is ignored.
 * - read: `{"key","account_id","action":"read"}`. Print the stored JSON (the five fields, optionally
 *   `"version"`), or just the secret on the first line, or nothing when there is no record; exit 0.
 * - check: `{"key","account_id","action":"check"}`. Exit 0 when a write would succeed.
 *
 * Example: storing in `pass` (the script the tests run for real against gpg, and that ships as an
 * example: examples/sinks/pass-sink.sh). Configure it as command, read_command and
 * check_command alike; it dispatches on `action`:
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
  readonly #env: NodeJS.ProcessEnv;
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
    this.#env = options.env ?? process.env;
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
    return `exec:${this.#options.command[0]} (${addressLabel(address)})`;
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    if (this.#options.check_command) {
      const result = await this.#run(this.#options.check_command, { ...addressOf(address), action: "check" });
      if (result.ok) return;
      throw this.#failure("E_SINK_NOT_WRITABLE", "check", this.#options.check_command, result, address);
    }
    for (const argv of [this.#options.command, this.#options.read_command]) {
      if (!argv) continue;
      const file = argv[0] as string;
      if (!(await isExecutable(file, this.#env))) {
        throw new SinkError("E_SINK_NOT_WRITABLE", `sink=exec: ${file} is not an executable file`, {
          context: { sink: "exec", command: file, address: addressLabel(address) },
        });
      }
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
    code: string,
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
    const stderr = excerpt(result.stderr, secrets);
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
      env: this.#env,
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
 * child leads its own process group so that a timeout kills whatever it started too (a script's
 * `sleep`, a hung `gpg`), not just the script; execFile cannot do that, as it drops `detached`.
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
    const out = { stdout: "", stderr: "" };
    const child = spawn(file, args, {
      env: options.env,
      detached: true,
      shell: false,
      stdio: ["pipe", "pipe", "pipe"],
      windowsHide: true,
    });
    const collect = (stream: "stdout" | "stderr") => (chunk: string) => {
      if (out[stream].length + chunk.length > MAX_OUTPUT) {
        overflow = true;
        killGroup(child.pid);
        return;
      }
      out[stream] += chunk;
    };
    child.stdout.setEncoding("utf8").on("data", collect("stdout"));
    child.stderr.setEncoding("utf8").on("data", collect("stderr"));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.on("error", (error: NodeJS.ErrnoException) => {
      spawnError = error.code ?? "spawn failed";
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      const ok = exitCode === 0 && !timedOut && !overflow && spawnError === null;
      resolve({
        ok,
        exitCode: spawnError === null ? exitCode : null,
        signal: signal ?? null,
        timedOut,
        spawnError: spawnError ?? (overflow ? "output over 1 MiB" : null),
        stdout: out.stdout,
        stderr: out.stderr,
      });
    });
    // A command that exits without reading its input makes the write fail with EPIPE: not our failure.
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
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

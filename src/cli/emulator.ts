import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startEmulator, type EmulatorOptions } from "../emulator/index.js";
import { ExitCode, type Command } from "./io.js";

/**
 * `cf-oauth-gitops emulator`: runs the local Cloudflare OAuth-clients API emulator until SIGTERM or
 * SIGINT. Prints exactly one line, `listening on http://HOST:PORT/client/v4`, so a script or a test
 * can start it on `--port 0` and read the URL to use as CLOUDFLARE_BASE_URL.
 */
export const EMULATOR_USAGE = `usage: cf-oauth-gitops emulator [options]

Runs a local emulator of Cloudflare's OAuth-clients API (control endpoints under /__emulator/).

options:
  --host HOST                      listen address (default 127.0.0.1)
  --port N                         listen port (default 8787; 0 = any free port)
  --token TOKEN                    accepted write token (repeatable; none = accept any token)
  --read-only-token TOKEN          token that may only read (repeatable)
  --rate-limit QUOTA/SECONDS       requests per window per credential (default 1200/300)
  --state FILE                     persist clients in FILE across restarts
  --seed N                         seed for every random decision (ids, secrets, faults)
  --latency-ms N                   added latency per API request
  --fault-5xx RATE                 share of API requests answered 500 (0..1)
  --fault-reset RATE               share of API requests whose connection is reset (0..1)
  --fault-drop-after-commit RATE   share of mutations applied, then dropped before the response (0..1)
  --scopes FILE                    JSON scope catalogue replacing config/scopes.json
  --help                           show this help`;

const OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  token: { type: "string", multiple: true },
  "read-only-token": { type: "string", multiple: true },
  "rate-limit": { type: "string" },
  state: { type: "string" },
  seed: { type: "string" },
  "latency-ms": { type: "string" },
  "fault-5xx": { type: "string" },
  "fault-reset": { type: "string" },
  "fault-drop-after-commit": { type: "string" },
  scopes: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** A bad flag: reported as one line with the usage hint, exit 1. */
class FlagError extends Error {}

export const emulatorCommand: Command = async (ctx) => {
  let options: EmulatorOptions | "help";
  try {
    options = parseFlags(ctx.args, ctx.cwd);
  } catch (error) {
    if (!(error instanceof FlagError) && !(error instanceof TypeError)) throw error;
    ctx.stderr.write(
      `cf-oauth-gitops emulator: ${error.message}\nRun 'cf-oauth-gitops emulator --help' for the options.\n`,
    );
    return ExitCode.error;
  }
  if (options === "help") {
    ctx.stdout.write(`${EMULATOR_USAGE}\n`);
    return ExitCode.ok;
  }
  const handle = await startEmulator(options);
  ctx.stdout.write(`listening on ${handle.url}\n`);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) return resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await handle.stop();
  return ExitCode.ok;
};

/** argv -> options; throws FlagError (or parseArgs' TypeError) with a message naming the flag. */
export function parseFlags(args: string[], cwd: string): EmulatorOptions | "help" {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help) return "help";
  const options: EmulatorOptions = {};
  if (values.host !== undefined) options.host = nonEmpty("--host", values.host);
  if (values.port !== undefined) options.port = integer("--port", values.port, 0, 65535);
  if (values.token) options.tokens = values.token.map((t) => nonEmpty("--token", t));
  if (values["read-only-token"]) {
    options.readOnlyTokens = values["read-only-token"].map((t) => nonEmpty("--read-only-token", t));
  }
  if (values["rate-limit"] !== undefined) options.rateLimit = rateLimit(values["rate-limit"]);
  if (values.state !== undefined) options.statePath = resolvePath(cwd, nonEmpty("--state", values.state));
  if (values.seed !== undefined) options.seed = integer("--seed", values.seed, 0, 2 ** 32 - 1);
  if (values["latency-ms"] !== undefined) {
    options.latencyMs = integer("--latency-ms", values["latency-ms"], 0, 600_000);
  }
  if (values["fault-5xx"] !== undefined) options.fault5xxRate = rate("--fault-5xx", values["fault-5xx"]);
  if (values["fault-reset"] !== undefined)
    options.faultResetRate = rate("--fault-reset", values["fault-reset"]);
  if (values["fault-drop-after-commit"] !== undefined) {
    options.faultDropAfterCommitRate = rate("--fault-drop-after-commit", values["fault-drop-after-commit"]);
  }
  if (values.scopes !== undefined) options.scopesFile = resolvePath(cwd, nonEmpty("--scopes", values.scopes));
  return options;
}

function nonEmpty(flag: string, value: string): string {
  if (value.trim() === "") throw new FlagError(`${flag}: must not be empty`);
  return value;
}

function integer(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) throw new FlagError(`${flag}: '${value}' is not a whole number`);
  const n = Number(value);
  if (n < min || n > max) throw new FlagError(`${flag}: ${n} is not between ${min} and ${max}`);
  return n;
}

function rate(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new FlagError(`${flag}: '${value}' is not a rate between 0 and 1`);
  }
  return n;
}

function rateLimit(value: string): { quota: number; windowSeconds: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  const quota = Number(match?.[1]);
  const windowSeconds = Number(match?.[2]);
  if (!match || quota < 1 || windowSeconds < 1) {
    throw new FlagError(`--rate-limit: '${value}' is not QUOTA/SECONDS (e.g. 1200/300)`);
  }
  return { quota, windowSeconds };
}

function resolvePath(cwd: string, path: string): string {
  return resolve(cwd, path);
}

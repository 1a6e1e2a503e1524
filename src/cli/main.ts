#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { main } from "./dispatch.js";
import { type Clock, systemClock } from "./io.js";

/**
 * The program. Only this file reads `process`; verbs get everything through their context, and the
 * verb table lives in dispatch.ts so that verbs (the demo) can call other verbs without importing
 * this module while its top-level await is still running.
 *
 * The program always runs on the wall clock ({@link systemClock}); nothing in its environment can
 * move it. Tests that need a real process "days later" start test/helpers/cli-with-clock.ts, which
 * calls {@link runAsProcess} with a clock of its own.
 */

/** True when this file is the program (also through npm's bin symlink), false when imported by tests. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/**
 * Runs the CLI as this process: its arguments, streams and working directory, SIGTERM/SIGINT/SIGHUP as the
 * abort signal, and the verb's answer as the exit code. `clock` and `env` are the caller's choice
 * only so that the test entry point can inject a clock (and keep its own variable to itself).
 */
export async function runAsProcess(clock: Clock, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  // SIGHUP (the terminal or the ssh session that started the daemon went away, or an operator who
  // expects a reload) ends the process like SIGTERM: the run in flight finishes the changes it
  // started. Node's default for SIGHUP is to die at once, which could cut a sink write after a mint.
  // The daemon reads its config once at start, so there is nothing to reload: restart it instead.
  for (const name of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.once(name, stop);
  const code = await main(process.argv.slice(2), {
    env,
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    signal: controller.signal,
    clock,
    ownsProcess: true,
  });
  process.exitCode = code;
  // The verb has returned: nothing it left behind (a request still on the wire after `run`'s shutdown
  // deadline) may keep the process alive. Unref'd, so a clean exit is not delayed.
  setTimeout(() => process.exit(code), 1_000).unref();
}

if (isEntryPoint()) await runAsProcess(systemClock);

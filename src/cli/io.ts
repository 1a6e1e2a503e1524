import type { Writable } from "node:stream";

/**
 * What a CLI verb gets from the process: its arguments after the verb, the environment, and the two
 * output streams. Passing these in (instead of reading `process` inside the verbs) lets tests run a
 * verb in-process and lets the daemon reuse them.
 */
export interface CliContext {
  args: string[];
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
  cwd: string;
  /** Fires on SIGTERM/SIGINT/SIGHUP; long-running verbs (emulator, run) stop cleanly when it aborts. */
  signal: AbortSignal;
  /**
   * The clock every verb reads (rotation due-ness, grace, journal times, metrics). The program passes
   * {@link systemClock}; only tests pass another. It is never taken from the environment: a stray
   * variable in a daemon's environment must not make it rotate everything and delete old secrets early.
   */
  clock: Clock;
  /**
   * Runs another verb with this context (argv -> exit code), as the program would. Set by the
   * dispatcher (dispatch.ts) so a verb that drives others (`demo`) needs no import of the dispatcher,
   * which loads every verb: that import would make the two modules depend on each other.
   */
  dispatch?: (argv: string[], ctx: Omit<CliContext, "args">) => Promise<number>;
  /**
   * True when the CLI is the program (src/cli/main.ts), so it may tune V8 for the whole process
   * (src/cli/frame.ts `quickHttpParser`); absent when a test or a bench calls a verb in its own process.
   */
  ownsProcess?: boolean;
}

/** The current time; injected so tests can move it (see {@link CliContext.clock}). */
export type Clock = () => Date;

/** The wall clock: what the program runs with, always. */
export const systemClock: Clock = () => new Date();

/** Exit codes shared by every verb (README, "CLI and exit codes"). */
export const ExitCode = {
  ok: 0,
  error: 1,
  changesPending: 2,
  unsafe: 3,
} as const;

/** A verb: resolves to the process exit code. */
export type Command = (ctx: CliContext) => Promise<number>;

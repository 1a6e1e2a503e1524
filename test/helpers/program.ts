import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TEST_CLOCK_OFFSET_ENV } from "./clock.js";

/**
 * The one way tests start the CLI as a real process. Children run with a temporary directory as
 * their working directory, where a loader named by bare package name would be resolved from that
 * directory (and work only if some `node_modules` happened to sit above it): the loader is resolved
 * here, once, to an absolute URL inside this checkout, and the program is named by absolute path.
 * test/ship/fresh-machine.test.ts fails if a test names the loader by bare name again.
 */

/** The repository root (with a trailing slash). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** tsx's ESM loader in this checkout's node_modules, as an absolute file URL for `node --import`. */
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/** The production entry point, built and from source. */
export const DIST_MAIN = join(ROOT, "dist", "cli", "main.js");
export const SOURCE_MAIN = join(ROOT, "src", "cli", "main.ts");

/** The test-only entry point: the same CLI on a clock moved ahead (see test/helpers/cli-with-clock.ts). */
export const CLOCK_MAIN = join(ROOT, "test", "helpers", "cli-with-clock.ts");

/** What to spawn: `spawn(process.execPath, [...p.args, verb, ...], { env: { ...env, ...p.env } })`. */
export interface Program {
  args: string[];
  env: Record<string, string>;
}

export interface ProgramOptions {
  /**
   * Moves the child's clock ahead: whole seconds, or a duration such as `91d` or `-10m`. Given, the
   * child is the test entry point (the production program has no way to move its clock); absent,
   * it is the production program.
   */
  clockOffset?: number | string | undefined;
}

/**
 * The CLI as a child process. Without a clock offset: the production program, the built
 * `dist/cli/main.js` when it is newer than every source file (`npm test` builds first), else
 * `src/cli/main.ts` through tsx. With one: test/helpers/cli-with-clock.ts through tsx, its offset
 * passed in {@link TEST_CLOCK_OFFSET_ENV}.
 */
export function program(options: ProgramOptions = {}): Program {
  if (options.clockOffset !== undefined) {
    return {
      args: ["--import", TSX_LOADER, CLOCK_MAIN],
      env: { [TEST_CLOCK_OFFSET_ENV]: String(options.clockOffset) },
    };
  }
  return { args: distIsFresh() ? [DIST_MAIN] : sourceProgramArgs(), env: {} };
}

/** `process.execPath` followed by these runs the production program (see {@link program}). */
export function programArgs(): string[] {
  return program().args;
}

/** `process.execPath` followed by these runs the production program from source, whatever `dist/` holds. */
export function sourceProgramArgs(): string[] {
  return ["--import", TSX_LOADER, SOURCE_MAIN];
}

function distIsFresh(): boolean {
  return existsSync(DIST_MAIN) && statSync(DIST_MAIN).mtimeMs >= newestMtime(join(ROOT, "src"));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

// Records every module a process loads, one URL per line, in the file named by LOAD_RECORDER_FILE.
// `node --import <this file's URL> ...` registers this same file as a module-loading hook; the hook's
// `load` sees each module's final URL (after tsx's resolution, when tsx is loaded too) and appends it
// with a synchronous write, so the list is complete when the process exits. Used by
// test/cli/fast-start.test.ts to see which code a verb really loads.
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

const file = process.env.LOAD_RECORDER_FILE;

if (isMainThread && file) register(import.meta.url);

export async function load(url, context, nextLoad) {
  if (file) appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}

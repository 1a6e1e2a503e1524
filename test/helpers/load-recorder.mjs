// Records every module a process loads, one URL per line, in the file named by LOAD_RECORDER_FILE.
// `node --import <this file's URL> ...` registers this same file as a module-loading hook; the hook's
// `load` sees each ES module's final URL (after tsx's resolution, when tsx is loaded too) and appends
// it with a synchronous write. CommonJS modules that CommonJS code requires (undici's files, which
// src/undici.ts loads with `createRequire`) never pass through that hook: they are all in Node's
// require cache, which is appended when the process exits, so the list is complete by then. Used by
// test/cli/fast-start.test.ts to see which code a verb really loads.
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";
import { isMainThread } from "node:worker_threads";

const file = process.env.LOAD_RECORDER_FILE;

if (isMainThread && file) {
  register(import.meta.url);
  const { cache } = createRequire(import.meta.url);
  process.on("exit", () => {
    const required = Object.keys(cache).map((path) => pathToFileURL(path).href);
    if (required.length > 0) appendFileSync(file, `${required.join("\n")}\n`);
  });
}

export async function load(url, context, nextLoad) {
  if (file) appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}

import { createRequire } from "node:module";
import type * as Yaml from "yaml";

let lib: typeof Yaml | undefined;

/**
 * The `yaml` package, loaded on first use. Config and desired-state files in the plain subset are
 * read by fast-yaml.ts, and a command whose files all are (`validate`, `plan` of block-style files)
 * then never needs `yaml`: some 70 CommonJS modules, about 60 ms of its start on this machine
 * (docs/BENCHMARKS.md, "cli-start"). The functions that parse with it or walk its documents call
 * this; loading it is synchronous (`require`, the same file an `import` of `yaml` gives in Node), so
 * they stay synchronous. src/cli/export.ts, which always writes YAML, imports the package itself.
 */
export function yamlLib(): typeof Yaml {
  lib ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return lib;
}

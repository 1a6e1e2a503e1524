// Lint rules: typescript-eslint's recommended set on the TypeScript sources, nothing stylistic
// (formatting is Prettier's job, checked by `npm run lint`), the two type-aware promise rules, the
// import-cycle rule and the layer rules below.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import noImportCycle from "./eslint/rules/no-import-cycle.js";

/*
 * test/ship/layers.test.ts shows each rule below firing on a bad sample and quiet on a good one.
 *
 * Promises (src, test, bench, scripts; type-aware, so `npm run lint` builds the TypeScript program of
 * tsconfig.json once, which is most of its time):
 * - `@typescript-eslint/no-floating-promises`: a promise is awaited, returned, or marked `void` on
 *   purpose with its rejection handled (`.catch` that logs); a dropped one loses its error, and in the
 *   daemon an unhandled rejection ends the process.
 * - `@typescript-eslint/no-misused-promises`: no async function where a callback's result is ignored
 *   (`setTimeout`, an event listener: its rejection would go nowhere) and no promise as a condition
 *   (always truthy).
 *
 * No import cycle among the modules of src/ (`local/no-import-cycle`, eslint/rules/no-import-cycle.js,
 * which says what counts and why `import type` does): a cycle makes its modules one tangle and, at run
 * time, hands one side a binding that is not initialised yet.
 *
 * Layers, by import:
 * - src/api is the API's vocabulary that every layer shares, so it depends on none of them.
 * - src/core is pure (plain data in, plain data out): no module that does I/O, logs or reads the
 *   clock, and nothing from the layers that do (engine, cloudflare, sinks, state, server, cli).
 * - src/emulator is the tests' oracle for Cloudflare: it may share the vocabulary in src/api but never
 *   the HTTP client's code (src/cloudflare) or the reconciler's (src/core, src/engine), or a wrong
 *   assumption would be wrong on both sides and no test would notice.
 * `import type` counts too: a type is an assumption as much as a value is.
 */

/** Node built-ins that reach outside the process or read the clock (node:crypto hashing is pure). */
const IO_BUILTINS = [
  "child_process",
  "cluster",
  "dgram",
  "dns",
  "fs",
  "http",
  "http2",
  "https",
  "inspector",
  "net",
  "os",
  "process",
  "readline",
  "repl",
  "timers",
  "tls",
  "worker_threads",
];
/** Packages that do I/O or log: the HTTP client, the logger, file watching, cron, metrics, the SDK. */
const IO_PACKAGES = ["undici", "pino", "pino-pretty", "chokidar", "node-cron", "prom-client", "cloudflare"];

/** A `no-restricted-imports` pattern for sibling directories of src/ reached with `../`. */
function srcDirs(names, message) {
  return { regex: `^(\\.\\./)+(${names.join("|")})(/|$)`, message };
}

const PURE_MESSAGE = "pure module: no I/O, no logger, no clock (take the data as an argument instead)";
const pureImports = [
  { regex: `^(node:)?(${IO_BUILTINS.join("|")})(/.*)?$`, message: PURE_MESSAGE },
  { regex: `^(${IO_PACKAGES.join("|")})(/.*)?$`, message: PURE_MESSAGE },
  { regex: "^(\\.\\./)+(log|proxy|undici)\\.js$", message: PURE_MESSAGE },
];
const noDynamicImport = {
  selector: "ImportExpression",
  message: "pure module: no dynamic import (it is how I/O would slip past the import rules)",
};

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", ".cf-oauth-gitops/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        URL: "readonly",
        AbortController: "readonly",
        AbortSignal: "readonly",
        fetch: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    // Type-aware rules need the program: the project service finds tsconfig.json (which includes src,
    // test, bench and scripts) the way an editor does. A file outside that project fails to parse here.
    files: ["{src,test,bench,scripts}/**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
  {
    files: ["src/**/*.ts"],
    plugins: { local: { rules: { "no-import-cycle": noImportCycle } } },
    rules: { "local/no-import-cycle": "error" },
  },
  {
    files: ["src/api/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...pureImports,
            {
              regex: "^\\.\\./",
              message: "src/api is the vocabulary every layer shares: it imports none of them",
            },
          ],
        },
      ],
      "no-restricted-syntax": ["error", noDynamicImport],
    },
  },
  {
    files: ["src/core/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...pureImports,
            srcDirs(
              ["engine", "cloudflare", "sinks", "state", "server", "cli", "emulator"],
              "src/core is pure: it takes plain data from the layers that do I/O and never imports them",
            ),
          ],
        },
      ],
      "no-restricted-syntax": ["error", noDynamicImport],
    },
  },
  {
    files: ["src/emulator/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            srcDirs(
              ["cloudflare", "core", "engine"],
              "the emulator is the tests' oracle: take the API's vocabulary from src/api, never the reconciler's code",
            ),
          ],
        },
      ],
    },
  },
);

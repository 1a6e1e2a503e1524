import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ESLint, type Linter, type Rule } from "eslint";
import tseslint from "typescript-eslint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The rules of eslint.config.js, run through ESLint's Node API on small samples: the layer rules on
 * in-memory samples placed at paths inside src/ (each forbidden import is reported with the rule's
 * message, and the imports a layer is allowed stay quiet), the import-cycle rule on a small graph of
 * files on disk, and the type-aware promise rules on test/fixtures/lint/promises.ts with its fixes undone.
 * `npm run lint` applies the same rules to the real files.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const LAYER_RULES = new Set(["no-restricted-imports", "no-restricted-syntax"]);
const TYPE_AWARE_RULES = [
  "@typescript-eslint/no-floating-promises",
  "@typescript-eslint/no-misused-promises",
];

/**
 * The repository's config, but parsing without type information: the layer samples sit at paths that
 * are no files of the TypeScript project (src/core/x.ts), which the project service refuses, so the
 * two rules that need types are left out here and tested below with the config exactly as it is.
 */
let eslint: ESLint;
/** The repository's config exactly as `npm run lint` uses it. */
let typed: ESLint;
beforeAll(() => {
  eslint = new ESLint({
    cwd: ROOT,
    overrideConfig: {
      files: ["**/*.ts"],
      languageOptions: { parserOptions: { projectService: false } },
      rules: Object.fromEntries(TYPE_AWARE_RULES.map((rule) => [rule, "off"])),
    },
  });
  typed = new ESLint({ cwd: ROOT });
});

/** The layer-rule messages ESLint reports for `code` placed at `file` (relative to the repository). */
async function layerMessages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  if (!result) throw new Error(`no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  expect(fatal, `${file} must parse`).toEqual([]);
  return result.messages.filter((m) => m.ruleId !== null && LAYER_RULES.has(m.ruleId)).map((m) => m.message);
}

const FORBIDDEN_IN_CORE: Array<[string, string]> = [
  ["node:fs", 'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n'],
  ["node:fs/promises", 'import { readFile } from "node:fs/promises";\nexport const f = readFile;\n'],
  ["child_process", 'import { spawn } from "child_process";\nexport const f = spawn;\n'],
  ["node:net", 'import { connect } from "node:net";\nexport const f = connect;\n'],
  ["node:http", 'import { request } from "node:http";\nexport const f = request;\n'],
  [
    "node:timers/promises",
    'import { setTimeout } from "node:timers/promises";\nexport const f = setTimeout;\n',
  ],
  ["undici", 'import { request } from "undici";\nexport const f = request;\n'],
  ["pino", 'import pino from "pino";\nexport const f = pino;\n'],
  ["src/undici.ts", 'import { request } from "../undici.js";\nexport const f = request;\n'],
  ["src/log.ts", 'import { rootLogger } from "../log.js";\nexport const f = rootLogger;\n'],
  ["src/engine", 'import { applyPlan } from "../engine/apply.js";\nexport const f = applyPlan;\n'],
  [
    "src/cloudflare (type only)",
    'import type { OAuthClientsReader } from "../cloudflare/client.js";\nexport type R = OAuthClientsReader;\n',
  ],
  ["src/sinks", 'import { createSink } from "../sinks/index.js";\nexport const f = createSink;\n'],
  ["src/state (re-export)", 'export { readJournal } from "../state/journal.js";\n'],
  ["src/server", 'import { startServer } from "../server/http.js";\nexport const f = startServer;\n'],
  ["src/cli", 'import { main } from "../cli/main.js";\nexport const f = main;\n'],
];

describe("src/core imports nothing with I/O and no layer that does I/O", () => {
  it.each(FORBIDDEN_IN_CORE)("%s is reported", async (_what, code) => {
    const messages = await layerMessages("src/core/x.ts", code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/pure module|src\/core is pure/);
  });

  it("a dynamic import is reported", async () => {
    const messages = await layerMessages(
      "src/core/x.ts",
      'export async function f() {\n  return import("node:fs");\n}\n',
    );
    expect(messages).toEqual([expect.stringContaining("no dynamic import")]);
  });

  it("the vocabulary, the errors, a sibling, zod and hashing are allowed", async () => {
    const code = [
      'import { createHash } from "node:crypto";',
      'import { z } from "zod";',
      'import { WRITABLE_FIELDS, type LiveClient } from "../api/oauth-clients.js";',
      'import { GitOpsError } from "../errors.js";',
      'import { compareStrings } from "./sort.js";',
      "export const all = [createHash, z, WRITABLE_FIELDS, GitOpsError, compareStrings];",
      "export type L = LiveClient;",
      "",
    ].join("\n");
    expect(await layerMessages("src/core/x.ts", code)).toEqual([]);
  });
});

describe("src/emulator imports nothing from the HTTP client or the reconciler", () => {
  it.each([
    ["src/cloudflare", 'import { ROUTES } from "../cloudflare/client.js";\nexport const r = ROUTES;\n'],
    [
      "src/cloudflare (type only)",
      'import type { LiveClient } from "../cloudflare/client.js";\nexport type L = LiveClient;\n',
    ],
    [
      "src/core",
      'import { effectiveScopes } from "../core/compare.js";\nexport const f = effectiveScopes;\n',
    ],
    ["src/engine", 'import { applyPlan } from "../engine/apply.js";\nexport const f = applyPlan;\n'],
  ])("%s is reported", async (_what, code) => {
    const messages = await layerMessages("src/emulator/x.ts", code);
    expect(messages).toEqual([expect.stringContaining("the emulator is the tests' oracle")]);
  });

  it("the vocabulary, node:http and its own modules are allowed", async () => {
    const code = [
      'import { createServer } from "node:http";',
      'import { WRITABLE_FIELDS } from "../api/oauth-clients.js";',
      'import { fail } from "./failure.js";',
      "export const all = [createServer, WRITABLE_FIELDS, fail];",
      "",
    ].join("\n");
    expect(await layerMessages("src/emulator/x.ts", code)).toEqual([]);
  });
});

describe("src/api depends on no layer", () => {
  it("an import from src/ and an I/O module are reported, zod is allowed", async () => {
    expect(
      await layerMessages(
        "src/api/x.ts",
        'import { GitOpsError } from "../errors.js";\nexport const e = GitOpsError;\n',
      ),
    ).toEqual([expect.stringContaining("src/api is the vocabulary")]);
    expect(
      await layerMessages(
        "src/api/x.ts",
        'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n',
      ),
    ).toEqual([expect.stringContaining("pure module")]);
    expect(
      await layerMessages("src/api/x.ts", 'import { z } from "zod";\nexport const s = z.string();\n'),
    ).toEqual([]);
  });
});

describe("the rules are scoped to their layers", () => {
  it("the engine may import the HTTP client and node:fs", async () => {
    const code = [
      'import { readFile } from "node:fs/promises";',
      'import type { OAuthClientsReader } from "../cloudflare/client.js";',
      "export const f = readFile;",
      "export type R = OAuthClientsReader;",
      "",
    ].join("\n");
    expect(await layerMessages("src/engine/x.ts", code)).toEqual([]);
  });
});

describe("no import cycle among the modules of src/ (local/no-import-cycle)", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  /** Writes `files` (paths relative to a fresh temporary directory) and lints them with the rule alone. */
  async function cycleMessages(files: Record<string, string>): Promise<Record<string, string[]>> {
    const dir = await mkdtemp(join(tmpdir(), "cf-oauth-gitops-cycle-"));
    dirs.push(dir);
    for (const [file, code] of Object.entries(files)) {
      await mkdir(dirname(join(dir, file)), { recursive: true });
      await writeFile(join(dir, file), code);
    }
    const rulePath = join(ROOT, "eslint/rules/no-import-cycle.js");
    const rule = ((await import(pathToFileURL(rulePath).href)) as { default: Rule.RuleModule }).default;
    const config: Linter.Config = {
      files: ["**/*.ts"],
      languageOptions: { parser: tseslint.parser as Linter.Parser },
      plugins: { local: { rules: { "no-import-cycle": rule } } },
      rules: { "local/no-import-cycle": "error" },
    };
    const linter = new ESLint({ cwd: dir, overrideConfigFile: true, overrideConfig: config });
    const results = await linter.lintFiles(["src/**/*.ts"]);
    const out: Record<string, string[]> = {};
    for (const result of results) {
      expect(result.messages.filter((m) => m.fatal)).toEqual([]);
      out[result.filePath.slice(dir.length + 1)] = result.messages.map((m) => m.message);
    }
    return out;
  }

  const A = 'import { b } from "./b.js";\nexport const a = () => b;\n';
  const B = 'export { c as b } from "./lib/c.js";\n';
  const C_CLOSED = 'import type { A } from "../a.js";\nexport const c = 1;\nexport type C = A;\n';
  const C_OPEN = "export const c = 1;\n";

  it("a cycle of three files (import, re-export, import type) is reported in each, with its path", async () => {
    const messages = await cycleMessages({
      "src/a.ts": A,
      "src/b.ts": B,
      "src/lib/c.ts": C_CLOSED,
      "src/lib/d.ts": 'import { c } from "./c.js";\nexport const d = c;\n',
    });
    expect(messages).toEqual({
      "src/a.ts": [expect.stringContaining("import cycle: src/a.ts -> src/b.ts -> src/lib/c.ts -> src/a.ts")],
      "src/b.ts": [expect.stringContaining("import cycle: src/b.ts -> src/lib/c.ts -> src/a.ts -> src/b.ts")],
      "src/lib/c.ts": [
        expect.stringContaining("import cycle: src/lib/c.ts -> src/a.ts -> src/b.ts -> src/lib/c.ts"),
      ],
      "src/lib/d.ts": [],
    });
  });

  it("the same files without the closing import are clean", async () => {
    const messages = await cycleMessages({ "src/a.ts": A, "src/b.ts": B, "src/lib/c.ts": C_OPEN });
    expect(messages).toEqual({ "src/a.ts": [], "src/b.ts": [], "src/lib/c.ts": [] });
  });

  it("a dynamic import closes a cycle too", async () => {
    const messages = await cycleMessages({
      "src/a.ts": A,
      "src/b.ts": B,
      "src/lib/c.ts": 'export const c = 1;\nexport const load = () => import("../a.js");\n',
    });
    expect(messages["src/lib/c.ts"]).toEqual([
      expect.stringContaining("import cycle: src/lib/c.ts -> src/a.ts -> src/b.ts -> src/lib/c.ts"),
    ]);
  });

  it("is on for src/ in eslint.config.js and follows the real modules", async () => {
    const config = (await eslint.calculateConfigForFile(join(ROOT, "src/engine/x.ts"))) as Linter.Config;
    expect(config.rules?.["local/no-import-cycle"]).toEqual([2]);
    // src/core/plan.ts imports ./sort.js: sort.ts importing plan.ts back closes a cycle.
    const [result] = await eslint.lintText(
      'import { computePlan } from "./plan.js";\nexport const p = computePlan;\n',
      {
        filePath: join(ROOT, "src/core/sort.ts"),
      },
    );
    expect(result?.messages.map((m) => `${m.ruleId}: ${m.message}`)).toEqual([
      expect.stringContaining(
        "local/no-import-cycle: import cycle: src/core/sort.ts -> src/core/plan.ts -> src/core/sort.ts",
      ),
    ]);
  });
});

describe("promises are awaited or handled (type-aware rules)", () => {
  const FIXTURE = join(ROOT, "test/fixtures/lint/promises.ts");

  /**
   * The type-aware rules' reports on the fixture, as it is or with `from` replaced by `to` (in memory, at
   * the fixture's path: the project service takes only files of the TypeScript project).
   */
  async function promiseMessages(from?: string, to?: string): Promise<string[]> {
    const original = await readFile(FIXTURE, "utf8");
    let results;
    if (from === undefined || to === undefined) {
      results = await typed.lintFiles([FIXTURE]);
    } else {
      expect(original).toContain(from);
      results = await typed.lintText(original.replace(from, to), { filePath: FIXTURE });
    }
    const [result] = results;
    if (!result) throw new Error("no lint result for the fixture");
    expect(result.messages.filter((m) => m.fatal)).toEqual([]);
    return result.messages
      .filter((m) => m.ruleId !== null && TYPE_AWARE_RULES.includes(m.ruleId))
      .map((m) => `${m.ruleId}: ${m.message}`);
  }

  // The first lint builds the whole TypeScript program (as `npm run lint` does): give it time.
  it(
    "the fixture, which awaits, voids with a .catch and tests the settled value, is clean",
    { timeout: 180_000 },
    async () => {
      expect(await promiseMessages()).toEqual([]);
    },
  );

  it("a promise neither awaited nor handled is reported", { timeout: 180_000 }, async () => {
    expect(await promiseMessages("  await save();", "  save();")).toEqual([
      expect.stringContaining("@typescript-eslint/no-floating-promises: Promises must be awaited"),
    ]);
  });

  it(
    "a .then without a rejection handler, neither awaited nor voided, is reported",
    { timeout: 180_000 },
    async () => {
      expect(
        await promiseMessages(
          "  void save().catch((err: unknown) => log(`save failed: ${String(err)}`));",
          '  save().then(() => log("saved"));',
        ),
      ).toEqual([expect.stringContaining("@typescript-eslint/no-floating-promises")]);
    },
  );

  it("an async callback where a void one is expected is reported", { timeout: 180_000 }, async () => {
    expect(
      await promiseMessages(
        "  setTimeout(() => {\n    save().catch((err: unknown) => log(`save failed: ${String(err)}`));",
        "  setTimeout(async () => {\n    await save();",
      ),
    ).toEqual([
      expect.stringContaining(
        "@typescript-eslint/no-misused-promises: Promise returned in function argument",
      ),
    ]);
  });

  it("a promise tested as a condition is reported", { timeout: 180_000 }, async () => {
    expect(await promiseMessages("  if (await ready)", "  if (ready)")).toEqual([
      expect.stringContaining(
        "@typescript-eslint/no-misused-promises: Expected non-Promise value in a boolean conditional",
      ),
    ]);
  });
});

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";

/**
 * The layer rules of eslint.config.js, run through ESLint's Node API on small in-memory samples placed
 * at paths inside src/: each forbidden import is reported with the rule's message, and the imports a
 * layer is allowed stay quiet. `npm run lint` applies the same rules to the real files.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const LAYER_RULES = new Set(["no-restricted-imports", "no-restricted-syntax"]);

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT });
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

/**
 * `local/no-import-cycle`: no module of src/ may reach itself again through its relative imports.
 *
 * Why: a cycle makes the modules in it one unit that can only be read, tested and changed together, and
 * at run time an ES module cycle hands one side a binding that is not initialised yet (a
 * `ReferenceError` while the modules load, which appears or not depending on which module an entry
 * point happens to load first). The layer rules in eslint.config.js keep the layers apart; this rule
 * keeps the modules inside a layer (and across layers) a graph with a direction.
 *
 * What counts as an edge: every relative module specifier, that is `import`, `import type`, a side-effect
 * `import "./x.js"`, `export ... from`, `export type ... from`, a dynamic `import("./x.js")` with a
 * literal, `typeof import("./x.js")` and `import x = require("./x.js")`. A `.js` specifier names the
 * `.ts` file beside it (the project compiles with NodeNext, so sources import `./x.js`).
 *
 * `import type` counts, as it does for the layer rules: a type-only cycle is harmless at run time (the
 * import is erased), but the two modules are still one tangle — neither can be understood, moved or
 * split without the other — and a type import is one keystroke from a value import that would make the
 * cycle real. src/ has no cycle of either kind, so the stricter rule costs nothing today; it also keeps
 * the rule honest, since `ts.preProcessFile` (which reads the files the current one reaches) does not
 * tell type imports from value imports.
 *
 * How: the file being linted gives its imports from the ESLint AST (so an editor's unsaved text is what
 * is checked); the files it reaches are read from disk and scanned with TypeScript's `ts.preProcessFile`
 * (a scanner, not a parser: fast). Each scanned file's import list is cached for the life of the
 * process, keyed by path and checked against the file's size and modification time, so linting all of
 * src/ scans each file once and a changed file (a test's fixture, an editor's save) is scanned again.
 * For each import of the current file, a breadth-first search over the graph looks for a way back; the
 * shortest one is reported on that import as `a.ts -> b.ts -> a.ts`. Every file in a cycle is reported
 * (each on its own import that closes the cycle back to it), so the cycle shows wherever one looks.
 *
 * Only files under `root` (an option, relative to ESLint's working directory; default `src`) are
 * followed: the rule is about src/'s own graph (src/ reaches nothing outside it but packages), and
 * stopping at its edge keeps the search small.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import ts from "typescript";

/** @type {Map<string, { size: number, mtimeMs: number, imports: string[] }>} */
const scanned = new Map();

/**
 * The `.ts` file a relative specifier names, or undefined when it names none (a package, a JSON file,
 * a missing file).
 * @param {string} fromFile
 * @param {string} specifier
 * @returns {string | undefined}
 */
function resolveSpecifier(fromFile, specifier) {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [];
  if (base.endsWith(".js")) candidates.push(`${base.slice(0, -3)}.ts`);
  else if (base.endsWith(".mjs")) candidates.push(`${base.slice(0, -4)}.mts`);
  else if (base.endsWith(".ts") || base.endsWith(".mts")) candidates.push(base);
  else if (!/\.[a-z]+$/i.test(base)) candidates.push(`${base}.ts`, resolve(base, "index.ts"));
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/**
 * The `.ts` files under `root` that `file` (on disk) imports, scanned once per version of the file.
 * @param {string} file
 * @param {string} root
 * @returns {string[]}
 */
function importsOnDisk(file, root) {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    return [];
  }
  const cached = scanned.get(file);
  if (cached && cached.size === stat.size && cached.mtimeMs === stat.mtimeMs) return cached.imports;
  const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  const imports = [];
  for (const ref of importedFiles) {
    const target = resolveSpecifier(file, ref.fileName);
    if (target && isUnder(target, root) && !imports.includes(target)) imports.push(target);
  }
  scanned.set(file, { size: stat.size, mtimeMs: stat.mtimeMs, imports });
  return imports;
}

/** @param {string} file @param {string} root */
function isUnder(file, root) {
  return file.startsWith(root + sep);
}

/**
 * The shortest import path from `start` back to `target` (both included), or undefined.
 * @param {string} start
 * @param {string} target
 * @param {string} root
 * @returns {string[] | undefined}
 */
function pathBack(start, target, root) {
  if (start === target) return [start];
  /** @type {Map<string, string | null>} */
  const parent = new Map([[start, null]]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const file = /** @type {string} */ (queue[i]);
    for (const next of importsOnDisk(file, root)) {
      if (parent.has(next)) continue;
      parent.set(next, file);
      if (next === target) {
        const path = [];
        for (let at = /** @type {string | null} */ (next); at !== null; at = parent.get(at) ?? null) {
          path.unshift(at);
        }
        return path;
      }
      queue.push(next);
    }
  }
  return undefined;
}

/** @type {import("eslint").Rule.RuleModule} */
export default {
  meta: {
    type: "problem",
    docs: { description: "Disallow import cycles among the modules under a root directory (src/)." },
    schema: [
      {
        type: "object",
        properties: { root: { type: "string" } },
        additionalProperties: false,
      },
    ],
    messages: {
      cycle: "import cycle: {{path}} (break it: move what both sides need into a module neither imports)",
    },
  },
  create(context) {
    const root = resolve(context.cwd, context.options[0]?.root ?? "src");
    const file = resolve(context.filename);
    if (!isUnder(file, root)) return {};
    /** @type {Array<{ node: import("estree").Node, specifier: string }>} */
    const found = [];
    /** @param {any} source a string literal naming a module, or something else (ignored) */
    const add = (source) => {
      if (source?.type === "Literal" && typeof source.value === "string") {
        found.push({ node: source, specifier: source.value });
      }
    };
    return {
      ImportDeclaration: (node) => add(node.source),
      ExportNamedDeclaration: (node) => add(node.source),
      ExportAllDeclaration: (node) => add(node.source),
      ImportExpression: (node) => add(node.source),
      /** @param {any} node `typeof import("./x.js")` */
      TSImportType: (node) => {
        const literal = node.argument?.type === "TSLiteralType" ? node.argument.literal : node.argument;
        add(literal);
      },
      /** @param {any} node `import x = require("./x.js")` */
      TSExternalModuleReference: (node) => {
        add(node.expression);
      },
      "Program:exit": () => {
        /** @type {Set<string>} */
        const reported = new Set();
        for (const { node, specifier } of found) {
          const target = resolveSpecifier(file, specifier);
          if (!target || !isUnder(target, root) || reported.has(target)) continue;
          const back = pathBack(target, file, root);
          if (!back) continue;
          reported.add(target);
          const names = [file, ...back].map((f) => relative(context.cwd, f).split(sep).join("/"));
          context.report({ node, messageId: "cycle", data: { path: names.join(" -> ") } });
        }
      },
    };
  },
};

import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * No module of src/ may reach itself through its imports, type-only imports included: a cycle means
 * two modules each know the other's job (the applier and the secret engine once imported each other),
 * and at run time it is what makes an ESM binding `undefined` during start-up. The graph is read with
 * the TypeScript compiler's own import scanner (`preProcessFile`: `import`, `import type`,
 * `export ... from`, dynamic `import()`), so the test sees what `tsc` sees.
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await tsFiles(path)));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out.sort();
}

/** Module (path relative to src/) -> the src/ modules it imports. */
export async function importGraph(root: string): Promise<Map<string, string[]>> {
  const files = await tsFiles(root);
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(await readFile(file, "utf8"), true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => resolve(dirname(file), name.replace(/\.js$/, ".ts")))
      .filter((path) => known.has(path))
      .map((path) => relative(root, path));
    graph.set(relative(root, file), [...new Set(targets)].sort());
  }
  return graph;
}

/** Every elementary cycle found by a depth-first search, each once, as a path `a -> b -> a`. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const state = new Map<string, "open" | "closed">();
  const stack: string[] = [];
  const found = new Set<string>();
  const visit = (node: string): void => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        const cycle = stack.slice(stack.indexOf(next));
        // Rotate so the smallest name leads: the same cycle reached from elsewhere reads the same.
        const start = cycle.indexOf([...cycle].sort()[0] as string);
        const canonical = [...cycle.slice(start), ...cycle.slice(0, start)];
        found.add([...canonical, canonical[0]].join(" -> "));
      } else if (!state.has(next)) {
        visit(next);
      }
    }
    stack.pop();
    state.set(node, "closed");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return [...found].sort();
}

describe("the import graph of src/", () => {
  it("has no cycle", async () => {
    const graph = await importGraph(SRC);
    expect(graph.size).toBeGreaterThan(50);
    expect(findCycles(graph)).toEqual([]);
  });

  it("the detector finds a two-module cycle, a longer one, and a type-only one", () => {
    const graph = new Map<string, string[]>([
      ["engine/apply.ts", ["engine/rotate.ts"]],
      ["engine/rotate.ts", ["engine/apply.ts", "core/x.ts"]],
      ["core/x.ts", ["core/y.ts"]],
      ["core/y.ts", ["core/z.ts"]],
      ["core/z.ts", ["core/x.ts"]],
      ["leaf.ts", []],
    ]);
    expect(findCycles(graph)).toEqual([
      "core/x.ts -> core/y.ts -> core/z.ts -> core/x.ts",
      "engine/apply.ts -> engine/rotate.ts -> engine/apply.ts",
    ]);
  });

  it("reads type-only imports and re-exports as edges", () => {
    const info = ts.preProcessFile(
      'import type { A } from "./a.js";\nexport { B } from "./b.js";\nconst c = await import("./c.js");\n',
      true,
      true,
    );
    expect(info.importedFiles.map((f) => f.fileName)).toEqual(["./a.js", "./b.js", "./c.js"]);
  });
});

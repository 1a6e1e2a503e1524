import ts from "typescript";
import { describe, expect, it } from "vitest";
import { lineOf, nodesOf, sourceFiles, type SourceFile } from "./support/source.js";

/**
 * Mechanisms that must exist once in src/, so that a fix to one (a missing directory fsync, a jitter
 * bug) reaches every caller: the atomic durable write and the backoff formula. The calls are found by
 * the TypeScript parser, so comments and strings that mention them do not count.
 */

const files = await sourceFiles();

/** `file:line` of every node `match` accepts, outside the files allowed to have them. */
function findings(allowed: readonly string[], match: (node: ts.Node) => boolean): string[] {
  const out: string[] = [];
  for (const file of files as SourceFile[]) {
    if (allowed.includes(file.path)) continue;
    for (const node of nodesOf(file)) if (match(node)) out.push(`${file.path}:${lineOf(file, node)}`);
  }
  return out;
}

describe("one implementation each", () => {
  it("atomic durable writes: only src/state/atomic.ts renames files into place or fsyncs", () => {
    const fsModules = ["fs", "fs/promises", "node:fs", "node:fs/promises"];
    const durabilityCalls = ["rename", "renameSync", "fsync", "fsyncSync", "fdatasync", "fdatasyncSync"];
    const found = findings(
      [
        "src/state/atomic.ts",
        // The lock is created by link(), not rename(): it fsyncs its owner record before the link.
        "src/state/lock.ts",
      ],
      (node) => {
        // `import { rename } from "node:fs/promises"` and the like.
        if (ts.isImportSpecifier(node)) {
          const declaration = node.parent.parent.parent;
          return (
            ts.isImportDeclaration(declaration) &&
            ts.isStringLiteral(declaration.moduleSpecifier) &&
            fsModules.includes(declaration.moduleSpecifier.text) &&
            durabilityCalls.includes((node.propertyName ?? node.name).text)
          );
        }
        // `handle.sync()` / `handle.datasync()` on a FileHandle (a git checkout's `sync(signal)` takes one).
        return (
          ts.isCallExpression(node) &&
          ts.isPropertyAccessExpression(node.expression) &&
          ["sync", "datasync"].includes(node.expression.name.text) &&
          node.arguments.length === 0
        );
      },
    );
    expect(found).toEqual([]);
  });

  it("backoff: only src/backoff.ts computes a doubling delay", () => {
    // `2 ** n` with a computed exponent, or Math.pow; a constant such as `2 ** 32 - 1` is no backoff.
    const found = findings(["src/backoff.ts"], (node) => {
      if (
        ts.isBinaryExpression(node) &&
        node.operatorToken.kind === ts.SyntaxKind.AsteriskAsteriskToken &&
        ts.isNumericLiteral(node.left) &&
        node.left.text === "2"
      ) {
        return !ts.isNumericLiteral(node.right);
      }
      return ts.isCallExpression(node) && node.expression.getText() === "Math.pow";
    });
    expect(found).toEqual([]);
  });
});

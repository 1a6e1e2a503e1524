import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/**
 * The sources of src/ as the TypeScript compiler parses them, for tests that check the code itself:
 * comments, string literals and calls are found by the parser, so a `//` inside a regular expression
 * or a string is never taken for a comment.
 */

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const SRC = join(REPO, "src");

export interface SourceFile {
  /** Path relative to the repository root, with `/` separators. */
  path: string;
  text: string;
  ast: ts.SourceFile;
}

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await tsFiles(path)));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out.sort();
}

/** Every .ts file under src/, parsed. */
export async function sourceFiles(): Promise<SourceFile[]> {
  const files = await tsFiles(SRC);
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(file, "utf8");
      return {
        path: relative(REPO, file).split("\\").join("/"),
        text,
        ast: ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true),
      };
    }),
  );
}

/** Every node of a file, depth first, tokens included. */
export function* nodesOf(file: SourceFile): Generator<ts.Node> {
  const stack: ts.Node[] = [file.ast];
  while (stack.length > 0) {
    const node = stack.pop() as ts.Node;
    yield node;
    stack.push(...[...node.getChildren(file.ast)].reverse());
  }
}

export interface Comment {
  /** 1-based line of the comment's start. */
  line: number;
  /** The comment's text with the comment markers and leading `*` of each line removed. */
  text: string;
}

/** Every comment of a file, once each, in order. */
export function commentsOf(file: SourceFile): Comment[] {
  const seen = new Map<number, ts.CommentRange>();
  const add = (ranges: ts.CommentRange[] | undefined) => {
    for (const range of ranges ?? []) seen.set(range.pos, range);
  };
  for (const node of nodesOf(file)) {
    add(ts.getLeadingCommentRanges(file.text, node.getFullStart()));
    add(ts.getTrailingCommentRanges(file.text, node.getEnd()));
  }
  return [...seen.values()]
    .sort((a, b) => a.pos - b.pos)
    .map((range) => {
      const raw = file.text.slice(range.pos, range.end);
      const body =
        range.kind === ts.SyntaxKind.SingleLineCommentTrivia
          ? raw.replace(/^\/\/+/, "")
          : raw
              .replace(/^\/\*+/, "")
              .replace(/\*+\/$/, "")
              .split("\n")
              .map((line) => line.replace(/^\s*\*(?!\/)/, ""))
              .join("\n");
      return { line: file.ast.getLineAndCharacterOfPosition(range.pos).line + 1, text: body };
    });
}

/** The 1-based line of a node. */
export function lineOf(file: SourceFile, node: ts.Node): number {
  return file.ast.getLineAndCharacterOfPosition(node.getStart(file.ast)).line + 1;
}

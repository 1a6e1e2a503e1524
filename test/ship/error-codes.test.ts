import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  isIssueCode,
  registeredCodes,
  renderCodeReference,
  WARNING_CODES,
} from "../../src/error-codes.js";
import { GitOpsError } from "../../src/errors.js";
import { commentsOf, lineOf, nodesOf, REPO, sourceFiles } from "./support/source.js";

/**
 * The error codes are one registry (src/error-codes.ts): every code the program can report is in it
 * with its meaning, docs/ERRORS.md lists exactly its codes, and no code named in src/ (strings and
 * comments) or in the docs is missing from it. A code is something users match on, so one that is
 * renamed or made up in one place must fail here rather than reach a script that waits for it.
 */

const CODE = /\b[EW]_[A-Z0-9]+(?:_[A-Z0-9]+)*\b/g;

describe("the error-code registry", () => {
  it("gives every code a meaning, and keys E_ errors and W_ warnings apart", () => {
    for (const { code, doc } of registeredCodes()) {
      expect(doc.trim().length, code).toBeGreaterThan(10);
    }
    expect(Object.keys(ERROR_CODES).every((c) => c.startsWith("E_"))).toBe(true);
    expect(Object.keys(WARNING_CODES).every((c) => c.startsWith("W_"))).toBe(true);
    expect(isIssueCode("E_STATE_LOCKED")).toBe(true);
    expect(isIssueCode("E_NOT_A_REAL_CODE")).toBe(false);
  });

  it("is the type of GitOpsError's code: an unregistered code does not compile", () => {
    // `npm run typecheck` fails if this line compiles without error, i.e. if any string were accepted.
    // @ts-expect-error -- not a registered code
    const error = new GitOpsError("E_NOT_A_REAL_CODE", "made up");
    expect(isIssueCode(error.code)).toBe(false);
  });

  it("docs/ERRORS.md lists exactly the registry's codes (regenerate: npx tsx scripts/error-codes.ts)", async () => {
    const doc = await readFile(join(REPO, "docs/ERRORS.md"), "utf8");
    const listed = [...doc.matchAll(/^\| `([EW]_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(
      registeredCodes()
        .map((c) => c.code)
        .sort(),
    );
    expect(doc).toBe(renderCodeReference());
  });

  it("has every code that src/ names in a string or a comment", async () => {
    const unknown: string[] = [];
    for (const file of await sourceFiles()) {
      const texts: { line: number; text: string }[] = commentsOf(file);
      for (const node of nodesOf(file)) {
        if (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) {
          texts.push({ line: lineOf(file, node), text: node.getText(file.ast) });
        }
      }
      for (const { line, text } of texts) {
        for (const [code] of text.matchAll(CODE)) {
          if (!isIssueCode(code)) unknown.push(`${file.path}:${line}: ${code}`);
        }
      }
    }
    expect(unknown).toEqual([]);
  });

  it("has every code that README.md and docs/ name", async () => {
    const docs = ["README.md", ...(await readdir(join(REPO, "docs"))).map((f) => `docs/${f}`)];
    const unknown: string[] = [];
    for (const path of docs.filter((p) => p.endsWith(".md"))) {
      const text = await readFile(join(REPO, path), "utf8");
      for (const [code] of text.matchAll(CODE)) if (!isIssueCode(code)) unknown.push(`${path}: ${code}`);
    }
    expect(unknown).toEqual([]);
  });
});

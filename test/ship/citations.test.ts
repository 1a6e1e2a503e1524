import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { commentsOf, REPO, sourceFiles } from "./support/source.js";

/**
 * Doc comments send the reader somewhere: a file of the repository (`src/core/compare.ts`,
 * `docs/API-BEHAVIOUR.md, "Scopes"`), never a file that lives elsewhere or an issue tracker the reader
 * of a checkout may not have. Every path ending in .md, .ts or .json in a comment of src/ must exist,
 * read relative to the citing file's directory, to src/ or to the repository root; a section cited as
 * `FILE.md, "Section"` must be a heading of that file; and no comment may point at `issue #N`.
 */

/** A path-like word ending in a cited extension, not part of a URL or a longer name. */
const CITED_PATH = /(?<![\w@/.:-])((?:\.{1,2}\/)?[\w-]+(?:[./][\w-]+)*\.(?:md|ts|json))(?![\w/-])/g;

/** `FILE.md, "A"`, `FILE.md "A"`, `FILE.md, "A", "B"`: the sections cited right after a Markdown file. */
const SECTIONS = /^,?\s*("[^"]+"(?:\s*(?:,|\/|and)\s*"[^"]+")*)/;

/** `issue #4`, `issues #2 and #5`, `PR #12`: pointers to a tracker instead of a reason. */
const TRACKER = /\b(?:issues?|PR|pull request)\s*#\d+/gi;

/**
 * Names that look like paths but are not citations: data file names the code writes or reads, each
 * with the file that uses it.
 */
const NOT_CITATIONS: Readonly<Record<string, readonly string[]>> = {
  // The ownership record's file name inside the published git ref.
  "src/engine/ownership-ref.ts": ["inventory.json"],
};

function resolveCitation(citing: string, cited: string): string | null {
  const candidates = [join(REPO, dirname(citing), cited), join(REPO, "src", cited), join(REPO, cited)];
  return candidates.find((path) => existsSync(path)) ?? null;
}

const headingCache = new Map<string, Set<string>>();
function headingsOf(path: string): Set<string> {
  let headings = headingCache.get(path);
  if (!headings) {
    const text = readFileSync(path, "utf8");
    headings = new Set([...text.matchAll(/^#{1,6}\s+(.+?)\s*$/gm)].map((m) => m[1] as string));
    headingCache.set(path, headings);
  }
  return headings;
}

interface Finding {
  at: string;
  problem: string;
}

async function findings(): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const file of await sourceFiles()) {
    for (const comment of commentsOf(file)) {
      // One line of prose: a citation may wrap across comment lines.
      const text = comment.text.replace(/\s+/g, " ");
      const at = `${file.path}:${comment.line}`;
      for (const match of text.matchAll(CITED_PATH)) {
        const cited = match[1] as string;
        if (NOT_CITATIONS[file.path]?.includes(cited)) continue;
        const resolved = resolveCitation(file.path, cited);
        if (!resolved) {
          out.push({ at, problem: `cites ${cited}, which is not in the repository` });
          continue;
        }
        if (!cited.endsWith(".md")) continue;
        const after = text.slice((match.index ?? 0) + cited.length);
        const sections = SECTIONS.exec(after)?.[1];
        for (const [, section] of sections?.matchAll(/"([^"]+)"/g) ?? []) {
          if (!headingsOf(resolved).has(section as string)) {
            out.push({ at, problem: `cites ${cited}, "${section}", which is not a heading of that file` });
          }
        }
      }
      for (const [pointer] of text.matchAll(TRACKER)) {
        out.push({ at, problem: `points at ${pointer}: say the reason instead` });
      }
    }
  }
  return out;
}

describe("citations in doc comments", () => {
  it("name files of the repository, sections those files have, and no issue numbers", async () => {
    const found = (await findings()).map((f) => `${f.at}: ${f.problem}`);
    expect(found).toEqual([]);
  });

  it("would catch a missing file, a missing section and an issue number", () => {
    // The patterns themselves, on text shaped like the comments they guard.
    expect([..."see API-NOTES.md, Scopes".matchAll(CITED_PATH)].map((m) => m[1])).toEqual(["API-NOTES.md"]);
    expect(resolveCitation("src/core/compare.ts", "API-NOTES.md")).toBeNull();
    expect(resolveCitation("src/core/compare.ts", "src/emulator/behaviour.ts")).not.toBeNull();
    expect(resolveCitation("src/engine/daemon.ts", "daemon/run-record.ts")).not.toBeNull();
    expect(SECTIONS.exec(', "Create", "Scopes" and more')?.[1]).toBe('"Create", "Scopes"');
    expect(headingsOf(join(REPO, "docs/API-BEHAVIOUR.md")).has("Rate limits")).toBe(true);
    expect(headingsOf(join(REPO, "docs/API-BEHAVIOUR.md")).has("Rate limit")).toBe(false);
    expect("crash recovery (issue #4)".match(TRACKER)).toEqual(["issue #4"]);
    expect("https://example.com/a.json and x.y".match(CITED_PATH)).toBeNull();
  });
});

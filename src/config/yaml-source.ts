import { readFile, realpath, stat } from "node:fs/promises";
import { sep } from "node:path";
import type { Document, LineCounter, YAMLError } from "yaml";
import type { ConfigIssue, IssueCode } from "../errors.js";
import { type YamlContext, issueAtOffset } from "./issues.js";
import { yamlLib } from "./yaml-lib.js";

/**
 * Reading and parsing one YAML file defensively: files are refused by size before they are read,
 * binary or non-UTF-8 content is refused before it is parsed, alias expansion is bounded, and every
 * syntax error comes back as a located issue instead of an exception.
 */

/** Files larger than this are refused before parsing: no hand-written desired state is this big. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

/** Past this many syntax errors in one file the rest are summarised: they are echoes of the first. */
const MAX_SYNTAX_ERRORS = 20;

/** Aliases that expand to more than this many nodes are an attack, not a config (yaml's own default). */
const MAX_ALIAS_COUNT = 100;

export type ReadResult = { text: string; issue?: undefined } | { text?: undefined; issue: ConfigIssue };

function lineColAt(bytes: Uint8Array, index: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < index; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  // Columns count characters, so decode the partial line.
  const col = Buffer.from(bytes.subarray(lineStart, index)).toString("utf8").length + 1;
  return { line, col };
}

function fileIssue(file: string, code: IssueCode, message: string, at = { line: 1, col: 1 }): ConfigIssue {
  return { file, line: at.line, col: at.col, path: "", message, code };
}

/** Decodes UTF-8 text, or says why the bytes are not a text file. */
export function decodeText(bytes: Uint8Array, file: string): ReadResult {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return { issue: fileIssue(file, "E_BINARY", "file is UTF-16; save it as UTF-8") };
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    return {
      issue: fileIssue(
        file,
        "E_BINARY",
        "file is binary (contains NUL bytes), not YAML",
        lineColAt(bytes, nul),
      ),
    };
  }
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    const bad = firstInvalidUtf8(bytes);
    return {
      issue: fileIssue(
        file,
        "E_NOT_UTF8",
        "file is not valid UTF-8; save it as UTF-8",
        lineColAt(bytes, bad),
      ),
    };
  }
}

const inRange = (b: number | undefined, low: number, high: number) =>
  b !== undefined && b >= low && b <= high;

/** Index of the first byte that starts an invalid UTF-8 sequence (RFC 3629 table 3.7). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    let length = 0;
    if (b < 0x80) length = 1;
    else if (inRange(b, 0xc2, 0xdf)) length = 2;
    else if (inRange(b, 0xe0, 0xef)) length = 3;
    else if (inRange(b, 0xf0, 0xf4)) length = 4;
    if (length === 0) return i;
    const second = bytes[i + 1];
    if (length >= 2) {
      const [low, high] =
        b === 0xe0
          ? [0xa0, 0xbf]
          : b === 0xed
            ? [0x80, 0x9f]
            : b === 0xf0
              ? [0x90, 0xbf]
              : b === 0xf4
                ? [0x80, 0x8f]
                : [0x80, 0xbf];
      if (!inRange(second, low, high)) return i;
    }
    for (let k = 2; k < length; k++) if (!inRange(bytes[i + k], 0x80, 0xbf)) return i;
    i += length;
  }
  return bytes.length;
}

/**
 * Reads a file as UTF-8 text, refusing it by size (before reading), by content or when unreadable.
 * With `confinedTo` (a resolved directory) a file whose real path lies outside it is refused before
 * anything of it is read: a pull request can add a link to `../../.git/config`, whose credentials
 * would otherwise be parsed and quoted in a syntax error on a CI log.
 */
export async function readSourceFile(
  absolute: string,
  file: string,
  limit = MAX_FILE_BYTES,
  confinedTo?: string,
): Promise<ReadResult> {
  try {
    if (confinedTo !== undefined && !isWithin(await realpath(absolute), confinedTo)) {
      return {
        issue: fileIssue(
          file,
          "E_LINK_OUTSIDE",
          "a symbolic link here resolves outside the desired directory; it is not read (point it inside, or copy the file in)",
        ),
      };
    }
    const info = await stat(absolute);
    if (!info.isFile()) return { issue: fileIssue(file, "E_NOT_A_FILE", "not a regular file") };
    if (info.size > limit) return { issue: tooLarge(file, info.size, limit) };
    const bytes = await readFile(absolute);
    if (bytes.length > limit) return { issue: tooLarge(file, bytes.length, limit) };
    return decodeText(bytes, file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      issue: fileIssue(
        file,
        code === "ENOENT" ? "E_NOT_FOUND" : "E_UNREADABLE",
        `cannot read file: ${code ?? String(error)}`,
      ),
    };
  }
}

/**
 * True when `real` (a resolved path) is `root` itself or below it. `root` must be resolved too
 * (`realpath`), so a desired directory that is itself a link, or a ConfigMap's `..data` links that
 * stay inside the mount, pass, and only what escapes is refused.
 */
export function isWithin(real: string, root: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

function tooLarge(file: string, size: number, limit: number): ConfigIssue {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return fileIssue(
    file,
    "E_TOO_LARGE",
    `file is ${mib(size)}, over the ${mib(limit)} limit; split it into several files`,
  );
}

/** A parsed file: its non-empty documents, ready to be located into, and what went wrong. */
export interface ParsedFile {
  file: string;
  lineCounter: LineCounter;
  documents: YamlContext[];
  /** Documents that failed to parse are reported here and left out of `documents`. */
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
  /** True when the file holds no document with content (only comments, or nothing). */
  empty: boolean;
}

function syntaxCode(error: YAMLError): IssueCode {
  if (error.code === "DUPLICATE_KEY") return "E_DUPLICATE_KEY";
  if (error.code === "RESOURCE_EXHAUSTION") return "E_TOO_DEEP";
  return "E_YAML_SYNTAX";
}

function syntaxMessage(error: YAMLError): string {
  if (error.code === "TAB_AS_INDENT")
    return "tabs are not allowed as indentation in YAML; indent with spaces";
  if (error.code === "DUPLICATE_KEY") return "duplicate key: each key may appear once in a mapping";
  if (error.code === "RESOURCE_EXHAUSTION") return "nesting is too deep to parse";
  return yamlMessageWithoutContent(error.message);
}

/**
 * Parts of the `yaml` package's messages that repeat the file's text (the offending token, a tag, a
 * directive, an escape sequence), each matched up to where the text starts: only the part before it
 * is kept. A file that fails to parse may not be desired state at all (a credential file linked in,
 * a `.git/config`), and the message already points at its line and column.
 */
const CONTENT_IN_YAML_MESSAGE: readonly RegExp[] = [
  /^(Unexpected [\w-]+ token in YAML stream): /,
  /^(Block scalar header includes extra characters):/,
  /^(Could not resolve tag):/,
  /^(Not a valid tag):/,
  /^(Unresolved tag):/,
  /^(Invalid escape sequence) /,
  /^(Ordered maps must not include duplicate keys):/,
  /^(Unresolved plain scalar) /,
  /^(Unknown directive) /,
  /^(Verbatim tags aren't resolved)/,
  /^(Plain value cannot start with) /,
];

/** The most of a `yaml` message that is kept: its wording, never a long stretch of the file. */
const MAX_YAML_MESSAGE_CHARS = 120;

/** A `yaml` package message, lower-cased, with any quoted file content cut off. */
export function yamlMessageWithoutContent(message: string): string {
  let kept = message;
  for (const re of CONTENT_IN_YAML_MESSAGE) {
    const match = re.exec(message);
    if (match?.[1] !== undefined) {
      kept = match[1];
      break;
    }
  }
  // Whatever else quotes the file ends at its first quote: `Unexpected X: "..."`, `... ${JSON.stringify}`.
  const quote = kept.search(/: ["'`]/);
  if (quote !== -1) kept = kept.slice(0, quote);
  if (kept.length > MAX_YAML_MESSAGE_CHARS) kept = `${kept.slice(0, MAX_YAML_MESSAGE_CHARS)}...`;
  return kept.charAt(0).toLowerCase() + kept.slice(1);
}

function isEmptyDocument(doc: Document.Parsed): boolean {
  const contents = doc.contents as { value?: unknown; range?: [number, number, number] } | null;
  if (contents === null) return true;
  return "value" in contents && contents.value === null && contents.range?.[0] === contents.range?.[1];
}

/** Parses every document of a file. Syntax errors make a document unusable; duplicate keys do not. */
export function parseYamlFile(text: string, file: string): ParsedFile {
  const { LineCounter, parseAllDocuments } = yamlLib();
  const lineCounter = new LineCounter();
  const result: ParsedFile = { file, lineCounter, documents: [], errors: [], warnings: [], empty: true };
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, {
      lineCounter,
      prettyErrors: false,
      merge: true,
      uniqueKeys: true,
      logLevel: "error",
    }) as Document.Parsed[];
  } catch (error) {
    result.errors.push(
      issueAtOffset(
        file,
        undefined,
        0,
        "E_YAML_SYNTAX",
        `cannot parse: ${yamlMessageWithoutContent((error as Error).message)}`,
      ),
    );
    return result;
  }
  let reported = 0;
  for (const doc of docs) {
    let usable = true;
    for (const error of doc.errors) {
      const code = syntaxCode(error);
      if (code !== "E_DUPLICATE_KEY") usable = false;
      reported++;
      // Where the stack ran out depends on the stack size, not on the file: point at the document.
      const offset = code === "E_TOO_DEEP" ? (doc.contents?.range?.[0] ?? 0) : error.pos[0];
      if (reported <= MAX_SYNTAX_ERRORS) {
        result.errors.push(issueAtOffset(file, lineCounter, offset, code, syntaxMessage(error)));
      } else if (reported === MAX_SYNTAX_ERRORS + 1) {
        result.errors.push(
          issueAtOffset(
            file,
            lineCounter,
            error.pos[0],
            "E_YAML_SYNTAX",
            "more syntax errors follow; fix the ones above first",
          ),
        );
      }
    }
    for (const warning of doc.warnings) {
      result.warnings.push(
        issueAtOffset(file, lineCounter, warning.pos[0], "W_YAML", syntaxMessage(warning)),
      );
    }
    if (!isEmptyDocument(doc)) result.empty = false;
    if (usable && !isEmptyDocument(doc)) result.documents.push({ file, doc, lineCounter });
  }
  return result;
}

/** Plain data of a document, with alias expansion bounded; an alias bomb becomes an issue. */
export function toPlainData(
  ctx: YamlContext,
): { data: unknown; issue?: undefined } | { data?: undefined; issue: ConfigIssue } {
  try {
    return { data: ctx.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown };
  } catch (error) {
    const message = (error as Error).message;
    const bomb = /excessive alias count/i.test(message);
    const unresolved = /unresolved alias.*: (.+)$/i.exec(message)?.[1];
    let offset = ctx.doc.contents?.range?.[0] ?? 0;
    const { visit } = yamlLib();
    visit(ctx.doc, {
      Alias(_key, node) {
        if (unresolved !== undefined && node.source !== unresolved) return undefined;
        offset = node.range?.[0] ?? offset;
        return visit.BREAK;
      },
    });
    const { line, col } = ctx.lineCounter.linePos(offset);
    return {
      issue: bomb
        ? {
            file: ctx.file,
            line,
            col,
            path: "",
            code: "E_ALIAS_BOMB",
            message: `aliases expand to too many nodes (over ${MAX_ALIAS_COUNT}): refused as a resource-exhaustion attack`,
          }
        : unresolved !== undefined
          ? {
              file: ctx.file,
              line,
              col,
              path: "",
              code: "E_UNRESOLVED_ALIAS",
              message: `alias \`*${unresolved}\` has no anchor \`&${unresolved}\` before it`,
            }
          : {
              file: ctx.file,
              line,
              col,
              path: "",
              code: "E_YAML_SYNTAX",
              message: yamlMessageWithoutContent(message),
            },
    };
  }
}

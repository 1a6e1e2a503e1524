import type { Anchor, Locator, PathSegment } from "./issues.js";

/**
 * A fast reader for the plain subset of YAML that desired-state and config files are written in:
 * block mappings with simple keys, block sequences, one-line flow sequences of scalars, one-line flow
 * mappings of scalars and of such mappings (`sinks: {default: {type: file}}`), one-line plain and
 * quoted scalars, and comments. The `yaml` package builds tokens, a CST and a document before
 * `toJS` (seconds for the 4.4 MB of bench/plan.ts's 10,000 clients); this reader builds the plain
 * data and the offsets needed for file:line:col in one pass over the text (tens of milliseconds).
 *
 * It never guesses: anything outside the subset (anchors, aliases, merge keys, tags, block scalars,
 * multi-line scalars, several documents, numbers other than plain decimal integers, tabs, CR line ends, duplicate keys...) makes it
 * return `undefined`, and the caller parses the file with the `yaml` package instead. The data it
 * returns equals `yaml`'s `parseDocument(text).toJS()` for the same text, and `locate` answers as
 * `locate` in issues.ts does on the `yaml` document (test/config/fast-yaml.test.ts compares both).
 */

/**
 * Offsets inside one collection: for a mapping `[key, keyOffset, valueOffset, ...]` in key order, for
 * a block sequence the offset of each item. Flow sequences get none: their items are found again
 * from the `[` when a location inside one is asked for (rarely), which keeps reading fast.
 */
type Positions = (string | number)[];

/** A file read by the fast path: its plain data and what is needed to point into it. */
export interface FastDocument {
  /** The top-level mapping, as `yaml`'s `toJS()` would return it. */
  data: Record<string, unknown>;
  /** Offset of the first key of the top-level mapping. */
  rootOffset: number;
  /** Offsets of every block mapping and block sequence in `data`. */
  positions: Map<object, Positions>;
  /** Offset at which each line starts (line 1 at index 0). */
  lineStarts: number[];
  /** The text read, to find the items of a flow sequence when asked. */
  text: string;
}

/** Thrown inside the reader when the text leaves the subset; never escapes `parseFastYaml`. */
const UNSUPPORTED = Symbol("unsupported");

const SPACE = 0x20;
const HASH = 0x23;
const COLON = 0x3a;
const DASH = 0x2d;
const CR = 0x0d;

/**
 * Control characters (tabs included), a byte order mark, a CR that does not end a line, and the
 * characters YAML 1.1 took for line breaks: files holding any are left to the `yaml` package.
 */
// eslint-disable-next-line no-control-regex
const OUTSIDE_SUBSET_RE = /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f\u0085\u2028\u2029\ufeff]|\r(?!\n)/;

/** A plain scalar may not start with an indicator (YAML 1.2, 7.3.3); quotes, `[` and `{` are read apart. */
const INDICATOR_START = new Set("-?:,[]{}#&*!|>'\"%@`");

/** Keys read as anything but the same string by the core schema, or special to JavaScript objects. */
const RESERVED_KEYS = new Set([
  "null",
  "Null",
  "NULL",
  "true",
  "True",
  "TRUE",
  "false",
  "False",
  "FALSE",
  "__proto__",
]);

/** Plain scalars the YAML 1.2 core schema reads as null or a boolean (yaml's `nullTag`, `boolTag`). */
const CORE_WORDS = new Map<string, null | boolean>([
  ["", null],
  ["~", null],
  ["null", null],
  ["Null", null],
  ["NULL", null],
  ["true", true],
  ["True", true],
  ["TRUE", true],
  ["false", false],
  ["False", false],
  ["FALSE", false],
]);

/** A superset of the core schema's int and float forms: such scalars are left to the `yaml` package. */
const NUMBER_LIKE_RE =
  /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/**
 * Non-negative decimal integers spelled one way (no sign, no leading zero) and well inside the safe
 * range: the core schema reads each as `Number(text)`. Config files are full of them
 * (`max_deletes: 5`); every other number form is left to the `yaml` package.
 */
const PLAIN_INT_RE = /^(?:0|[1-9][0-9]{0,14})$/;

/** How deep flow mappings may nest in the fast reader (`sinks: {default: {type: file}}` is 2). */
const MAX_FLOW_DEPTH = 8;

function isKeyStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isKeyChar(c: number): boolean {
  return isKeyStart(c) || (c >= 0x30 && c <= 0x39) || c === DASH;
}

/** The value of a plain scalar, as the core schema reads it; numbers but plain integers, and the merge key, are refused. */
function plainValue(text: string): string | number | null | boolean {
  if (text === "<<") throw UNSUPPORTED;
  if (text.length <= 5) {
    const word = CORE_WORDS.get(text);
    if (word !== undefined) return word;
  }
  const first = text.charCodeAt(0);
  if (PLAIN_INT_RE.test(text)) return Number(text);
  if (((first >= 0x30 && first <= 0x39) || first === 0x2b || first === 0x2e) && NUMBER_LIKE_RE.test(text))
    throw UNSUPPORTED;
  return text;
}

class Reader {
  readonly positions = new Map<object, Positions>();
  readonly lineStarts: number[];
  readonly #text: string;
  /** Index in `lineStarts` of the current significant line; `lineStarts.length` at the end. */
  #line = -1;
  /** Indentation, first content offset and end offset (before the CR LF or LF) of the current line. */
  indent = 0;
  content = 0;
  end = 0;

  constructor(text: string, lineStarts?: number[]) {
    this.#text = text;
    if (lineStarts) {
      this.lineStarts = lineStarts;
      return;
    }
    this.lineStarts = [];
    let start = 0;
    for (;;) {
      this.lineStarts.push(start);
      const newline = text.indexOf("\n", start);
      if (newline === -1) break;
      start = newline + 1;
    }
  }

  /** Makes the line holding `offset` current (to read a flow sequence again). */
  seek(offset: number): void {
    const text = this.#text;
    const newline = text.indexOf("\n", offset);
    this.end = newline === -1 ? text.length : text.charCodeAt(newline - 1) === CR ? newline - 1 : newline;
  }

  get atEnd(): boolean {
    return this.#line >= this.lineStarts.length;
  }

  /** Moves to the next line that is neither blank nor a comment. */
  advance(): void {
    const text = this.#text;
    const count = this.lineStarts.length;
    for (this.#line++; this.#line < count; this.#line++) {
      const start = this.lineStarts[this.#line] as number;
      let end = this.#line + 1 < count ? (this.lineStarts[this.#line + 1] as number) - 1 : text.length;
      if (text.charCodeAt(end - 1) === CR && end > start) end--;
      let i = start;
      while (i < end && text.charCodeAt(i) === SPACE) i++;
      if (i === end || text.charCodeAt(i) === HASH) continue;
      this.indent = i - start;
      this.content = i;
      this.end = end;
      return;
    }
  }

  /** The column (0-based) of an offset on the current line. */
  columnOf(offset: number): number {
    return offset - (this.lineStarts[this.#line] as number);
  }

  /** Offset of the `:` ending a simple key that starts at `at`, or -1 when no key starts there. */
  keyEnd(at: number): number {
    const text = this.#text;
    if (!isKeyStart(text.charCodeAt(at))) return -1;
    let i = at + 1;
    while (i < this.end && isKeyChar(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== COLON) return -1;
    return i + 1 === this.end || text.charCodeAt(i + 1) === SPACE ? i : -1;
  }

  isDashItem(): boolean {
    return (
      this.#text.charCodeAt(this.content) === DASH &&
      (this.content + 1 === this.end || this.#text.charCodeAt(this.content + 1) === SPACE)
    );
  }

  /** A block mapping whose first key starts at `at` on the current line, at column `col`. */
  readMap(at: number, col: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    const positions: Positions = [];
    this.positions.set(map, positions);
    let keyAt = at;
    for (;;) {
      const colon = this.keyEnd(keyAt);
      if (colon === -1) throw UNSUPPORTED;
      const key = this.#text.slice(keyAt, colon);
      if (RESERVED_KEYS.has(key) || Object.hasOwn(map, key)) throw UNSUPPORTED;
      const [value, valueAt] = this.readValue(col, keyAt, colon + 1);
      map[key] = value;
      positions.push(key, keyAt, valueAt);
      if (this.atEnd || this.indent < col) return map;
      if (this.indent > col) throw UNSUPPORTED;
      keyAt = this.content;
    }
  }

  /** The value after a key (`from` is just past the `:`), inline or on the lines below. */
  readValue(col: number, keyAt: number, from: number): [unknown, number] {
    let at = from;
    while (at < this.end && this.#text.charCodeAt(at) === SPACE) at++;
    if (at < this.end && this.#text.charCodeAt(at) !== HASH) {
      const value = this.readInline(at);
      this.advance();
      return [value, at];
    }
    this.advance();
    if (!this.atEnd && (this.indent > col || (this.indent === col && this.isDashItem()))) {
      const nested = this.content;
      if (this.isDashItem()) return [this.readSeq(this.indent), nested];
      if (this.indent > col) return [this.readMap(nested, this.indent), nested];
    }
    // An empty value is located at its key, as `locate` does for the `yaml` document.
    return [null, keyAt];
  }

  /** A block sequence whose first `-` is the current line's content, at column `col`. */
  readSeq(col: number): unknown[] {
    const items: unknown[] = [];
    const offsets: Positions = [];
    this.positions.set(items, offsets);
    for (;;) {
      let at = this.content + 1;
      while (at < this.end && this.#text.charCodeAt(at) === SPACE) at++;
      const c = this.#text.charCodeAt(at);
      if (at === this.end || c === HASH || c === DASH) throw UNSUPPORTED;
      offsets.push(at);
      if (this.keyEnd(at) !== -1) {
        items.push(this.readMap(at, this.columnOf(at)));
      } else {
        items.push(this.readInline(at));
        this.advance();
      }
      if (this.atEnd || this.indent < col) return items;
      if (this.indent > col) throw UNSUPPORTED;
      // The same column without a dash: the next key of the mapping this sequence is the value of.
      if (!this.isDashItem()) return items;
    }
  }

  /** A one-line value starting at `at`: a flow sequence, a quoted or a plain scalar. */
  readInline(at: number): unknown {
    const c = this.#text.charCodeAt(at);
    if (c === 0x5b) return this.readFlowSeq(at);
    if (c === 0x7b) return this.readFlowMap(at);
    if (c === 0x22 || c === 0x27) {
      const [value, next] = this.readQuoted(at);
      this.expectLineEnd(next);
      return value;
    }
    return this.readPlain(at);
  }

  /** A plain scalar running to the end of the line or to a ` #` comment. */
  readPlain(at: number): unknown {
    const text = this.#text;
    if (INDICATOR_START.has(text.charAt(at))) throw UNSUPPORTED;
    let stop = this.end;
    for (let i = at; i < this.end; i++) {
      const c = text.charCodeAt(i);
      if (c === COLON && (i + 1 === this.end || text.charCodeAt(i + 1) === SPACE)) throw UNSUPPORTED;
      if (c === HASH && text.charCodeAt(i - 1) === SPACE) {
        stop = i;
        break;
      }
    }
    while (stop > at && text.charCodeAt(stop - 1) === SPACE) stop--;
    return plainValue(text.slice(at, stop));
  }

  /** A quoted scalar closed on the same line, without escapes; returns the value and the offset after it. */
  readQuoted(at: number): [string, number] {
    const text = this.#text;
    const quote = text.charAt(at);
    const close = text.indexOf(quote, at + 1);
    if (close === -1 || close >= this.end) throw UNSUPPORTED;
    const value = text.slice(at + 1, close);
    if (quote === '"' ? value.includes("\\") : text.charAt(close + 1) === "'") throw UNSUPPORTED;
    return [value, close + 1];
  }

  /** `[a, b, "c"]` on one line, of scalars only; the offset of each item goes to `offsets` when given. */
  readFlowSeq(at: number, offsets?: number[]): unknown[] {
    const text = this.#text;
    const items: unknown[] = [];
    let i = this.skipSpaces(at + 1);
    if (text.charCodeAt(i) === 0x5d) {
      this.expectLineEnd(i + 1);
      return items;
    }
    for (;;) {
      offsets?.push(i);
      const c = text.charCodeAt(i);
      if (c === 0x22 || c === 0x27) {
        const [value, next] = this.readQuoted(i);
        items.push(value);
        i = this.skipSpaces(next);
      } else {
        const [value, next] = this.readFlowPlain(i, 0x5d);
        items.push(value);
        i = next;
      }
      const separator = text.charCodeAt(i);
      if (separator === 0x5d) {
        this.expectLineEnd(i + 1);
        return items;
      }
      if (separator !== 0x2c) throw UNSUPPORTED;
      i = this.skipSpaces(i + 1);
      if (i >= this.end || text.charCodeAt(i) === 0x5d) throw UNSUPPORTED;
    }
  }

  /** `{a: b, c: {d: "e"}}` on one line: simple keys, scalar values and flow mappings of the same. */
  readFlowMap(at: number): Record<string, unknown> {
    const [map, end] = this.readFlowMapTo(at, 0);
    this.expectLineEnd(end);
    return map;
  }

  /** The flow mapping whose `{` is at `at`, `depth` mappings deep; returns it and the offset after its `}`. */
  readFlowMapTo(at: number, depth: number): [Record<string, unknown>, number] {
    if (depth > MAX_FLOW_DEPTH) throw UNSUPPORTED;
    const text = this.#text;
    const map: Record<string, unknown> = {};
    const positions: Positions = [];
    this.positions.set(map, positions);
    let i = this.skipSpaces(at + 1);
    if (text.charCodeAt(i) === 0x7d) return [map, i + 1];
    for (;;) {
      const colon = this.keyEnd(i);
      // `{a:b}` is one plain scalar (a key with no value): only `key: value` is read here.
      if (colon === -1 || text.charCodeAt(colon + 1) !== SPACE) throw UNSUPPORTED;
      const key = text.slice(i, colon);
      if (RESERVED_KEYS.has(key) || Object.hasOwn(map, key)) throw UNSUPPORTED;
      const valueAt = this.skipSpaces(colon + 1);
      const c = text.charCodeAt(valueAt);
      let next: number;
      if (c === 0x22 || c === 0x27) {
        const [value, after] = this.readQuoted(valueAt);
        map[key] = value;
        next = this.skipSpaces(after);
      } else if (c === 0x7b) {
        const [value, after] = this.readFlowMapTo(valueAt, depth + 1);
        map[key] = value;
        next = this.skipSpaces(after);
      } else {
        const [value, after] = this.readFlowPlain(valueAt, 0x7d);
        map[key] = value;
        next = after;
      }
      positions.push(key, i, valueAt);
      const separator = text.charCodeAt(next);
      if (separator === 0x7d) return [map, next + 1];
      if (separator !== 0x2c) throw UNSUPPORTED;
      i = this.skipSpaces(next + 1);
      if (i >= this.end || text.charCodeAt(i) === 0x7d) throw UNSUPPORTED;
    }
  }

  /**
   * A plain scalar inside a flow collection closed by `close` (`]` or `}`), ending at `,` or `close`;
   * returns the value and that offset.
   */
  readFlowPlain(at: number, close: number): [unknown, number] {
    const text = this.#text;
    if (at >= this.end || INDICATOR_START.has(text.charAt(at))) throw UNSUPPORTED;
    let i = at;
    for (; i < this.end; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x2c || c === close) break;
      if (c === HASH || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d || c === 0x22 || c === 0x27)
        throw UNSUPPORTED;
      if (c === COLON) {
        const after = text.charCodeAt(i + 1);
        if (i + 1 >= this.end || after === SPACE || after === 0x2c || after === close) throw UNSUPPORTED;
      }
    }
    if (i >= this.end) throw UNSUPPORTED;
    let stop = i;
    while (stop > at && text.charCodeAt(stop - 1) === SPACE) stop--;
    return [plainValue(text.slice(at, stop)), i];
  }

  skipSpaces(at: number): number {
    let i = at;
    while (i < this.end && this.#text.charCodeAt(i) === SPACE) i++;
    return i;
  }

  /** After a closed value only spaces and a comment may follow on the line. */
  expectLineEnd(at: number): void {
    const i = this.skipSpaces(at);
    if (i === this.end) return;
    if (this.#text.charCodeAt(i) !== HASH || i === at) throw UNSUPPORTED;
  }
}

/**
 * Reads `text` when it is a single mapping document in the plain subset; `undefined` when it is not
 * (or when it holds anything the `yaml` package would report), so the caller falls back to it.
 */
export function parseFastYaml(text: string): FastDocument | undefined {
  if (OUTSIDE_SUBSET_RE.test(text)) return undefined;
  const reader = new Reader(text);
  try {
    reader.advance();
    if (reader.atEnd || reader.indent !== 0) return undefined;
    const rootOffset = reader.content;
    const data = reader.readMap(rootOffset, 0);
    if (!reader.atEnd) return undefined;
    return { data, rootOffset, positions: reader.positions, lineStarts: reader.lineStarts, text };
  } catch {
    // Outside the subset, or too deep for the stack: the `yaml` package reads it and says what is wrong.
    return undefined;
  }
}

/** 1-based line and column of an offset, as `yaml`'s `LineCounter.linePos` computes them. */
function linePos(lineStarts: readonly number[], offset: number): { line: number; col: number } {
  let low = 0;
  let high = lineStarts.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((lineStarts[mid] as number) <= offset) low = mid + 1;
    else high = mid;
  }
  return { line: low, col: offset - (lineStarts[low - 1] ?? 0) + 1 };
}

interface Found {
  offset: number;
  /** Offset of the key whose value was reached last, when the last step went through a mapping. */
  keyOffset: number | undefined;
  depth: number;
}

/** Item offsets of the flow sequence whose `[` is at `at` (read again: they are not kept). */
function flowItemOffsets(doc: FastDocument, at: number): number[] {
  const reader = new Reader(doc.text, doc.lineStarts);
  reader.seek(at);
  const offsets: number[] = [];
  reader.readFlowSeq(at, offsets);
  return offsets;
}

function follow(doc: FastDocument, path: readonly PathSegment[]): Found {
  let value: unknown = doc.data;
  let offset = doc.rootOffset;
  let keyOffset: number | undefined;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i] as PathSegment;
    if (Array.isArray(value)) {
      const offsets = doc.positions.get(value) ?? flowItemOffsets(doc, offset);
      if (typeof segment !== "number" || segment >= offsets.length) return { offset, keyOffset, depth: i };
      keyOffset = undefined;
      offset = offsets[segment] as number;
      value = value[segment];
    } else if (typeof value === "object" && value !== null) {
      const positions = doc.positions.get(value) as Positions;
      const index = positions.indexOf(String(segment));
      // Keys sit at every third place; an offset never equals a string segment.
      if (index === -1) return { offset, keyOffset, depth: i };
      keyOffset = positions[index + 1] as number;
      offset = positions[index + 2] as number;
      value = (value as Record<string, unknown>)[String(segment)];
    } else {
      return { offset, keyOffset, depth: i };
    }
  }
  return { offset, keyOffset, depth: path.length };
}

/**
 * Points into a fast-read file with the same answers as `locate` on the `yaml` document: an empty
 * value is located at its key (see `Reader.readValue`), `key` anchors at the key, `parent` at the
 * collection around the path.
 */
export function fastLocator(file: string, doc: FastDocument): Locator {
  return {
    file,
    locate(path: readonly PathSegment[], anchor: Anchor = "value") {
      let found = follow(doc, anchor === "parent" ? path.slice(0, -1) : path);
      if (anchor === "key" && found.depth < path.length) found = follow(doc, path.slice(0, -1));
      const offset =
        anchor === "key" && found.depth === path.length && found.keyOffset !== undefined
          ? found.keyOffset
          : found.offset;
      return linePos(doc.lineStarts, offset);
    },
  };
}

import type { Document, LineCounter, Node, Pair } from "yaml";
import type { z } from "zod";
import type { ConfigIssue, IssueCode } from "../errors.js";
import { fixedIssueCodes } from "./fields.js";
import { closest } from "./suggest.js";
import { yamlLib } from "./yaml-lib.js";

/**
 * Turning problems into located `ConfigIssue`s: a YAML path (`clients[2].scopes[0]`) is mapped back to
 * the node it came from, and zod's issues are given stable codes and messages that say what to write
 * instead. A path is located by walking the document from its root (a few map look-ups), so the
 * loader can afford to locate each entry and each claim on a name as it reads them, and let the
 * document go.
 */

export type PathSegment = string | number;

/** One parsed YAML document and what is needed to point into it. */
export interface YamlContext {
  /** The file as shown in messages. */
  file: string;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** Anchored nodes by name, in document order, collected on first use (aliases are rare, problems rarer). */
  anchors?: Map<string, Node[]>;
}

/** Where in a node a problem is reported: its key (unknown keys), its value, or the mapping around it. */
export type Anchor = "key" | "value" | "parent";

/**
 * Points at a YAML path inside one parsed file. Two kinds exist: one over the `yaml` document
 * (`yamlLocator`) and one over the offsets kept by the fast reader (`fastLocator` in fast-yaml.ts);
 * both answer the same for the same text, so checks need not know which parser read the file.
 */
export interface Locator {
  /** The file as shown in messages. */
  readonly file: string;
  /** 1-based line and column of the node at `path` (see `locate`). */
  locate(path: readonly PathSegment[], anchor?: Anchor): { line: number; col: number };
}

/** A `Locator` over a `yaml` document. */
export function yamlLocator(ctx: YamlContext): Locator {
  return { file: ctx.file, locate: (path, anchor) => locate(ctx, path, anchor) };
}

const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `clients[2].scopes[0]`; keys that are not identifiers are quoted: `sinks["my.sink"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (IDENTIFIER_RE.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function anchorsOf(ctx: YamlContext): Map<string, Node[]> {
  if (ctx.anchors === undefined) {
    const found = new Map<string, Node[]>();
    yamlLib().visit(ctx.doc, {
      Node(_key, node) {
        const name = (node as { anchor?: string }).anchor;
        if (!name) return;
        const list = found.get(name);
        if (list) list.push(node);
        else found.set(name, [node]);
      },
    });
    ctx.anchors = found;
  }
  return ctx.anchors;
}

/** The node an alias points at: the last anchor of that name before the alias (YAML may reuse names). */
function deref(ctx: YamlContext, node: unknown): unknown {
  if (!yamlLib().isAlias(node)) return node;
  const at = node.range?.[0] ?? Number.POSITIVE_INFINITY;
  let target: Node | undefined;
  for (const candidate of anchorsOf(ctx).get(node.source) ?? []) {
    if ((candidate.range?.[0] ?? 0) >= at) break;
    target = candidate;
  }
  return target ?? node;
}

function keyText(pair: Pair): string | undefined {
  const key = pair.key;
  if (yamlLib().isScalar(key)) {
    const value = key.value;
    // The merge key `<<` is a scalar whose value is a symbol; its source text is what was written.
    return typeof value === "symbol" ? key.source : String(value);
  }
  return typeof key === "string" ? key : undefined;
}

/** The pair of `key` in a mapping, looking through `<<` merge keys the way `toJS` does. */
function findPair(ctx: YamlContext, map: unknown, key: string, depth = 0): Pair | undefined {
  const node = deref(ctx, map);
  if (!yamlLib().isMap(node) || depth > 20) return undefined;
  const merges: unknown[] = [];
  for (const pair of node.items) {
    const text = keyText(pair);
    if (text === key) return pair;
    if (text === "<<") merges.push(pair.value);
  }
  for (const merged of merges) {
    const target = deref(ctx, merged);
    const sources = yamlLib().isSeq(target) ? target.items : [target];
    for (const source of sources) {
      const found = findPair(ctx, source, key, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

interface Found {
  /** The deepest node reached. */
  node: unknown;
  /** The pair whose value is `node`, when the last step went through a mapping. */
  pair?: Pair;
  /** How many segments were followed. */
  depth: number;
}

function follow(ctx: YamlContext, path: readonly PathSegment[]): Found {
  let node: unknown = ctx.doc.contents;
  let pair: Pair | undefined;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i] as PathSegment;
    const current = deref(ctx, node);
    if (yamlLib().isMap(current)) {
      const next = findPair(ctx, current, String(segment));
      if (!next) return { node, pair, depth: i };
      pair = next;
      node = next.value;
    } else if (
      yamlLib().isSeq(current) &&
      typeof segment === "number" &&
      current.items[segment] !== undefined
    ) {
      pair = undefined;
      node = current.items[segment];
    } else {
      return { node, pair, depth: i };
    }
  }
  return { node, pair, depth: path.length };
}

function offsetOf(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range?.[0];
}

/** Is this a `key:` with nothing after it? Then the key is the better place to point at. */
function isEmptyValue(node: unknown): boolean {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return (
    node === null ||
    node === undefined ||
    (yamlLib().isScalar(node) && node.value === null && range?.[0] === range?.[1])
  );
}

/** 1-based line and column of the node at `path` (or of the deepest node on the way to it). */
export function locate(
  ctx: YamlContext,
  path: readonly PathSegment[],
  anchor: Anchor = "value",
): { line: number; col: number } {
  let found = follow(ctx, anchor === "parent" ? path.slice(0, -1) : path);
  if (anchor === "key" && found.depth < path.length) found = follow(ctx, path.slice(0, -1));
  let offset: number | undefined;
  if (anchor === "key" && found.depth === path.length && found.pair) offset = offsetOf(found.pair.key);
  else if (found.pair && isEmptyValue(found.node)) offset = offsetOf(found.pair.key);
  else offset = offsetOf(found.node) ?? offsetOf(found.pair?.key);
  return ctx.lineCounter.linePos(offset ?? 0);
}

/** A located issue at `path` inside a parsed document. */
export function issueAt(
  where: Locator,
  path: readonly PathSegment[],
  code: IssueCode,
  message: string,
  anchor: Anchor = "value",
): ConfigIssue {
  const { line, col } = where.locate(path, anchor);
  return { file: where.file, line, col, path: formatPath(path), message, code };
}

/** An issue that belongs to a file as a whole or to a raw position (before or instead of a parse). */
export function issueAtOffset(
  file: string,
  lineCounter: LineCounter | undefined,
  offset: number,
  code: IssueCode,
  message: string,
): ConfigIssue {
  const { line, col } = lineCounter ? lineCounter.linePos(offset) : { line: 1, col: 1 };
  return { file, line, col, path: "", message, code };
}

/**
 * The longest piece of a file's content a message may quote (a value, a key, an alias name), in
 * characters. Messages quote content only in backticks or double quotes, so `boundExcerpts` can cut
 * every such span to this length: a file that is not desired state (a credential file linked in, a
 * mistaken paste) never reaches the terminal or a CI log beyond a short excerpt of the value at fault.
 */
export const EXCERPT_MAX_CHARS = 60;

const QUOTED_SPAN_RE = /`([^`]*)`|"([^"]*)"/g;

/** `text` with every backtick- or double-quoted span cut to {@link EXCERPT_MAX_CHARS} characters. */
export function boundExcerpts(text: string): string {
  return text.replace(QUOTED_SPAN_RE, (span, backticked: string | undefined, quoted: string | undefined) => {
    const inner = backticked ?? quoted ?? "";
    if (inner.length <= EXCERPT_MAX_CHARS) return span;
    const mark = backticked === undefined ? '"' : "`";
    return `${mark}${inner.slice(0, EXCERPT_MAX_CHARS)}...${mark}`;
  });
}

/**
 * Issues in file order, then by position; cross-file issues land where they point. Every message and
 * path comes out with its quoted content bounded (`boundExcerpts`): this is the one funnel the
 * loaders' issues pass through.
 */
export function sortIssues(issues: ConfigIssue[], fileOrder: readonly string[]): ConfigIssue[] {
  const rank = new Map(fileOrder.map((file, i) => [file, i]));
  return issues
    .map((issue, i) => ({
      issue: { ...issue, message: boundExcerpts(issue.message), path: boundExcerpts(issue.path) },
      i,
    }))
    .sort(
      (a, b) =>
        (rank.get(a.issue.file) ?? fileOrder.length) - (rank.get(b.issue.file) ?? fileOrder.length) ||
        a.issue.line - b.issue.line ||
        a.issue.col - b.issue.col ||
        a.i - b.i,
    )
    .map(({ issue }) => issue);
}

// ---------------------------------------------------------------------------------------------------
// zod issues -> ConfigIssues

type ZodIssue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

interface SchemaDef {
  type: string;
  shape?: Record<string, AnySchema>;
  innerType?: AnySchema;
  element?: AnySchema;
  valueType?: AnySchema;
  options?: AnySchema[];
  in?: AnySchema;
  values?: unknown[];
}

function defOf(schema: AnySchema): SchemaDef {
  return schema._zod.def as unknown as SchemaDef;
}

/** The schema itself and every schema it wraps (optional, default, union options...). */
function layers(schema: AnySchema, out: AnySchema[] = [], depth = 0): AnySchema[] {
  if (depth > 20) return out;
  out.push(schema);
  const def = defOf(schema);
  const inner = def.innerType ?? (def.type === "pipe" ? def.in : undefined);
  if (inner) layers(inner, out, depth + 1);
  if (def.type === "union") for (const option of def.options ?? []) layers(option, out, depth + 1);
  return out;
}

/** Candidate schemas for the value at `path`. */
function schemasAt(root: AnySchema, path: readonly PathSegment[]): AnySchema[] {
  let current = [root];
  for (const segment of path) {
    const next: AnySchema[] = [];
    for (const schema of current.flatMap((s) => layers(s))) {
      const def = defOf(schema);
      if (def.type === "object" && typeof segment === "string" && def.shape?.[segment])
        next.push(def.shape[segment]);
      else if (def.type === "array" && typeof segment === "number" && def.element) next.push(def.element);
      else if (def.type === "record" && def.valueType) next.push(def.valueType);
    }
    current = next;
  }
  return current;
}

/** Known keys of the mapping at `path`, narrowed by its `type:` when the schema is a tagged union. */
function knownKeys(root: AnySchema, path: readonly PathSegment[], value: unknown): string[] {
  const tag = isRecord(value) && typeof value.type === "string" ? value.type : undefined;
  const keys = new Set<string>();
  for (const schema of schemasAt(root, path).flatMap((s) => layers(s))) {
    const def = defOf(schema);
    if (def.type !== "object" || !def.shape) continue;
    const literal = def.shape.type ? defOf(def.shape.type).values : undefined;
    if (tag !== undefined && literal && !literal.includes(tag)) continue;
    for (const key of Object.keys(def.shape)) keys.add(key);
  }
  return [...keys];
}

function fixedCodeAt(root: AnySchema, path: readonly PathSegment[]): IssueCode | undefined {
  for (const schema of schemasAt(root, path).flatMap((s) => layers(s))) {
    const fixed = fixedIssueCodes.get(schema);
    if (fixed) return fixed.code;
  }
  return undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function valueAt(data: unknown, path: readonly PathSegment[]): { found: boolean; value: unknown } {
  let current = data;
  for (const segment of path) {
    if (Array.isArray(current) && typeof segment === "number" && segment < current.length)
      current = current[segment];
    else if (isRecord(current) && Object.hasOwn(current, String(segment))) current = current[String(segment)];
    else return { found: false, value: undefined };
  }
  return { found: true, value: current };
}

/** How a YAML value reads to the user: "a list", "an empty value". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a number";
  if (typeof value === "boolean") return `\`${String(value)}\``;
  return typeof value;
}

const EXPECTED: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "`true` or `false`",
};

function typeHint(expected: string, value: unknown): string {
  if (expected === "string" && (typeof value === "number" || typeof value === "boolean")) {
    return " (quote the value to keep it a string)";
  }
  if (expected === "boolean" && typeof value === "string" && /^(yes|no|on|off|y|n)$/i.test(value)) {
    return " (YAML 1.2 reads yes/no/on/off as strings)";
  }
  if (expected === "array" && (typeof value === "string" || isRecord(value)))
    return " (write `- item` lines or `[a, b]`)";
  return "";
}

function showValue(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return `\`${text.length > 60 ? `${text.slice(0, 60)}...` : text}\``;
}

function unknownKeyMessage(key: string, known: string[]): string {
  if (key === "client_secret" || key === "secret_value") {
    return `unknown key \`${key}\`: secrets are never written in desired-state files; the tool puts them in a sink (see \`secret:\`)`;
  }
  const suggestion = closest(key, known);
  if (suggestion) return `unknown key \`${key}\`; did you mean \`${suggestion}\`?`;
  return known.length > 0 && known.length <= 16
    ? `unknown key \`${key}\` (known keys: ${[...known].sort().join(", ")})`
    : `unknown key \`${key}\``;
}

function enumMessage(value: unknown, allowed: readonly unknown[], what = ""): string {
  const choices = allowed.map((v) => String(v));
  if (choices.length === 1) return `expected \`${choices[0]}\`, got ${describeOrShow(value)}`;
  const suggestion = typeof value === "string" ? closest(value, choices) : undefined;
  const head = `${describeOrShow(value)} is not ${what || "one of"} ${choices.join(", ")}`;
  return suggestion ? `${head}; did you mean \`${suggestion}\`?` : head;
}

function describeOrShow(value: unknown): string {
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? showValue(value)
    : describeValue(value);
}

function sizeMessage(issue: ZodIssue & { code: "too_small" | "too_big" }): string {
  const bound = Number(issue.code === "too_small" ? issue.minimum : issue.maximum);
  const small = issue.code === "too_small";
  if (issue.origin === "array")
    return small ? `needs at least ${bound} item${bound === 1 ? "" : "s"}` : `has more than ${bound} items`;
  if (issue.origin === "string") return small && bound === 1 ? "cannot be empty" : issue.message;
  return `must be ${small ? "at least" : "at most"} ${bound}`;
}

/** A branch of a union that got past the type check says more than the ones that did not. */
function bestBranch(branches: ZodIssue[][]): ZodIssue[] | undefined {
  return branches.find((branch) =>
    branch.every((i) => i.path.length > 0 || (i.code !== "invalid_type" && i.code !== "invalid_value")),
  );
}

function branchExpectation(branches: ZodIssue[][]): string {
  const parts = new Set<string>();
  for (const branch of branches) {
    for (const issue of branch) {
      if (issue.path.length > 0) continue;
      if (issue.code === "invalid_type") parts.add(EXPECTED[issue.expected] ?? issue.expected);
      if (issue.code === "invalid_value") for (const v of issue.values) parts.add(`\`${String(v)}\``);
    }
  }
  return [...parts].join(" or ");
}

export interface ZodIssueContext {
  /** Where the data was read from. */
  locator: Locator;
  /** The schema that produced the issues, to find known keys and fixed codes. */
  schema: AnySchema;
  /** The data that was parsed. */
  data: unknown;
  /** Where `data` sits in the document (`["clients", 3]` for one entry). */
  basePath: readonly PathSegment[];
}

/** Converts zod's issues into located issues with stable codes, one per problem (one per unknown key). */
export function fromZodIssues(issues: readonly ZodIssue[], ctx: ZodIssueContext): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) convertOne(issue, issue.path as PathSegment[], ctx, out);
  return out;
}

function convertOne(issue: ZodIssue, path: PathSegment[], ctx: ZodIssueContext, out: ConfigIssue[]): void {
  const full = [...ctx.basePath, ...path];
  const at = (code: IssueCode, message: string, anchor: Anchor = "value", where = full) =>
    out.push(issueAt(ctx.locator, where, code, message, anchor));
  const { found, value } = valueAt(ctx.data, path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = knownKeys(ctx.schema, path, value);
      for (const key of issue.keys) at("E_UNKNOWN_KEY", unknownKeyMessage(key, known), "key", [...full, key]);
      return;
    }
    case "invalid_type": {
      if (!found) {
        at("E_REQUIRED", `\`${String(path[path.length - 1] ?? "value")}\` is required`, "parent");
        return;
      }
      const fixed = fixedCodeAt(ctx.schema, path);
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      const message =
        fixed === "E_BAD_DURATION"
          ? `expected a duration such as \`30s\`, \`10m\`, \`24h\` or \`90d\`, got ${describeValue(value)}${typeof value === "number" ? ` (write \`${value}s\` or similar)` : ""}`
          : `expected ${expected}, got ${describeValue(value)}${typeHint(issue.expected, value)}`;
      at(fixed ?? "E_TYPE", message);
      return;
    }
    case "invalid_value":
      at("E_ENUM", enumMessage(value, issue.values));
      return;
    case "invalid_union": {
      if ("discriminator" in issue && issue.discriminator !== undefined) {
        const options = (issue as { options?: unknown[] }).options ?? [];
        if (!found)
          at(
            "E_REQUIRED",
            `\`${String(issue.discriminator)}\` is required (one of ${options.join(", ")})`,
            "parent",
          );
        else at("E_ENUM", enumMessage(value, options));
        return;
      }
      const branch = bestBranch(issue.errors);
      if (branch) {
        for (const sub of branch) convertOne(sub, [...path, ...(sub.path as PathSegment[])], ctx, out);
        return;
      }
      at(
        "E_TYPE",
        `expected ${branchExpectation(issue.errors) || "another value"}, got ${describeValue(value)}`,
      );
      return;
    }
    case "invalid_key": {
      const sub = issue.issues[0];
      const code =
        (sub?.code === "custom" ? (sub.params?.code as IssueCode | undefined) : undefined) ?? "E_BAD_KEY";
      at(code, sub?.message ?? "invalid key", "key");
      return;
    }
    case "custom":
      at((issue.params?.code as IssueCode | undefined) ?? "E_INVALID", issue.message);
      return;
    case "too_small":
    case "too_big":
      at("E_RANGE", sizeMessage(issue));
      return;
    case "invalid_format":
      at(fixedCodeAt(ctx.schema, path) ?? "E_FORMAT", issue.message);
      return;
    default:
      at("E_INVALID", issue.message);
  }
}

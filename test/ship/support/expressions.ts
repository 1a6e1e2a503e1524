/**
 * GitHub Actions expressions (`${{ ... }}` and step `if:` conditions), as far as the workflows in
 * examples/ and .github/ use them: literals, context property access (`a.b`, `a['b']`), `!`, `==`,
 * `!=`, `&&`, `||`, parentheses and the status functions. Comparison and truthiness follow GitHub's
 * documented rules (strings compare case-insensitively; mixed types compare as numbers; `&&` and `||`
 * yield an operand). Anything else is a parse error, so a workflow cannot use a construct these tests
 * would silently misread.
 */

export type Value = string | number | boolean | null | { [key: string]: unknown } | unknown[];

export type Node =
  | { kind: "literal"; value: Value }
  | { kind: "context"; name: string }
  | { kind: "member"; object: Node; property: string }
  | { kind: "not"; operand: Node }
  | { kind: "binary"; op: "==" | "!=" | "&&" | "||"; left: Node; right: Node }
  | { kind: "call"; name: string; args: Node[] };

export const STATUS_FUNCTIONS = ["success", "failure", "always", "cancelled"] as const;
const CONTEXTS = ["github", "env", "secrets", "steps", "vars", "runner", "job", "needs", "inputs"];

type Token = { t: "str" | "num" | "id" | "op"; v: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= source.length) throw new Error(`unterminated string in: ${source}`);
        if (source[i] === "'" && source[i + 1] === "'") {
          value += "'";
          i += 2;
        } else if (source[i] === "'") {
          i++;
          break;
        } else {
          value += source[i];
          i++;
        }
      }
      tokens.push({ t: "str", v: value });
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ t: "num", v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ t: "id", v: m[0] });
      i += m[0].length;
    } else {
      const two = source.slice(i, i + 2);
      if (["==", "!=", "&&", "||"].includes(two)) {
        tokens.push({ t: "op", v: two });
        i += 2;
      } else if ("!().[],".includes(c)) {
        tokens.push({ t: "op", v: c });
        i++;
      } else {
        throw new Error(`unsupported character '${c}' in: ${source}`);
      }
    }
  }
  return tokens;
}

/** Parses one expression (without the `${{ }}`); throws on anything outside the supported subset. */
export function parseExpression(source: string): Node {
  const tokens = tokenize(source);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isOp = (v: string): boolean => peek()?.t === "op" && peek()?.v === v;
  const expect = (v: string): void => {
    if (!isOp(v)) throw new Error(`expected '${v}' at token ${pos} in: ${source}`);
    pos++;
  };
  function or(): Node {
    let left = and();
    while (isOp("||")) {
      pos++;
      left = { kind: "binary", op: "||", left, right: and() };
    }
    return left;
  }
  function and(): Node {
    let left = equality();
    while (isOp("&&")) {
      pos++;
      left = { kind: "binary", op: "&&", left, right: equality() };
    }
    return left;
  }
  function equality(): Node {
    let left = unary();
    while (isOp("==") || isOp("!=")) {
      const op = (peek() as Token).v as "==" | "!=";
      pos++;
      left = { kind: "binary", op, left, right: unary() };
    }
    return left;
  }
  function unary(): Node {
    if (isOp("!")) {
      pos++;
      return { kind: "not", operand: unary() };
    }
    return postfix();
  }
  function postfix(): Node {
    let node = primary();
    for (;;) {
      if (isOp(".")) {
        pos++;
        const name = peek();
        if (name?.t !== "id") throw new Error(`expected a property name after '.' in: ${source}`);
        pos++;
        node = { kind: "member", object: node, property: name.v };
      } else if (isOp("[")) {
        pos++;
        const key = peek();
        if (key?.t !== "str") throw new Error(`only string indexes are supported in: ${source}`);
        pos++;
        expect("]");
        node = { kind: "member", object: node, property: key.v };
      } else {
        return node;
      }
    }
  }
  function primary(): Node {
    const token = peek();
    if (!token) throw new Error(`unexpected end of: ${source}`);
    pos++;
    if (token.t === "str") return { kind: "literal", value: token.v };
    if (token.t === "num") return { kind: "literal", value: Number(token.v) };
    if (token.t === "op" && token.v === "(") {
      const inner = or();
      expect(")");
      return inner;
    }
    if (token.t === "id") {
      if (token.v === "true" || token.v === "false") return { kind: "literal", value: token.v === "true" };
      if (token.v === "null") return { kind: "literal", value: null };
      if (isOp("(")) {
        pos++;
        if (!(STATUS_FUNCTIONS as readonly string[]).includes(token.v)) {
          throw new Error(`unsupported function ${token.v}() in: ${source}`);
        }
        expect(")");
        return { kind: "call", name: token.v, args: [] };
      }
      if (!CONTEXTS.includes(token.v)) throw new Error(`unknown context '${token.v}' in: ${source}`);
      return { kind: "context", name: token.v };
    }
    throw new Error(`unexpected '${token.v}' in: ${source}`);
  }
  const node = or();
  if (pos !== tokens.length) throw new Error(`unexpected '${tokens[pos]?.v}' in: ${source}`);
  return node;
}

/** Every `a.b.c` chain in an expression, as its property names (`["steps", "plan", "outputs"]`). */
export function references(node: Node): string[][] {
  const chain = (n: Node): string[] | null =>
    n.kind === "context"
      ? [n.name]
      : n.kind === "member"
        ? ((p) => (p ? [...p, n.property] : null))(chain(n.object))
        : null;
  switch (node.kind) {
    case "context":
    case "member":
      return [chain(node) ?? []];
    case "not":
      return references(node.operand);
    case "binary":
      return [...references(node.left), ...references(node.right)];
    case "call":
      return node.args.flatMap(references);
    default:
      return [];
  }
}

function usesStatusFunction(node: Node): boolean {
  switch (node.kind) {
    case "call":
      return true;
    case "not":
      return usesStatusFunction(node.operand);
    case "binary":
      return usesStatusFunction(node.left) || usesStatusFunction(node.right);
    default:
      return false;
  }
}

export interface JobStatus {
  failed: boolean;
  cancelled: boolean;
}

function lookup(object: Value, property: string): Value {
  if (object === null || typeof object !== "object" || Array.isArray(object)) return null;
  const key = Object.keys(object).find((k) => k.toLowerCase() === property.toLowerCase());
  return key === undefined ? null : ((object[key] as Value | undefined) ?? null);
}

function toNumber(value: Value): number {
  if (value === null) return 0;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number") return value;
  if (typeof value === "string") return value.trim() === "" ? 0 : Number(value);
  return Number.NaN;
}

function equal(a: Value, b: Value): boolean {
  if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
  if (a === null && b === null) return true;
  if (typeof a === typeof b && typeof a !== "object") return a === b;
  if (typeof a === "object" && typeof b === "object" && a !== null && b !== null) return a === b;
  const x = toNumber(a);
  const y = toNumber(b);
  return !Number.isNaN(x) && !Number.isNaN(y) && x === y;
}

export function truthy(value: Value): boolean {
  return !(value === false || value === 0 || value === "" || value === null || Number.isNaN(value));
}

export function evaluate(node: Node, contexts: Record<string, Value>, status: JobStatus): Value {
  switch (node.kind) {
    case "literal":
      return node.value;
    case "context":
      return contexts[node.name] ?? null;
    case "member":
      return lookup(evaluate(node.object, contexts, status), node.property);
    case "not":
      return !truthy(evaluate(node.operand, contexts, status));
    case "binary": {
      const left = evaluate(node.left, contexts, status);
      if (node.op === "&&") return truthy(left) ? evaluate(node.right, contexts, status) : left;
      if (node.op === "||") return truthy(left) ? left : evaluate(node.right, contexts, status);
      const same = equal(left, evaluate(node.right, contexts, status));
      return node.op === "==" ? same : !same;
    }
    case "call":
      if (node.name === "always") return true;
      if (node.name === "cancelled") return status.cancelled;
      if (node.name === "failure") return status.failed && !status.cancelled;
      return !status.failed && !status.cancelled;
  }
}

/** A step's or job's `if:`: with or without `${{ }}`; no status function means `success() && (...)`. */
export function evaluateCondition(
  condition: string | boolean | undefined,
  contexts: Record<string, Value>,
  status: JobStatus,
): boolean {
  if (condition === undefined) return !status.failed && !status.cancelled;
  if (typeof condition === "boolean") return condition && !status.failed && !status.cancelled;
  const inner = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(condition)?.[1] ?? condition;
  const node = parseExpression(inner);
  const value = truthy(evaluate(node, contexts, status));
  return usesStatusFunction(node) ? value : value && !status.failed && !status.cancelled;
}

/** Every `${{ expr }}` in a string, replaced by its value as GitHub writes it (null as ""). */
export function interpolate(text: string, contexts: Record<string, Value>, status: JobStatus): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, expr: string) => {
    const value = evaluate(parseExpression(expr), contexts, status);
    if (value === null) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  });
}

/** The expressions inside a string's `${{ }}`s. */
export function expressionsIn(text: string): string[] {
  return [...text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1] as string);
}

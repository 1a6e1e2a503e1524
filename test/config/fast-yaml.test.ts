import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fastLocator, parseFastYaml } from "../../src/config/fast-yaml.js";
import { type Anchor, type PathSegment, locate } from "../../src/config/issues.js";
import { parseYamlFile, toPlainData } from "../../src/config/yaml-source.js";
import { ACCOUNT, FIXTURES, ROOT } from "./support.js";

/**
 * The fast reader against the `yaml` package: whenever the fast reader accepts a text, its data must
 * equal `toJS()` of the `yaml` document and every location it gives must equal `locate` on that
 * document, for every path in the data, every anchor, and paths that lead nowhere.
 */

const ANCHORS: Anchor[] = ["value", "key", "parent"];

/** Every path in `data`, plus a missing child of each (a key, an index, a step into a scalar). */
function pathsOf(data: unknown, base: PathSegment[] = [], out: PathSegment[][] = []): PathSegment[][] {
  out.push(base);
  if (Array.isArray(data)) {
    data.forEach((item, i) => pathsOf(item, [...base, i], out));
    out.push([...base, data.length], [...base, "missing"]);
  } else if (typeof data === "object" && data !== null) {
    for (const [key, value] of Object.entries(data)) pathsOf(value, [...base, key], out);
    out.push([...base, "missing"], [...base, 0], [...base, "missing", "deeper"]);
  } else {
    out.push([...base, "inside"], [...base, 0]);
  }
  return out;
}

/** Checks the fast reader on `text`; returns whether it accepted it. */
function agreesWithYaml(text: string): boolean {
  const fast = parseFastYaml(text);
  if (fast === undefined) return false;
  const parsed = parseYamlFile(text, "f.yaml");
  expect(parsed.errors, text).toEqual([]);
  expect(parsed.warnings, text).toEqual([]);
  expect(parsed.documents, text).toHaveLength(1);
  const ctx = parsed.documents[0];
  if (ctx === undefined) throw new Error("unreachable");
  expect(fast.data, text).toStrictEqual(toPlainData(ctx).data);
  const locator = fastLocator("f.yaml", fast);
  const asked = pathsOf(fast.data).flatMap((path) => ANCHORS.map((anchor) => ({ path, anchor })));
  const where = (at: (typeof asked)[number], { line, col }: { line: number; col: number }) =>
    `${JSON.stringify(at.path)} ${at.anchor} ${line}:${col}`;
  // One comparison per text (not one per path): a mismatch still shows every path that differs.
  expect(
    asked.map((at) => where(at, locator.locate(at.path, at.anchor))),
    text,
  ).toEqual(asked.map((at) => where(at, locate(ctx, at.path, at.anchor))));
  return true;
}

const ACCEPTED: Record<string, string> = {
  "scalars of every kind": [
    "a: plain text",
    "b: 'single # not a comment'",
    'c: "double: quoted"',
    "d: trailing spaces   ",
    "e: a#b",
    "f: https://example.com:8443/path?q=1#frag",
    "g: a:b",
    "h: ~",
    "i: null",
    "j: true",
    "k: False",
    "l: yes",
    "m: 2026-01-01",
    "n: 1.2.3",
    "o: 0123abc",
    "p: +x",
    "q: 1e",
    "r: naïve ☕ 名前",
    "s: a  two  spaces",
    "t: '' ",
    'u: ""',
    "v: a, b",
    "w: a]b",
    "x_y-z: http://[::1]:8080/cb",
  ].join("\n"),
  "comments and blank lines everywhere": `# head

a: 1x # trailing
  # indented comment
b:
    # before nested
  c: d   # after

# between
e: [x, y] # after flow
f: 'q' # after quoted
`,
  "empty values": "a:\nb: x\nc:\n  d:\ne:",
  "nested mappings and sequences": `clients:
  - client_name: one
    scopes:
      - a
      - b
    rotation:
      every: 30d
      grace: 1h
    secret:
      key: k
  - client_name: two
    grant_types: [authorization_code, refresh_token]
    nested:
      - x:
        - deep
      - [a, 'b', "c"]
      - plain
`,
  "sequences at the key's indentation": `clients:
- a: 1x
  b:
  - y
  - z
- c: w
other: v
`,
  "flow sequences": "a: []\nb: [ ]\nc: [ x ,y,  'z z' , \"w\" ]\nd: [https://a.example/x]\ne: [a b, c]",
  "flow mappings": [
    "secret: {key: k}",
    "rotation: {every: 30d, grace: '1h'}",
    "e: {}",
    'f: { a: x y , b: "z" }  # c',
    "g: {a: https://x.example/a, b: ~}",
    "h:",
    "  - {a: b}",
    "  - c",
  ].join("\n"),
  "wide item indentation": "list:\n  -   a: x\n      b: y\n  -  c\n  -\u0020[d]\n",
  "no final newline": "a: b\nc: [d]",
  "non-breaking spaces are content": "a: x\u00a0\nb: \u00a0y",
  "nested flow mappings":
    "sinks: {default: {type: file, dir: ./secrets}, other: {}}\nownership: {git: {ref: refs/x}}\na: { b: { c: 'd' } , e: f }\n",
  "plain decimal integers": "a: 0\nb: 5\nd: 999999999999999\ne: [1, 2, 30]\nf: {g: 100}\n",
};

const REFUSED: Record<string, string> = {
  "document marker": "---\na: b\n",
  "end marker": "a: b\n...\n",
  directive: "%YAML 1.2\n---\na: b\n",
  anchor: "a: &x b\nc: *x\n",
  "merge key": "x-base: {}\n<<: b\n",
  "merge value": "a: <<\n",
  tag: "a: !str b\n",
  "block scalar": "a: |\n  text\n",
  "folded scalar": "a: >\n  text\n",
  "integer with a plus sign": "a: +1\n",
  "integer with a leading zero": "a: 007\n",
  "negative integer": "a: -7\n",
  "integer past 15 digits": "a: 1234567890123456\n",
  float: "a: 1.5\n",
  hex: "a: 0x1f\n",
  infinity: "a: .inf\n",
  "flow float": "a: [1.0]\n",
  tab: "a:\tb\n",
  "lone CR": "a: b\rc: d\n",
  "CR at the end": "a: b\r",
  bom: "\ufeffa: b\n",
  "multi-line plain": "a: b\n  c\n",
  "escape in double quotes": 'a: "x\\ny"\n',
  "quote in single quotes": "a: 'it''s'\n",
  "multi-line quoted": 'a: "x\n  y"\n',
  "multi-line flow": "a: [x,\n  y]\n",
  "flow pair": "a: [b: c]\n",
  "flow key without value": "a: {b:c}\n",
  "flow empty value": "a: {b: }\n",
  "flow mapping of a list": "a: {b: [c]}\n",
  "text after a nested flow mapping": "a: {b: {c: d} e}\n",
  "nested flow mapping left open": "a: {b: {c: d}\n",
  "flow mappings nested too deep": `a: ${"{b: ".repeat(10)}c${"}".repeat(10)}\n`,
  "flow quoted key": 'a: {"b": c}\n',
  "flow trailing comma": "a: {b: c,}\n",
  "flow duplicate key": "a: {b: c, b: d}\n",
  "flow mapping in a flow sequence": "a: [{b: c}]\n",
  "trailing comma": "a: [x,]\n",
  "text after flow": "a: [x] y\n",
  "top-level sequence": "- a\n- b\n",
  "duplicate key": "a: b\na: c\n",
  "quoted key": '"a": b\n',
  "explicit key": "? a\n: b\n",
  "nested compact mapping": "a: b: c\n",
  "empty item": "a:\n  -\n    b: c\n",
  "item dash": "a: - b\n",
  "nested sequence item": "a:\n  - - b\n",
  "reserved key": "true: x\n",
  "proto key": "__proto__: x\n",
  "bad indentation": "a:\n    b: c\n  d: e\n",
  empty: "",
  "comments only": "# nothing\n",
};

describe("parseFastYaml against the yaml package", () => {
  it.each(Object.entries(ACCEPTED))("accepts and agrees: %s", (_name, text) => {
    expect(agreesWithYaml(text)).toBe(true);
  });

  it.each(Object.entries(ACCEPTED))("accepts and agrees with CR LF line ends: %s", (_name, text) => {
    expect(agreesWithYaml(text.replaceAll("\n", "\r\n"))).toBe(true);
  });

  it.each(Object.entries(REFUSED))("refuses: %s", (_name, text) => {
    expect(parseFastYaml(text)).toBeUndefined();
  });

  it("accepts and agrees on every desired-state file that it reads (examples and fixtures)", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.ya?ml$/.test(name)) files.push(path);
      }
    };
    walk(join(ROOT, "config/examples"));
    walk(FIXTURES);
    let accepted = 0;
    for (const file of files) if (agreesWithYaml(readFileSync(file, "utf8"))) accepted++;
    for (const name of ["automation.yaml", "cli.yaml", "dashboard.yaml"]) {
      expect(parseFastYaml(readFileSync(join(ROOT, "config/examples/desired", name), "utf8"))).toBeDefined();
    }
    expect(accepted).toBeGreaterThan(files.length / 2);
  });

  it("agrees on generated documents of random shape and tricky scalars", () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const pick = <T>(items: readonly T[]): T => items[random(items.length)] as T;
    const scalars = [
      "x",
      "two words",
      "https://a.example/cb?x=1",
      "a:b",
      "a#b",
      "~",
      "null",
      "true",
      "FALSE",
      "no",
      "0abc",
      "1.2.3",
      "'q # q'",
      '"d: d"',
      "''",
      "7",
      "a: b",
      "&anchor",
      "-x",
      "x  ",
      "é",
    ];
    const keys = ["a", "b_c", "d-e", "client_name", "x-f", "g"];
    const comment = () => (random(4) === 0 ? "  # note" : "");
    const block = (indent: string, depth: number): string[] => {
      const lines: string[] = [];
      const used = new Set<string>();
      for (let i = 0, n = 1 + random(4); i < n; i++) {
        const key = pick(keys);
        if (used.has(key)) continue;
        used.add(key);
        if (random(5) === 0) lines.push(`${indent}# comment`, "");
        const kind = depth > 2 ? 0 : random(5);
        if (kind === 0) lines.push(`${indent}${key}: ${pick(scalars)}${comment()}`);
        else if (kind === 1) lines.push(`${indent}${key}:${comment()}`);
        else if (kind === 2 && random(2)) {
          const items = Array.from({ length: random(4) }, () => pick(scalars.slice(0, 12)));
          lines.push(`${indent}${key}: [${items.join(random(2) ? ", " : ",")}]${comment()}`);
        } else if (kind === 2) {
          const pairs = [...new Set(Array.from({ length: random(3) }, () => pick(keys)))].map(
            (k) => `${k}: ${pick(scalars.slice(0, 12))}`,
          );
          lines.push(`${indent}${key}: {${pairs.join(random(2) ? ", " : ",")}}${comment()}`);
        } else if (kind === 3) {
          lines.push(`${indent}${key}:`, ...block(`${indent}  `, depth + 1));
        } else {
          const itemIndent = random(2) ? indent : `${indent}  `;
          lines.push(`${indent}${key}:`);
          for (let j = 0, m = 1 + random(3); j < m; j++) {
            if (random(2)) lines.push(`${itemIndent}- ${pick(scalars)}`);
            else {
              const [first = "", ...rest] = block(`${itemIndent}  `, depth + 1);
              lines.push(`${itemIndent}- ${first.trimStart()}`, ...rest);
            }
          }
        }
      }
      return lines;
    };
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      const text = block("", 0).join("\n") + (random(2) ? "\n" : "");
      if (agreesWithYaml(text)) accepted++;
    }
    expect(accepted).toBeGreaterThan(60);
  });

  it("agrees on randomly edited copies of a desired file (refusing the broken ones)", () => {
    const base = `# head
account_id: ${ACCOUNT}
clients:
  - client_name: app-1   # c
    grant_types: [authorization_code, refresh_token]
    redirect_uris:
      - https://app-1.example.com/callback
      - 'https://x.example/cb'
    secret: {key: k, sink: "s"}
    rotation:
      every: 30d
  - client_name: "b"
    ensure: absent
x-y:
- a
- b: c
  d:
`;
    const edits = [" ", ":", "#", "-", "[", "]", "{", "}", ",", "'", '"', "\n", "&", "*", "!", "|", ">"];
    edits.push(
      "~",
      "a",
      "1",
      ".",
      "?",
      "  ",
      "\n  ",
      "\n- ",
      "null",
      "true",
      "<<",
      "%",
      "\\",
      "\u00a0",
      "\r\n",
      "\r",
    );
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    let accepted = 0;
    for (let n = 0; n < 600; n++) {
      let text = base;
      for (let m = 0, count = 1 + random(3); m < count; m++) {
        const at = random(text.length + 1);
        const edit = edits[random(edits.length)] as string;
        const op = random(3);
        if (op === 0) text = text.slice(0, at) + edit + text.slice(at);
        else if (op === 1) text = text.slice(0, at) + text.slice(at + 1 + random(3));
        else text = text.slice(0, at) + edit + text.slice(at + 1);
      }
      if (agreesWithYaml(text)) accepted++;
    }
    expect(accepted).toBeGreaterThan(120);
  });

  it("accepts and agrees on a generated file like the benchmark's", () => {
    let text = `account_id: ${ACCOUNT}\nclients:\n`;
    for (let i = 0; i < 50; i++) {
      text += `  - client_name: app-${i}
    token_endpoint_auth_method: ${i % 5 === 0 ? "none" : "client_secret_basic"}
    grant_types: [authorization_code, refresh_token]
    redirect_uris:
      - https://app-${i}.example.com/callback
    scopes: [account-settings.read, zone.read]
`;
    }
    expect(agreesWithYaml(text)).toBe(true);
  });
});

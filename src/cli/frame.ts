import { setFlagsFromString } from "node:v8";
import { describeBadDuration, formatDuration, tryParseDuration } from "../config/duration.js";
import { closest } from "../config/suggest.js";
import { GitOpsError } from "../errors.js";
import { type CliContext, type Command, ExitCode } from "./io.js";

/**
 * The CLI frame: every verb declares its options once, as a table of typed options (src/cli/verbs.ts),
 * and parsing, validation, `--help`, the top-level usage and the README's option table all come from
 * that table. A verb's code is loaded only after its arguments have been read and checked, so a typo
 * or `--help` costs no more than reading the table.
 *
 * The grammar: `--name VALUE`, `--name=VALUE`, `-c VALUE`, `-cVALUE`, flags without a value, no
 * positional arguments. A repeated option keeps the last value unless it is repeatable. An unknown
 * option is an error (E_USAGE, exit 1) that suggests the nearest known one.
 */

/** One option of a verb: how it is shown, and how its text becomes a value of type `T`. */
export interface Option<T> {
  readonly kind: "flag" | "string" | "choice" | "integer" | "duration" | "rate" | "custom";
  /** One sentence or a few, wrapped by the help renderer; no line breaks of its own. */
  readonly help: string;
  readonly short?: string;
  /** The value's placeholder in usage and help (`FILE`, `N`, `DURATION`); none for flags. */
  readonly value?: string;
  /** The words a choice takes; shown after the help when the placeholder does not list them. */
  readonly choices?: readonly string[];
  /** Repeatable: every occurrence is kept, in order (`--client a --client b`). */
  readonly multiple?: boolean;
  /** The default as help and the README show it; absent when there is none. */
  readonly defaultText?: string;
  /** The value when the option is not given. */
  readonly initial: T;
  /** The value for one occurrence's text; throws {@link UsageError}. Absent for flags. */
  readonly parse?: (text: string, flag: string) => unknown;
}

/** A verb's option table, keyed by long name without the dashes. */
export type Options = Record<string, Option<unknown>>;

/** What a verb's code receives: each option's value, typed by its declaration. */
export type Values<O extends Options> = { readonly [K in keyof O]: O[K] extends Option<infer T> ? T : never };

/** A verb as the frame knows it: everything but its code. */
export interface VerbSpec<O extends Options = Options> {
  readonly name: string;
  /** One line for the top-level usage. */
  readonly summary: string;
  /** What the verb does, for its `--help`: paragraphs separated by blank lines, wrapped when shown. */
  readonly about: string;
  readonly options: O;
  /** The verb talks HTTP through the API client (see {@link quickHttpParser}). */
  readonly http?: boolean;
  /**
   * Rules between options (`--compromised` needs `--client`): a message when the combination is
   * refused, checked with the options before the verb's code is loaded.
   */
  check?(values: Values<O>): string | undefined;
  /** Text after the options in `--help` (exit codes, notes), kept as written. */
  readonly epilogue?: string;
}

/** A verb's code: the context and its checked options in, the exit code out. */
export type VerbRun<S extends VerbSpec> = (ctx: CliContext, values: Values<S["options"]>) => Promise<number>;

/** A usage error: bad option, bad value, bad combination. Exit 1 with a hint to `--help`. */
export class UsageError extends GitOpsError {
  constructor(message: string) {
    super("E_USAGE", message);
  }
}

export function defineVerb<O extends Options>(spec: VerbSpec<O>): VerbSpec<O> {
  for (const name of Object.keys(spec.options)) {
    if (name === "help") throw new Error(`${spec.name}: --help is the frame's own option`);
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Option builders. Each one fixes the value type, so a verb's code sees `number`, `"text" | "json"`,
// `string | undefined` without a cast.

interface Common {
  help: string;
  short?: string;
}

/** A switch: false unless given; takes no value. */
export function flag(help: string, options: { short?: string } = {}): Option<boolean> {
  return { kind: "flag", help, initial: false, ...options };
}

interface TextSpec extends Common {
  value: string;
  /** Refuse an empty or blank value. */
  nonEmpty?: boolean;
  defaultText?: string;
}

function parseText(nonEmpty: boolean | undefined) {
  return (text: string, flag: string): string => {
    if (nonEmpty && text.trim() === "") throw new UsageError(`${flag}: must not be empty`);
    return text;
  };
}

/** A free-form string, `undefined` when not given (or `default`). */
export function text(spec: TextSpec & { default: string }): Option<string>;
export function text(spec: TextSpec): Option<string | undefined>;
export function text(spec: TextSpec & { default?: string }): Option<string | undefined> {
  const { default: initial, nonEmpty, ...shown } = spec;
  return {
    kind: "string",
    ...shown,
    ...(initial !== undefined && spec.defaultText === undefined ? { defaultText: initial } : {}),
    initial,
    parse: parseText(nonEmpty),
  };
}

/** A repeatable string: every occurrence, in order; empty when not given. */
export function texts(spec: TextSpec): Option<string[]> {
  const { nonEmpty, ...shown } = spec;
  return { kind: "string", ...shown, multiple: true, initial: [], parse: parseText(nonEmpty) };
}

/** `a, b or c` */
function orList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;
}

interface ChoiceSpec<C extends string> extends Common {
  default?: C;
  defaultText?: string;
  value?: string;
}

/** One of a fixed set of words. A near miss gets a suggestion (`--format jsno`: did you mean json?). */
export function choice<const C extends string>(
  choices: readonly C[],
  spec: ChoiceSpec<C> & { default: C },
): Option<C>;
export function choice<const C extends string>(
  choices: readonly C[],
  spec: ChoiceSpec<C>,
): Option<C | undefined>;
export function choice<const C extends string>(
  choices: readonly C[],
  spec: ChoiceSpec<C>,
): Option<C | undefined> {
  const { default: initial, ...shown } = spec;
  return {
    kind: "choice",
    value: choices.join("|"),
    choices,
    ...shown,
    ...(initial !== undefined && spec.defaultText === undefined ? { defaultText: initial } : {}),
    initial,
    parse: (value, flag) => {
      if ((choices as readonly string[]).includes(value)) return value;
      const near = closest(value, choices);
      throw new UsageError(
        `${flag} must be ${orList(choices)}, not '${value}'${near ? `; did you mean ${near}?` : ""}`,
      );
    },
  };
}

interface IntegerSpec extends Common {
  min: number;
  max: number;
  value?: string;
  default?: number;
  defaultText?: string;
}

/** A whole number from `min` to `max` (digits only: no sign, no fraction, no hex). */
export function integer(spec: IntegerSpec & { default: number }): Option<number>;
export function integer(spec: IntegerSpec): Option<number | undefined>;
export function integer(spec: IntegerSpec): Option<number | undefined> {
  const { default: initial, min, max, ...shown } = spec;
  return {
    kind: "integer",
    value: "N",
    ...shown,
    ...(initial !== undefined && spec.defaultText === undefined ? { defaultText: String(initial) } : {}),
    initial,
    parse: (value, flag) => {
      if (!/^\d+$/.test(value.trim())) {
        throw new UsageError(`${flag}: '${value}' is not a whole number (${min} to ${max})`);
      }
      const n = Number(value);
      if (n < min || n > max) throw new UsageError(`${flag}: ${n} is not between ${min} and ${max}`);
      return n;
    },
  };
}

interface DurationSpec extends Common {
  /** Bounds in seconds. */
  min: number;
  max: number;
  /** Seconds. */
  default: number;
}

/**
 * A duration in the one grammar the project uses everywhere (src/config/duration.ts: `30s`, `10m`,
 * `1h30m`), carried as whole seconds. A bare number is refused, as in the config files: `30` could be
 * seconds or minutes.
 */
export function duration(spec: DurationSpec): Option<number> {
  const { default: initial, min, max, ...shown } = spec;
  return {
    kind: "duration",
    value: "DURATION",
    ...shown,
    defaultText: formatDuration(initial),
    initial,
    parse: (value, flag) => {
      const seconds = tryParseDuration(value);
      if (seconds === undefined) throw new UsageError(`${flag}: ${describeBadDuration(value)}`);
      if (seconds < min || seconds > max) {
        throw new UsageError(
          `${flag}: ${value} is not between ${formatDuration(min)} and ${formatDuration(max)}`,
        );
      }
      return seconds;
    },
  };
}

/** A share from 0 to 1 (`0.05`); `undefined` when not given. */
export function rate(spec: Common & { value?: string }): Option<number | undefined> {
  return {
    kind: "rate",
    value: "RATE",
    ...spec,
    initial: undefined,
    parse: (value, flag) => {
      const n = Number(value);
      if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1) {
        throw new UsageError(`${flag}: '${value}' is not a rate between 0 and 1`);
      }
      return n;
    },
  };
}

/** A value with a grammar of its own (`QUOTA/SECONDS`); `parse` throws {@link UsageError}. */
export function custom<T>(
  spec: Common & { value: string; defaultText?: string; parse: (text: string, flag: string) => T },
): Option<T | undefined> {
  return { kind: "custom", ...spec, initial: undefined };
}

// ---------------------------------------------------------------------------------------------
// Parsing.

/** True when the arguments ask for help (`-h` or `--help` anywhere). */
export function wantsHelp(args: readonly string[]): boolean {
  return args.some((a) => a === "--help" || a === "-h");
}

/** The near option to suggest for an unknown one: a unique prefix match first, then a near spelling. */
function suggestOption(name: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter((k) => k.startsWith(name));
  if (prefixed.length === 1) return prefixed[0];
  return closest(name, known);
}

/**
 * Reads `args` against a verb's table: every value parsed and checked, the verb's own rules applied.
 * Throws {@link UsageError} on the first problem.
 */
export function parseOptions<O extends Options>(spec: VerbSpec<O>, args: readonly string[]): Values<O> {
  const options: Options = spec.options;
  const known = [...Object.keys(options), "help"];
  const shorts = new Map<string, string>([["h", "help"]]);
  for (const [name, option] of Object.entries(options)) if (option.short) shorts.set(option.short, name);
  const values: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(options)) {
    values[name] = Array.isArray(option.initial) ? [...(option.initial as unknown[])] : option.initial;
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    let name: string;
    let inline: string | undefined;
    let shown: string;
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      shown = `--${name}`;
      if (!known.includes(name)) {
        const near = suggestOption(name, known);
        throw new UsageError(`unknown option ${shown}${near ? `; did you mean --${near}?` : ""}`);
      }
    } else if (arg.startsWith("-") && arg.length > 1 && arg !== "--") {
      const letter = arg.slice(1, 2);
      const long = shorts.get(letter);
      if (!long) {
        const near = [...shorts.keys()].find((k) => k.toLowerCase() === letter.toLowerCase());
        throw new UsageError(`unknown option -${letter}${near ? `; did you mean -${near}?` : ""}`);
      }
      name = long;
      inline = arg.length > 2 ? arg.slice(2) : undefined;
      shown = `-${letter}`;
    } else {
      throw new UsageError(`unexpected argument '${arg}': ${spec.name} takes options only`);
    }
    if (name === "help") continue;
    const option = options[name] as Option<unknown>;
    if (option.kind === "flag") {
      if (inline !== undefined) throw new UsageError(`${shown} takes no value`);
      values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("-") && next !== "-")) {
        throw new UsageError(
          `${shown} needs a value (${option.value ?? "VALUE"})` +
            (next === undefined ? "" : `; to give one that starts with '-', write --${name}=${next}`),
        );
      }
      value = next;
      i++;
    }
    const parsed = (option.parse as NonNullable<Option<unknown>["parse"]>)(value, `--${name}`);
    if (option.multiple) (values[name] as unknown[]).push(parsed);
    else values[name] = parsed;
  }
  const typed = values as Values<O>;
  const refused = spec.check?.(typed);
  if (refused !== undefined) throw new UsageError(refused);
  return typed;
}

// ---------------------------------------------------------------------------------------------
// Running a verb.

const PROGRAM = "cf-oauth-gitops";

/** `error [E_USAGE]: plan: ...` and where to look. */
function usageMessage(verb: string, error: UsageError): string {
  return `error [${error.code}]: ${verb}: ${error.message}\nRun '${PROGRAM} ${verb} --help' for its options.\n`;
}

/**
 * Runs a verb: `--help` from the table, the options parsed and checked, and only then the verb's code
 * loaded (`load` may be a dynamic import) and called. A usage error, from the table or from the verb
 * itself, is printed here with the hint to `--help`, and is exit 1; other errors are the caller's.
 */
export async function runVerb<S extends VerbSpec>(
  spec: S,
  load: () => Promise<VerbRun<S>> | VerbRun<S>,
  ctx: CliContext,
): Promise<number> {
  if (wantsHelp(ctx.args)) {
    ctx.stdout.write(renderHelp(spec));
    return ExitCode.ok;
  }
  try {
    const values = parseOptions(spec, ctx.args) as Values<S["options"]>;
    if (spec.http && ctx.ownsProcess) quickHttpParser();
    const run = await load();
    return await run(ctx, values);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    ctx.stderr.write(usageMessage(spec.name, error));
    return ExitCode.error;
  }
}

/**
 * The API client's HTTP parser (undici's llhttp) is WebAssembly, which V8 compiles quickly first and
 * then again, optimised, on a background thread. Neither a one-shot command (a handful of responses)
 * nor the daemon (a few requests a minute) gains from the second compile, and it costs both: a
 * one-shot command waits for it before it can exit (50 to 100 ms), and it is the daemon's largest
 * memory peak (about 30 MB of its RSS high-water mark); docs/BENCHMARKS.md (cli-start) has the
 * figures. Set before the verb's code, and so before any WebAssembly, is loaded. Only verbs that talk
 * HTTP set it: changing a V8 flag makes Node compile its own modules again instead of taking them
 * from its code cache, which costs `validate` about 20 ms for nothing. Only the program sets it
 * ({@link CliContext.ownsProcess}): a test running a verb in its own process keeps its V8 as it is.
 */
function quickHttpParser(): void {
  setFlagsFromString("--liftoff-only");
}

/** A verb as a {@link Command}, for callers that hold its code already (tests, `demo`). */
export function command<S extends VerbSpec>(spec: S, run: VerbRun<S>): Command {
  return (ctx) => runVerb(spec, () => run, ctx);
}

// ---------------------------------------------------------------------------------------------
// Help, usage and the README table.

const WIDTH = 100;

/** Greedy wrap of words (or of whole synopsis items, which are never split) into lines of `width`. */
function wrapWords(words: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of words) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

function wrap(text: string, width: number): string[] {
  return wrapWords(
    text.split(/\s+/).filter((w) => w !== ""),
    width,
  );
}

/** `-c, --config FILE`, `    --force` */
function optionLabel(name: string, option: Option<unknown>): string {
  const value = option.value ? ` ${option.value}` : "";
  return `${option.short ? `-${option.short}, ` : "    "}--${name}${value}`;
}

function synopsisItem(name: string, option: Option<unknown>): string {
  const flagText = option.short ? `-${option.short}` : `--${name}`;
  return `[${flagText}${option.value ? ` ${option.value}` : ""}]${option.multiple ? "..." : ""}`;
}

const HELP_OPTION: Option<boolean> = flag("show this help and exit", { short: "h" });

/** `: one of a, b, c` for a choice whose placeholder (`LEVEL`) does not show its words. */
function unlistedChoices(option: Option<unknown>): string {
  const choices = option.choices;
  return choices && option.value !== choices.join("|") ? `: ${orList(choices)}` : "";
}

/** An option's help with what the table knows besides: repeatable, and the default. */
function describeOption(option: Option<unknown>): string {
  return (
    option.help +
    unlistedChoices(option) +
    (option.multiple ? " (repeatable)" : "") +
    (option.defaultText ? ` (default: ${option.defaultText})` : "")
  );
}

/** The `--help` text of a verb: synopsis, what it does, one entry per option, then the epilogue. */
export function renderHelp(spec: VerbSpec): string {
  const entries = [...Object.entries(spec.options), ["help", HELP_OPTION] as const];
  const about = spec.about
    .split(/\n\s*\n/)
    .map((paragraph) => wrap(paragraph, WIDTH).join("\n"))
    .join("\n\n");
  const labels = entries.map(([name, option]) => optionLabel(name, option));
  const column = Math.min(Math.max(...labels.map((l) => l.length)) + 4, 36);
  const lines = entries.flatMap(([, option], i) => {
    const label = `  ${labels[i]}`;
    const help = describeOption(option);
    const room = WIDTH - column - 2;
    const body = wrap(help, room);
    if (label.length + 2 > column + 2) {
      return [label, ...body.map((l) => `${" ".repeat(column + 2)}${l}`)];
    }
    return body.map((l, j) => (j === 0 ? label.padEnd(column + 2) : " ".repeat(column + 2)) + l);
  });
  const epilogue = spec.epilogue ? `\n${spec.epilogue.trimEnd()}\n` : "";
  return `${synopsis(spec, WIDTH)}\n\n${about}\n\noptions:\n${lines.join("\n")}\n${epilogue}`;
}

/** The top-level usage: one line per verb. */
export function renderUsage(verbs: readonly VerbSpec[]): string {
  const width = Math.max(...verbs.map((v) => v.name.length)) + 3;
  const lines = verbs.map((v) => `  ${v.name.padEnd(width)}${v.summary}`);
  return (
    `usage: ${PROGRAM} <command> [options]\n\ncommands:\n${lines.join("\n")}\n\n` +
    `Run '${PROGRAM} <command> --help' for a command's options; '${PROGRAM} --version' for the version.`
  );
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

/** `usage: cf-oauth-gitops plan [-c FILE] ...`, wrapped to `width`. */
function synopsis(spec: VerbSpec, width: number): string {
  const entries = [...Object.entries(spec.options), ["help", HELP_OPTION] as const];
  const head = `usage: ${PROGRAM} ${spec.name} `;
  return wrapWords(
    entries.map(([name, option]) => synopsisItem(name, option)),
    width - head.length,
  )
    .map((line, i) => (i === 0 ? head : " ".repeat(head.length)) + line)
    .join("\n");
}

/**
 * The README's CLI reference (between its `cli-options` markers): every verb's synopsis, then one
 * table row per option. An option object shared by several verbs (`-c`, `--concurrency`) is one row
 * naming them all. `schema --cli` prints it; test/ship/cli-reference.test.ts fails when the README's
 * copy differs.
 */
export function renderCliReference(verbs: readonly VerbSpec[]): string {
  const rows: { verbs: string[]; name: string; option: Option<unknown> }[] = [];
  for (const verb of verbs) {
    for (const [name, option] of Object.entries(verb.options)) {
      const shared = rows.find((r) => r.name === name && r.option === option);
      if (shared) shared.verbs.push(verb.name);
      else rows.push({ verbs: [verb.name], name, option });
    }
  }
  const lines = rows.map(({ verbs: names, name, option }) => {
    const flagText = `${option.short ? `\`-${option.short}\`, ` : ""}\`--${name}\``;
    const value = option.value ? `\`${option.value}\`${option.multiple ? " (repeatable)" : ""}` : "";
    return `| ${names.join(", ")} | ${flagText} | ${cell(value)} | ${cell(option.defaultText ?? "")} | ${cell(option.help + unlistedChoices(option))} |`;
  });
  const synopses = verbs.map((v) =>
    synopsis(v, WIDTH)
      .replace(/^usage: /, "")
      .replace(/\n {7}/g, "\n"),
  );
  return [
    "```",
    ...synopses,
    "```",
    "",
    "| command | option | value | default | description |",
    "|---|---|---|---|---|",
    ...lines,
  ].join("\n");
}

/** The verb for a mistyped command name, if one is close. */
export function suggestVerb(name: string, verbs: readonly VerbSpec[]): string | undefined {
  return closest(
    name,
    verbs.map((v) => v.name),
  );
}

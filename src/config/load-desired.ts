import { readdir, realpath, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { WRITABLE_FIELDS, type CreateClientBody } from "../api/oauth-clients.js";
import type { DesiredClient, SecretTarget } from "../core/model.js";
import { ConfigError, type ConfigIssue, type IssueCode, SinkError } from "../errors.js";
import type { SinkPlacement, SinkRegistry } from "../sinks/descriptor.js";
import { sinkRegistry } from "../sinks/registry.js";
import { fastLocator, parseFastYaml } from "./fast-yaml.js";
import {
  type Locator,
  type PathSegment,
  formatPath,
  fromZodIssues,
  isRecord,
  issueAt,
  sortIssues,
  yamlLocator,
} from "./issues.js";
import { displayPath } from "./paths.js";
import { type RuleReporter, checkEntry, hasSecret, resolveRotation, resolveSecret } from "./rules.js";
import {
  EXTENSION_KEY_RE,
  desiredClientSchema,
  desiredEnvelopeSchema,
  type DesiredClientEntry,
} from "./schema.js";
import type { LoadedDesiredState, ReconcilerConfig } from "./types.js";
import {
  MAX_FILE_BYTES,
  type ReadResult,
  parseYamlFile,
  readSourceFile,
  toPlainData,
} from "./yaml-source.js";

/**
 * Loading the desired state: every `*.yaml`/`*.yml` under `desired` (sorted, so the result and the
 * order of messages never depend on the file system), several documents per file, every problem in
 * every file collected before one `ConfigError` is thrown. Checks across entries and files
 * (duplicate names, pinned ids, secret destinations) use maps, so 10,000 clients cost one pass.
 */

const YAML_FILE_RE = /\.ya?ml$/i;

/**
 * The desired-state files: `desired` itself when it is a file, else every `*.yaml`/`*.yml` below it
 * (hidden files and directories skipped), sorted by path. Absolute paths.
 */
export async function listDesiredFiles(config: ReconcilerConfig): Promise<string[]> {
  let info;
  try {
    info = await stat(config.desired);
  } catch (error) {
    const where = config.desired_location;
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : "cannot be read";
    throw new ConfigError([
      {
        ...where,
        code: "E_DESIRED_MISSING",
        message: `desired path ${displayPath(config.display_root, config.desired)} ${reason}`,
      },
    ]);
  }
  if (!info.isDirectory()) return [config.desired];
  const found: string[] = [];
  await collectYamlFiles(config.desired, found);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function collectYamlFiles(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await collectYamlFiles(path, out);
    else if ((entry.isFile() || entry.isSymbolicLink()) && YAML_FILE_RE.test(entry.name)) out.push(path);
  }
}

/**
 * The most the desired-state tree may hold altogether, in bytes and in files. Each file is capped at
 * `MAX_FILE_BYTES` (10 MiB); without a total, a directory of many large files (a pull request, a bad
 * checkout) could still take the process's memory. 64 MiB is about 200,000 clients, twenty times
 * the largest account benchmarked (bench/plan.ts).
 */
export const MAX_DESIRED_TOTAL_BYTES = 64 * 1024 * 1024;
export const MAX_DESIRED_FILES = 20_000;

/** Refuses, before reading any, a tree over `MAX_DESIRED_TOTAL_BYTES` or `MAX_DESIRED_FILES`. */
async function refuseOversizedTree(config: ReconcilerConfig, absolute: readonly string[]): Promise<void> {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  let message: string | undefined;
  if (absolute.length > MAX_DESIRED_FILES) {
    message = `the desired directory holds ${absolute.length} YAML files, over the limit of ${MAX_DESIRED_FILES}`;
  } else {
    const sizes = await Promise.all(
      absolute.map((path) =>
        stat(path).then(
          (s) => s.size,
          () => 0,
        ),
      ),
    );
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > MAX_DESIRED_TOTAL_BYTES) {
      message = `the desired files hold ${mib(total)} altogether, over the ${mib(MAX_DESIRED_TOTAL_BYTES)} limit`;
    }
  }
  if (message !== undefined) {
    throw new ConfigError([{ ...config.desired_location, code: "E_DESIRED_TOO_LARGE", message }]);
  }
}

/** The resolved desired directory every file must lie in (for a single file, its directory). */
async function desiredRoot(config: ReconcilerConfig): Promise<string> {
  const real = await realpath(config.desired);
  return (await stat(real)).isDirectory() ? real : dirname(real);
}

/** How `loadDesiredState` reads files; the default is what production uses. */
export interface LoadDesiredOptions {
  /**
   * Read files in the plain subset with the fast reader (fast-yaml.ts) and use the `yaml` package
   * only for the others and for files with problems. `false` reads every file with the `yaml`
   * package: the reference the fast path is tested against, and a switch if the fast path misbehaves.
   */
  fastPath?: boolean;
  /** The registry the config was loaded with (`LoadConfigOptions.sinks`); src/sinks/registry.ts by default. */
  sinks?: SinkRegistry;
}

/**
 * Reads every desired-state file into `DesiredState`, resolving each entry's account, secret target
 * and rotation against the config. Throws one `ConfigError` carrying every problem in every file.
 *
 * Files are read and checked one at a time (the next one is read while the current one is checked),
 * and nothing of a parsed file outlives its check: entries keep plain data and line:col, so memory
 * grows with the number of clients, not with the size of the YAML trees.
 */
export async function loadDesiredState(
  config: ReconcilerConfig,
  options: LoadDesiredOptions = {},
): Promise<LoadedDesiredState> {
  const absolute = await listDesiredFiles(config);
  const files = absolute.map((path) => displayPath(config.display_root, path));
  await refuseOversizedTree(config, absolute);
  const root = await desiredRoot(config);
  const read = (i: number) => readSourceFile(absolute[i] as string, files[i] as string, MAX_FILE_BYTES, root);
  const builder = new DesiredStateBuilder(config, options.fastPath ?? true, options.sinks ?? sinkRegistry);
  let next = absolute.length > 0 ? read(0) : undefined;
  for (let i = 0; i < absolute.length; i++) {
    const current = await (next as Promise<ReadResult>);
    next = i + 1 < absolute.length ? read(i + 1) : undefined;
    if (current.issue) builder.errors.push(current.issue);
    else builder.addFile(files[i] as string, current.text);
  }
  return builder.finish(files);
}

/** A place in a document that a later entry may clash with, located when it was recorded. */
interface Claim {
  ensure: "present" | "absent";
  file: string;
  line: number;
  col: number;
}

/** A claim on the place a secret is written, with the sink and key that map to it. */
interface SecretClaim extends Claim {
  sink: string;
  key: string;
}

/** Locates a claim now, so the parsed file need not be kept for a message about it later. */
function claimAt(at: Locator, ensure: Claim["ensure"], path: PathSegment[]): Claim {
  const { line, col } = at.locate(path);
  return { ensure, file: at.file, line, col };
}

function where(claim: Claim): string {
  return `${claim.file}:${claim.line}:${claim.col}`;
}

/**
 * What a file added to the builder's maps and lists, so a fast-path attempt that found a problem can
 * be undone and the file checked again on the `yaml` document (whose locations are the reference).
 * A string is an account whose client list got one more client; a pair is a key added to a map.
 */
type JournalEntry = string | [Map<string, unknown>, string];

/** Accumulates entries and issues across files; `finish` throws or returns the state. */
class DesiredStateBuilder {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];
  readonly #accounts = new Map<string, DesiredClient[]>();
  readonly #names = new Map<string, Claim>();
  readonly #ids = new Map<string, Claim>();
  readonly #secrets = new Map<string, SecretClaim>();
  readonly #config: ReconcilerConfig;
  readonly #fastPath: boolean;
  readonly #sinks: SinkRegistry;
  #journal: JournalEntry[] = [];
  /** Issue counts when the fast-path attempt on the current file began. */
  #attempt: { errors: number; warnings: number } | undefined;

  constructor(config: ReconcilerConfig, fastPath: boolean, sinks: SinkRegistry) {
    this.#config = config;
    this.#fastPath = fastPath;
    this.#sinks = sinks;
  }

  addFile(file: string, text: string): void {
    this.#journal = [];
    if (this.#fastPath && this.#addFast(file, text)) return;
    this.#addParsed(file, text);
  }

  /** Checks a file read by the fast reader; false (and nothing added) when it is not in the subset or has a problem. */
  #addFast(file: string, text: string): boolean {
    const doc = parseFastYaml(text);
    if (!doc) return false;
    this.#attempt = { errors: this.errors.length, warnings: this.warnings.length };
    this.#addDocument(fastLocator(file, doc), doc.data);
    const failed = this.#attemptFailed();
    if (failed) {
      this.errors.length = this.#attempt.errors;
      this.warnings.length = this.#attempt.warnings;
      this.#undo();
    }
    this.#attempt = undefined;
    return !failed;
  }

  /** Has the fast-path attempt in progress found a problem? Then the rest of the file need not be checked. */
  #attemptFailed(): boolean {
    const attempt = this.#attempt;
    return (
      attempt !== undefined &&
      (this.errors.length !== attempt.errors || this.warnings.length !== attempt.warnings)
    );
  }

  #undo(): void {
    for (let i = this.#journal.length - 1; i >= 0; i--) {
      const entry = this.#journal[i] as JournalEntry;
      if (typeof entry === "string") this.#accounts.get(entry)?.pop();
      else entry[0].delete(entry[1]);
    }
    this.#journal = [];
  }

  /** Checks a file parsed by the `yaml` package: every syntax problem located, several documents. */
  #addParsed(file: string, text: string): void {
    const parsed = parseYamlFile(text, file);
    this.errors.push(...parsed.errors);
    this.warnings.push(...parsed.warnings);
    if (parsed.empty && parsed.errors.length === 0) {
      this.errors.push({
        file,
        line: 1,
        col: 1,
        path: "",
        code: "E_EMPTY_FILE",
        message: "file has no content; write `clients: []` to declare an account with no clients on purpose",
      });
    }
    for (const ctx of parsed.documents) {
      const plain = toPlainData(ctx);
      if (plain.issue) this.errors.push(plain.issue);
      else this.#addDocument(yamlLocator(ctx), plain.data);
    }
  }

  #addDocument(at: Locator, data: unknown): void {
    if (!isRecord(data)) {
      this.errors.push(
        issueAt(at, [], "E_TYPE", "a desired-state document is a mapping with `account_id` and `clients`"),
      );
      return;
    }
    const envelope: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(data)) if (!EXTENSION_KEY_RE.test(key)) envelope[key] = value;
    const checked = desiredEnvelopeSchema.safeParse(envelope);
    if (!checked.success) {
      this.errors.push(
        ...fromZodIssues(checked.error.issues, {
          locator: at,
          schema: desiredEnvelopeSchema,
          data: envelope,
          basePath: [],
        }),
      );
    }
    const account = this.#accountOf(at, envelope);
    if (!Array.isArray(envelope.clients)) return;
    // `clients: []` declares an account with no clients on purpose: it is in scope (listed, pruned
    // under `prune: all` once `allow_empty` says so), not forgotten.
    if (account !== undefined && !this.#accounts.has(account)) {
      this.#accounts.set(account, []);
      this.#journal.push([this.#accounts as Map<string, unknown>, account]);
    }
    // One reporter per document: closures made per entry cost more than the checks themselves.
    const report: RuleReporter = {
      error: (path, code, message, anchor) => this.errors.push(issueAt(at, path, code, message, anchor)),
      warn: (path, code, message, anchor) => this.warnings.push(issueAt(at, path, code, message, anchor)),
    };
    for (let index = 0; index < envelope.clients.length && !this.#attemptFailed(); index++) {
      this.#addEntry(at, report, account, index, envelope.clients[index]);
    }
  }

  #accountOf(at: Locator, envelope: Record<string, unknown>): string | undefined {
    if (envelope.account_id === undefined) {
      if (this.#config.account_id !== undefined) return this.#config.account_id;
      this.errors.push(
        issueAt(
          at,
          [],
          "E_NO_ACCOUNT",
          "no `account_id`: set it in this document or set a default `account_id` in the config file",
        ),
      );
      return undefined;
    }
    const parsed = desiredEnvelopeSchema.shape.account_id.safeParse(envelope.account_id);
    return parsed.success ? parsed.data : undefined;
  }

  #addEntry(
    at: Locator,
    report: RuleReporter,
    account: string | undefined,
    index: number,
    raw: unknown,
  ): void {
    const base: PathSegment[] = ["clients", index];
    const before = this.errors.length;
    const parsed = desiredClientSchema.safeParse(raw);
    if (!parsed.success) {
      this.errors.push(
        ...fromZodIssues(parsed.error.issues, {
          locator: at,
          schema: desiredClientSchema,
          data: raw,
          basePath: base,
        }),
      );
    }
    if (!isRecord(raw)) return;
    checkEntry(raw, base, this.#config, report);
    this.#claim(at, account, base, raw, parsed.success ? parsed.data : undefined);
    if (this.errors.length === before && parsed.success && account !== undefined) {
      this.#addClient(at, account, index, parsed.data);
    }
  }

  /** Records the entry's name, pinned id and secret destination, reporting clashes with earlier ones. */
  #claim(
    at: Locator,
    account: string | undefined,
    base: PathSegment[],
    raw: Record<string, unknown>,
    entry: DesiredClientEntry | undefined,
  ): void {
    const ensure = raw.ensure === "absent" ? "absent" : "present";
    if (account !== undefined && typeof raw.client_name === "string" && raw.client_name.trim() !== "") {
      const key = `${account}\u0000${raw.client_name}`;
      const path = [...base, "client_name"];
      const claim = claimAt(at, ensure, path);
      const prior = this.#names.get(key);
      if (!prior) this.#record(this.#names, key, claim);
      else
        this.#clash(
          prior,
          claim,
          path,
          "E_DUPLICATE_NAME",
          `client_name \`${raw.client_name}\` in account ${account}`,
          "declared",
        );
    }
    if (typeof raw.client_id === "string") {
      const path = [...base, "client_id"];
      const claim = claimAt(at, ensure, path);
      const prior = this.#ids.get(raw.client_id);
      if (!prior) this.#record(this.#ids, raw.client_id, claim);
      else
        this.#clash(prior, claim, path, "E_DUPLICATE_CLIENT_ID", `client_id \`${raw.client_id}\``, "pinned");
    }
    const target = entry && account !== undefined && hasSecret(raw) ? resolveSecret(entry) : null;
    if (target && account !== undefined) this.#claimSecret(at, ensure, account, base, raw, target);
  }

  /**
   * Records where the entry's secret lands, as its sink maps the key (its descriptor's `placement`,
   * src/sinks/descriptor.ts): two clients whose keys differ but map to one file, Vault path or Secret name
   * would overwrite each other's secret, so they are refused here with both locations, as is a key
   * the sink cannot store at all (`..`, a file name over the length limit).
   */
  #claimSecret(
    at: Locator,
    ensure: Claim["ensure"],
    account: string,
    base: PathSegment[],
    raw: Record<string, unknown>,
    target: SecretTarget,
  ): void {
    const sink = Object.hasOwn(this.#config.sinks, target.sink) ? this.#config.sinks[target.sink] : undefined;
    if (sink === undefined) return; // reported by checkSecret
    const explicitKey = isRecord(raw.secret) && raw.secret.key !== undefined;
    const path = [...base, explicitKey ? "secret" : "client_name"];
    const claim: SecretClaim = { ...claimAt(at, ensure, path), sink: target.sink, key: target.key };
    const issue = { file: claim.file, line: claim.line, col: claim.col, path: formatPath(path) };
    let placement: SinkPlacement;
    try {
      placement = this.#sinks.placement(
        sink,
        { account_id: account, key: target.key },
        { sinkName: target.sink, show: (absolute) => displayPath(this.#config.display_root, absolute) },
      );
    } catch (error) {
      if (!(error instanceof SinkError)) throw error;
      const subject = explicitKey
        ? `secret key \`${target.key}\``
        : `client_name \`${target.key}\` (the secret key when \`secret.key\` is not set)`;
      const reason = typeof error.context.reason === "string" ? error.context.reason : error.message;
      this.errors.push({
        ...issue,
        code: "E_BAD_SECRET_KEY",
        message: `sink \`${target.sink}\` cannot store ${subject}: it ${reason}; set \`secret.key\` to another key`,
      });
      return;
    }
    const prior = this.#secrets.get(placement.id);
    if (!prior) {
      this.#record(this.#secrets, placement.id, claim);
      return;
    }
    const message =
      prior.sink === claim.sink && prior.key === claim.key
        ? `two clients would write their secrets to sink \`${target.sink}\` key \`${target.key}\` (the other is at ${where(prior)}); set a distinct \`secret.key\``
        : `two clients would write their secrets to one place, ${placement.shown}: sink \`${claim.sink}\` key \`${claim.key}\` here, and sink \`${prior.sink}\` key \`${prior.key}\` (the other is at ${where(prior)}); set a distinct \`secret.key\``;
    this.errors.push({ ...issue, code: "E_DUPLICATE_SECRET_KEY", message });
  }

  /** Keeps the first claim on a key. */
  #record<C extends Claim>(map: Map<string, C>, key: string, claim: C): void {
    map.set(key, claim);
    this.#journal.push([map as Map<string, unknown>, key]);
  }

  /** A second claim on a name or id: a duplicate, or a contradiction when one says absent. */
  #clash(
    prior: Claim,
    claim: Claim,
    path: PathSegment[],
    code: IssueCode,
    subject: string,
    verb: string,
  ): void {
    const issue = { file: claim.file, line: claim.line, col: claim.col, path: formatPath(path) };
    if (prior.ensure === claim.ensure) {
      this.errors.push({ ...issue, code, message: `${subject} is ${verb} twice: first at ${where(prior)}` });
    } else {
      this.errors.push({
        ...issue,
        code: "E_PRESENT_AND_ABSENT",
        message: `${subject} is ${claim.ensure} here but ${prior.ensure} at ${where(prior)}`,
      });
    }
  }

  #addClient(at: Locator, account: string, index: number, entry: DesiredClientEntry): void {
    const fields: Partial<CreateClientBody> = {};
    for (const field of WRITABLE_FIELDS) {
      if (entry[field] !== undefined) (fields as Record<string, unknown>)[field] = entry[field];
    }
    const path: PathSegment[] = ["clients", index];
    const { line, col } = at.locate(path);
    const client: DesiredClient = {
      account_id: account,
      ensure: entry.ensure,
      client_name: entry.client_name ?? "",
      fields,
      visibility: entry.visibility,
      secret: resolveSecret(entry),
      rotation: resolveRotation(entry, this.#config),
      source: { file: at.file, line, col, path: formatPath(path) },
    };
    if (entry.client_id !== undefined) client.client_id = entry.client_id;
    const list = this.#accounts.get(account);
    if (list) list.push(client);
    else {
      this.#accounts.set(account, [client]);
      this.#journal.push([this.#accounts as Map<string, unknown>, account]);
    }
    this.#journal.push(account);
  }

  finish(files: string[]): LoadedDesiredState {
    if (this.errors.length > 0) throw new ConfigError(sortIssues(this.errors, files));
    return { accounts: this.#accounts, files, warnings: sortIssues(this.warnings, files) };
  }
}

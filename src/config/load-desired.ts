import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { WRITABLE_FIELDS, type CreateClientBody } from "../cloudflare/schemas.js";
import type { DesiredClient } from "../core/model.js";
import { ConfigError, type ConfigIssue } from "../errors.js";
import {
  type PathSegment,
  type YamlContext,
  formatPath,
  fromZodIssues,
  isRecord,
  issueAt,
  locate,
  sortIssues,
} from "./issues.js";
import { displayPath } from "./paths.js";
import { checkEntry, hasSecret, resolveRotation, resolveSecret } from "./rules.js";
import {
  EXTENSION_KEY_RE,
  desiredClientSchema,
  desiredEnvelopeSchema,
  type DesiredClientEntry,
} from "./schema.js";
import type { LoadedDesiredState, ReconcilerConfig } from "./types.js";
import { parseYamlFile, readSourceFile, toPlainData } from "./yaml-source.js";

/**
 * Loading the desired state: every `*.yaml`/`*.yml` under `desired` (sorted, so the result and the
 * order of messages never depend on the file system), several documents per file, every problem in
 * every file collected before one `ConfigError` is thrown. Checks across entries and files
 * (duplicate names, pinned ids, secret destinations) use maps, so 10,000 clients cost one pass.
 */

const YAML_FILE_RE = /\.ya?ml$/i;

/** Files read in parallel at most. */
const READ_CONCURRENCY = 8;

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

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Reads every desired-state file into `DesiredState`, resolving each entry's account, secret target
 * and rotation against the config. Throws one `ConfigError` carrying every problem in every file.
 */
export async function loadDesiredState(config: ReconcilerConfig): Promise<LoadedDesiredState> {
  const absolute = await listDesiredFiles(config);
  const files = absolute.map((path) => displayPath(config.display_root, path));
  const reads = await mapLimited(absolute, READ_CONCURRENCY, (path) =>
    readSourceFile(path, displayPath(config.display_root, path)),
  );
  const builder = new DesiredStateBuilder(config);
  reads.forEach((read, i) => {
    const file = files[i] as string;
    if (read.issue) builder.errors.push(read.issue);
    else builder.addFile(file, read.text);
  });
  return builder.finish(files);
}

/** A place in a document, located only if a message needs it. */
interface Claim {
  ensure: "present" | "absent";
  ctx: YamlContext;
  path: PathSegment[];
}

function where(claim: Claim): string {
  const { line, col } = locate(claim.ctx, claim.path);
  return `${claim.ctx.file}:${line}:${col}`;
}

/** Accumulates entries and issues across files; `finish` throws or returns the state. */
class DesiredStateBuilder {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];
  readonly #accounts = new Map<string, DesiredClient[]>();
  readonly #names = new Map<string, Claim>();
  readonly #ids = new Map<string, Claim & { account: string | undefined }>();
  readonly #secrets = new Map<string, Claim>();
  readonly #config: ReconcilerConfig;

  constructor(config: ReconcilerConfig) {
    this.#config = config;
  }

  addFile(file: string, text: string): void {
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
    for (const ctx of parsed.documents) this.#addDocument(ctx);
  }

  #addDocument(ctx: YamlContext): void {
    const plain = toPlainData(ctx);
    if (plain.issue) {
      this.errors.push(plain.issue);
      return;
    }
    const data = plain.data;
    if (!isRecord(data)) {
      this.errors.push(
        issueAt(ctx, [], "E_TYPE", "a desired-state document is a mapping with `account_id` and `clients`"),
      );
      return;
    }
    const envelope: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(data)) if (!EXTENSION_KEY_RE.test(key)) envelope[key] = value;
    const checked = desiredEnvelopeSchema.safeParse(envelope);
    if (!checked.success) {
      this.errors.push(
        ...fromZodIssues(checked.error.issues, {
          yaml: ctx,
          schema: desiredEnvelopeSchema,
          data: envelope,
          basePath: [],
        }),
      );
    }
    const account = this.#accountOf(ctx, envelope);
    if (Array.isArray(envelope.clients)) {
      envelope.clients.forEach((raw, index) => this.#addEntry(ctx, account, index, raw));
    }
  }

  #accountOf(ctx: YamlContext, envelope: Record<string, unknown>): string | undefined {
    if (envelope.account_id === undefined) {
      if (this.#config.account_id !== undefined) return this.#config.account_id;
      this.errors.push(
        issueAt(
          ctx,
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

  #addEntry(ctx: YamlContext, account: string | undefined, index: number, raw: unknown): void {
    const base: PathSegment[] = ["clients", index];
    const before = this.errors.length;
    const parsed = desiredClientSchema.safeParse(raw);
    if (!parsed.success) {
      this.errors.push(
        ...fromZodIssues(parsed.error.issues, {
          yaml: ctx,
          schema: desiredClientSchema,
          data: raw,
          basePath: base,
        }),
      );
    }
    if (!isRecord(raw)) return;
    checkEntry(raw, base, this.#config, {
      error: (path, code, message, anchor) => this.errors.push(issueAt(ctx, path, code, message, anchor)),
      warn: (path, code, message, anchor) => this.warnings.push(issueAt(ctx, path, code, message, anchor)),
    });
    this.#claim(ctx, account, base, raw, parsed.success ? parsed.data : undefined);
    if (this.errors.length === before && parsed.success && account !== undefined) {
      this.#addClient(ctx, account, index, parsed.data);
    }
  }

  /** Records the entry's name, pinned id and secret destination, reporting clashes with earlier ones. */
  #claim(
    ctx: YamlContext,
    account: string | undefined,
    base: PathSegment[],
    raw: Record<string, unknown>,
    entry: DesiredClientEntry | undefined,
  ): void {
    const ensure = raw.ensure === "absent" ? "absent" : "present";
    const claimAt = (field: PathSegment): Claim => ({ ensure, ctx, path: [...base, field] });
    if (account !== undefined && typeof raw.client_name === "string" && raw.client_name.trim() !== "") {
      const key = `${account}\u0000${raw.client_name}`;
      const claim = claimAt("client_name");
      const prior = this.#names.get(key);
      if (!prior) this.#names.set(key, claim);
      else
        this.#clash(
          prior,
          claim,
          "E_DUPLICATE_NAME",
          `client_name \`${raw.client_name}\` in account ${account}`,
          "declared",
        );
    }
    if (typeof raw.client_id === "string") {
      const claim = { ...claimAt("client_id"), account };
      const prior = this.#ids.get(raw.client_id);
      if (!prior) this.#ids.set(raw.client_id, claim);
      else this.#clash(prior, claim, "E_DUPLICATE_CLIENT_ID", `client_id \`${raw.client_id}\``, "pinned");
    }
    const target = entry && account !== undefined && hasSecret(raw) ? resolveSecret(entry) : null;
    if (target) {
      const key = `${target.sink}\u0000${account}\u0000${target.key}`;
      const claim = claimAt(isRecord(raw.secret) && raw.secret.key !== undefined ? "secret" : "client_name");
      const prior = this.#secrets.get(key);
      if (!prior) this.#secrets.set(key, claim);
      else {
        const { line, col } = locate(claim.ctx, claim.path);
        this.errors.push({
          file: ctx.file,
          line,
          col,
          path: formatPath(claim.path),
          code: "E_DUPLICATE_SECRET_KEY",
          message: `two clients would write their secrets to sink \`${target.sink}\` key \`${target.key}\` (the other is at ${where(prior)}); set a distinct \`secret.key\``,
        });
      }
    }
  }

  /** A second claim on a name or id: a duplicate, or a contradiction when one says absent. */
  #clash(prior: Claim, claim: Claim, code: string, subject: string, verb: string): void {
    const { line, col } = locate(claim.ctx, claim.path);
    const issue = { file: claim.ctx.file, line, col, path: formatPath(claim.path) };
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

  #addClient(ctx: YamlContext, account: string, index: number, entry: DesiredClientEntry): void {
    const fields: Partial<CreateClientBody> = {};
    for (const field of WRITABLE_FIELDS) {
      if (entry[field] !== undefined) (fields as Record<string, unknown>)[field] = entry[field];
    }
    const path: PathSegment[] = ["clients", index];
    const { line, col } = locate(ctx, path);
    const client: DesiredClient = {
      account_id: account,
      ensure: entry.ensure,
      client_name: entry.client_name ?? "",
      fields,
      visibility: entry.visibility,
      secret: resolveSecret(entry),
      rotation: resolveRotation(entry, this.#config),
      source: { file: ctx.file, line, col, path: formatPath(path) },
    };
    if (entry.client_id !== undefined) client.client_id = entry.client_id;
    const list = this.#accounts.get(account);
    if (list) list.push(client);
    else this.#accounts.set(account, [client]);
  }

  finish(files: string[]): LoadedDesiredState {
    if (this.errors.length > 0) throw new ConfigError(sortIssues(this.errors, files));
    return { accounts: this.#accounts, files, warnings: sortIssues(this.warnings, files) };
  }
}

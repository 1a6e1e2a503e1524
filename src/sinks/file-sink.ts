import { access, constants, mkdir, readFile, rm, stat } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type * as AgeModule from "age-encryption";
import type { Decrypter } from "age-encryption";
import { SinkError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { writeFileAtomic } from "../state/atomic.js";
import { formatEnv, parseEnv, recordFromEnv } from "./envfile.js";
import { KEY_HASH_SEPARATOR, describeFileRecord, fileRecordPath } from "./naming.js";
import { plainRecordSchema, revealRecord, storedRecord, type PlainRecord } from "./record.js";
import type { SecretRecord, SecretSink, SinkAddress, StoredRecord } from "./types.js";

export { safeSegment } from "./naming.js";

/** How the record is laid out in the file. */
export type FileFormat = "json" | "env";

export interface FileSinkOptions {
  /** Root directory; records go to `<dir>/<account_id>/<key>.<json|env>[.age]`. */
  dir: string;
  /** `json` (default) or `env` (`CLIENT_ID=...` lines, ready for `. file.env` or `EnvironmentFile=`). */
  format?: FileFormat;
  /**
   * age recipients (`age1...`). When set, the file is encrypted to them, ASCII-armored, and gets an
   * `.age` suffix. Use X25519 recipients (`age-keygen`) if the file is to be opened with age < 1.3
   * (Debian's 1.1.1): older age cannot decrypt post-quantum (`age1pq1...`) recipients.
   */
  age_recipients?: string[];
  /**
   * An age identity file (`age-keygen` output) able to decrypt the files, for read-back only.
   * Without it an encrypted record cannot be read back: `read` and the preflight (`checkWritable`)
   * fail with `E_SINK_NEEDS_IDENTITY`, because a secret that cannot be read back cannot be confirmed
   * as published (`validate` refuses such a config). `write` alone still works.
   */
  age_identity_file?: string;
  /** Config name of the sink, for messages. */
  name?: string;
  logger?: Logger;
}

/** age, loaded the first time an encrypting sink needs it: most file sinks never do. */
let ageModule: Promise<typeof AgeModule> | undefined;

/**
 * The built-in sink: one file per client, `<dir>/<account_id>/<key>.json` (or `.env`), holding
 * `client_id`, `client_secret`, `account_id`, `client_name`, `issued_at`. Written atomically (temp
 * file, fsync, rename, fsync of the directory) with mode 0600 in directories of mode 0700, so a
 * consumer that reads the file sees the old secret or the new one, never half of either.
 *
 * With `age_recipients` the content is age-encrypted (armored) so the file can sit in a shared place
 * or a git repository; `age -d -i key.txt <key>.json.age` opens it.
 *
 * Versions are a hash of the file's bytes. `write` with an expected version compares it with the
 * file on disk before replacing it: this catches an edit made since the caller's read, but it is not
 * atomic against another writer racing on the same host (the state directory's lock covers that).
 */
export class FileSink implements SecretSink {
  readonly type = "file";
  readonly #dir: string;
  readonly #format: FileFormat;
  readonly #recipients: readonly string[] | null;
  readonly #identityFile: string | null;
  readonly #logger: Logger;
  #age: Promise<typeof AgeModule> | null = null;

  constructor(options: FileSinkOptions) {
    this.#dir = options.dir;
    this.#format = options.format ?? "json";
    this.#recipients = options.age_recipients ? checkRecipientList(options.age_recipients) : null;
    this.#identityFile = options.age_identity_file ?? null;
    this.#logger = (options.logger ?? silentLogger).child({
      component: "sink",
      sink: "file",
      sink_name: options.name,
    });
  }

  /**
   * age, with the recipients checked against it once. A recipient age cannot parse fails the sink's
   * first use with `E_SINK_CONFIG`: its preflight, before any secret is minted.
   */
  #encryption(): Promise<typeof AgeModule> {
    this.#age ??= (ageModule ??= import("age-encryption")).then((age) => {
      checkRecipients(age, this.#recipients ?? []);
      return age;
    });
    return this.#age;
  }

  /** True when files are age-encrypted. */
  get encrypted(): boolean {
    return this.#recipients !== null;
  }

  /** The file a record lives in, named as `validate` names it (src/sinks/naming.ts `fileRecordPath`). */
  pathOf(address: SinkAddress): string {
    return fileRecordPath(this.#layout(), address);
  }

  describe(address: SinkAddress): string {
    return describeFileRecord(this.#layout(), address);
  }

  #layout() {
    return { dir: this.#dir, format: this.#format, age_recipients: this.#recipients ?? undefined };
  }

  /**
   * Proves, before anything is minted, that this exact key can be written and read back: its name is
   * valid and short enough, its directory can be made and written, an existing record there can be
   * read, and a probe record (no real secret) under a name of the same length in the same directory
   * goes through the same atomic write, encryption, decryption and parsing as the real record, and is
   * then removed. The probe's name starts with `~`, which no record's name does (safeSegment).
   */
  async checkWritable(address: SinkAddress): Promise<void> {
    const path = this.pathOf(address);
    const dir = dirname(path);
    if (this.#recipients !== null) await this.#encryption();
    if (this.#recipients !== null && this.#identityFile === null) {
      throw new SinkError(
        "E_SINK_NEEDS_IDENTITY",
        `sink=file: records are age-encrypted and no age_identity_file is configured, so ${path} could not be read back after a write`,
        { disposition: "terminal", context: { sink: "file", path } },
      );
    }
    const refuse = (what: string, error: unknown) =>
      new SinkError("E_SINK_NOT_WRITABLE", `sink=file: ${what}: ${(error as Error).message}`, {
        cause: error,
        context: { sink: "file", dir, path },
      });
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await access(dir, constants.W_OK);
    } catch (error) {
      throw refuse(`${dir} is not writable`, error);
    }
    // A record already there (a rotation) must read back, and be a file a rename can replace.
    try {
      if (!(await stat(path)).isFile()) throw new Error("it is not a regular file");
      await access(path, constants.R_OK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT")
        throw refuse(`${path} cannot be replaced`, error);
    }
    const probe = join(dir, probeName(basename(path)));
    try {
      const plain: PlainRecord = {
        client_id: "",
        client_secret: `probe-${randomBytes(8).toString("hex")}`,
        account_id: address.account_id,
        client_name: "",
        issued_at: new Date(0).toISOString(),
      };
      await writeFileAtomic(probe, await this.#encode(plain, probe), { mode: 0o600, dirMode: 0o700 });
      const raw = await readRaw(probe);
      const text = raw === null ? null : this.#recipients ? await this.#decrypt(raw, probe) : raw;
      const back =
        text === null ? null : this.#format === "env" ? parseEnvRecord(text) : parseJsonRecord(text);
      if (back?.client_secret !== plain.client_secret) {
        throw new Error("the probe record did not read back as written");
      }
    } catch (error) {
      throw refuse(`a probe record beside ${path} could not be written and read back`, error);
    } finally {
      await rm(probe, { force: true }).catch(() => undefined);
    }
  }

  async write(
    address: SinkAddress,
    record: SecretRecord,
    expectedVersion?: string | null,
  ): Promise<{ version: string | null }> {
    const path = this.pathOf(address);
    const content = await this.#encode(revealRecord(record), path);
    if (expectedVersion !== undefined) await this.#checkVersion(path, expectedVersion);
    try {
      await writeFileAtomic(path, content, { mode: 0o600, dirMode: 0o700 });
    } catch (error) {
      throw new SinkError("E_SINK_WRITE", `sink=file: cannot write ${path}: ${(error as Error).message}`, {
        cause: error,
        context: { sink: "file", path },
      });
    }
    const version = versionOf(content);
    this.#logger.debug({ path, version }, "secret written");
    return { version };
  }

  async read(address: SinkAddress): Promise<StoredRecord | null> {
    const path = this.pathOf(address);
    const raw = await readRaw(path);
    if (raw === null) return null;
    const text = this.#recipients ? await this.#decrypt(raw, path) : raw;
    const plain = this.#format === "env" ? parseEnvRecord(text) : parseJsonRecord(text);
    if (!plain) {
      // The message must not quote the file: it holds a secret.
      throw new SinkError("E_SINK_CORRUPT", `sink=file: ${path} is not a valid secret record`, {
        context: { sink: "file", path },
      });
    }
    return storedRecord(plain, versionOf(raw));
  }

  /** For tests and status: the file's mode bits. */
  async modeOf(address: SinkAddress): Promise<number> {
    return (await stat(this.pathOf(address))).mode & 0o777;
  }

  async #encode(plain: PlainRecord, path: string): Promise<string> {
    const text =
      this.#format === "env"
        ? formatEnv(plain)
        : `${JSON.stringify(
            {
              client_id: plain.client_id,
              client_secret: plain.client_secret,
              account_id: plain.account_id,
              client_name: plain.client_name,
              issued_at: plain.issued_at,
            },
            null,
            2,
          )}\n`;
    if (!this.#recipients) return text;
    const { Encrypter, armor } = await this.#encryption();
    try {
      const encrypter = new Encrypter();
      for (const recipient of this.#recipients) encrypter.addRecipient(recipient);
      return armor.encode(await encrypter.encrypt(text));
    } catch (error) {
      throw new SinkError("E_SINK_WRITE", `sink=file: cannot encrypt ${path}: ${(error as Error).message}`, {
        context: { sink: "file", path },
      });
    }
  }

  async #checkVersion(path: string, expected: string | null): Promise<void> {
    const raw = await readRaw(path);
    const current = raw === null ? null : versionOf(raw);
    if (current !== expected) {
      throw new SinkError(
        "E_SINK_CONFLICT",
        `sink=file: ${path} changed since it was read (expected version ${expected ?? "none"}, found ${current ?? "none"})`,
        { context: { sink: "file", path, expected_version: expected, current_version: current } },
      );
    }
  }

  async #decrypter(): Promise<Decrypter> {
    if (this.#identityFile === null) {
      throw new SinkError(
        "E_SINK_NEEDS_IDENTITY",
        "sink=file: records are age-encrypted and no age_identity_file is configured, so they cannot be read back",
        { disposition: "terminal", context: { sink: "file" } },
      );
    }
    let text: string;
    try {
      text = await readFile(this.#identityFile, "utf8");
    } catch (error) {
      throw new SinkError(
        "E_SINK_IDENTITY",
        `sink=file: cannot read age identity file ${this.#identityFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
        { disposition: "terminal", context: { sink: "file", identity_file: this.#identityFile } },
      );
    }
    // The identity file is a secret: errors name the file and the line number, never its content.
    const { Decrypter } = await this.#encryption();
    const decrypter = new Decrypter();
    let count = 0;
    for (const [index, line] of text.split("\n").entries()) {
      const trimmed = line.trim();
      if (trimmed === "" || trimmed.startsWith("#")) continue;
      try {
        decrypter.addIdentity(trimmed);
        count += 1;
      } catch {
        throw new SinkError(
          "E_SINK_IDENTITY",
          `sink=file: ${this.#identityFile} line ${index + 1} is not an age identity`,
          { disposition: "terminal", context: { sink: "file", identity_file: this.#identityFile } },
        );
      }
    }
    if (count === 0) {
      throw new SinkError("E_SINK_IDENTITY", `sink=file: ${this.#identityFile} holds no age identity`, {
        disposition: "terminal",
        context: { sink: "file", identity_file: this.#identityFile },
      });
    }
    return decrypter;
  }

  async #decrypt(raw: string, path: string): Promise<string> {
    const decrypter = await this.#decrypter();
    const { armor } = await this.#encryption();
    try {
      return await decrypter.decrypt(armor.decode(raw), "text");
    } catch (error) {
      throw new SinkError(
        "E_SINK_DECRYPT",
        `sink=file: cannot decrypt ${path} with ${this.#identityFile}: ${(error as Error).message}`,
        { context: { sink: "file", path } },
      );
    }
  }
}

/** Refuses an empty recipient list at construction: leave the key out to write plain files. */
function checkRecipientList(recipients: readonly string[]): string[] {
  if (recipients.length === 0) {
    throw new SinkError(
      "E_SINK_CONFIG",
      "sink=file: age_recipients is empty; leave it out to write plain files",
      {
        disposition: "terminal",
        context: { sink: "file" },
      },
    );
  }
  return [...recipients];
}

/** Refuses recipients age cannot parse. */
function checkRecipients(age: typeof AgeModule, recipients: readonly string[]): void {
  for (const recipient of recipients) {
    try {
      new age.Encrypter().addRecipient(recipient);
    } catch (error) {
      throw new SinkError(
        "E_SINK_CONFIG",
        `sink=file: '${recipient}' is not an age recipient: ${(error as Error).message}`,
        { disposition: "terminal", context: { sink: "file", recipient } },
      );
    }
  }
}

async function readRaw(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new SinkError("E_SINK_READ", `sink=file: cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
      context: { sink: "file", path },
    });
  }
}

function parseJsonRecord(text: string): PlainRecord | null {
  try {
    return plainRecordSchema.parse(JSON.parse(text));
  } catch {
    return null;
  }
}

function parseEnvRecord(text: string): PlainRecord | null {
  const variables = parseEnv(text);
  return variables ? recordFromEnv(variables) : null;
}

/**
 * A probe file's name: as many bytes as the record's name (so its temp name is as long as the
 * record's), `~` then random hex, never the name of a record.
 */
function probeName(recordName: string): string {
  const length = Math.max(Buffer.byteLength(recordName, "utf8"), 2);
  const hex = randomBytes(Math.ceil(length / 2)).toString("hex");
  return `${KEY_HASH_SEPARATOR}${hex}`.slice(0, length);
}

function versionOf(body: string): string {
  return createHash("sha256").update(body).digest("hex").slice(0, 16);
}

import { access, constants, mkdir, readFile, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import { SinkError } from "../errors.js";
import { Secret } from "../secret.js";
import { writeFileAtomic } from "../state/atomic.js";
import type { SecretRecord, SecretSink, SinkAddress, StoredRecord } from "./types.js";

export interface FileSinkOptions {
  /** Root directory; records go to `<dir>/<account_id>/<key>.json`. */
  dir: string;
}

const storedFileSchema = z.object({
  client_id: z.string(),
  client_secret: z.string(),
  account_id: z.string(),
  client_name: z.string(),
  issued_at: z.string(),
});

/**
 * The built-in sink: one JSON file per client, `<dir>/<account_id>/<key>.json`, holding
 * `client_id`, `client_secret`, `account_id`, `client_name`, `issued_at`. Written atomically (temp
 * file, fsync, rename, fsync of the directory) with mode 0600 in directories of mode 0700, so a
 * consumer that reads the file sees the old secret or the new one, never half of either.
 */
export class FileSink implements SecretSink {
  readonly type = "file";
  readonly #dir: string;

  constructor(options: FileSinkOptions) {
    this.#dir = options.dir;
  }

  /** The file a record lives in. Keys are checked so that no key can escape the sink's directory. */
  pathOf(address: SinkAddress): string {
    return join(this.#dir, safeSegment(address.account_id), `${safeSegment(address.key)}.json`);
  }

  describe(address: SinkAddress): string {
    return `file:${this.pathOf(address)}`;
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    const dir = join(this.#dir, safeSegment(address.account_id));
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await access(dir, constants.W_OK);
    } catch (error) {
      throw new SinkError("E_SINK_NOT_WRITABLE", `sink=file: ${dir} is not writable: ${(error as Error).message}`, {
        cause: error,
        context: { sink: "file", dir },
      });
    }
  }

  async write(address: SinkAddress, record: SecretRecord): Promise<{ version: string | null }> {
    const path = this.pathOf(address);
    const body = `${JSON.stringify(
      {
        client_id: record.client_id,
        client_secret: record.client_secret.reveal(),
        account_id: record.account_id,
        client_name: record.client_name,
        issued_at: record.issued_at,
      },
      null,
      2,
    )}\n`;
    try {
      await writeFileAtomic(path, body, { mode: 0o600, dirMode: 0o700 });
    } catch (error) {
      throw new SinkError("E_SINK_WRITE", `sink=file: cannot write ${path}: ${(error as Error).message}`, {
        cause: error,
        context: { sink: "file", path },
      });
    }
    return { version: versionOf(body) };
  }

  async read(address: SinkAddress): Promise<StoredRecord | null> {
    const path = this.pathOf(address);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new SinkError("E_SINK_READ", `sink=file: cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
        context: { sink: "file", path },
      });
    }
    let parsed: z.infer<typeof storedFileSchema>;
    try {
      parsed = storedFileSchema.parse(JSON.parse(text));
    } catch {
      // The message must not quote the file: it holds a secret.
      throw new SinkError("E_SINK_CORRUPT", `sink=file: ${path} is not a valid secret record`, {
        context: { sink: "file", path },
      });
    }
    return { ...parsed, client_secret: new Secret(parsed.client_secret), version: versionOf(text) };
  }

  /** For tests and status: the file's mode bits. */
  async modeOf(address: SinkAddress): Promise<number> {
    return (await stat(this.pathOf(address))).mode & 0o777;
  }
}

function versionOf(body: string): string {
  return createHash("sha256").update(body).digest("hex").slice(0, 16);
}

/**
 * Keys and account ids become path segments: anything outside `[A-Za-z0-9._@-]` becomes `_`, and
 * the segments `.` and `..` are refused, so a client named `../../etc` cannot escape the directory.
 */
export function safeSegment(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9._@-]/g, "_");
  if (cleaned === "" || cleaned === "." || cleaned === "..") {
    throw new SinkError("E_SINK_KEY", `sink=file: '${value}' cannot be used as a file name`);
  }
  return cleaned;
}

import { mkdtemp, readFile, readdir, stat, chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { FileSink, safeSegment } from "../../src/sinks/file-sink.js";
import { MAX_ATOMIC_NAME_BYTES } from "../../src/state/atomic.js";
import { Secret } from "../../src/secret.js";
import { run } from "./helpers.js";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const CANARY = "canary-secret-5b0e2f7c";

const made: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cfog-sink-"));
  made.push(dir);
  return dir;
}

afterAll(async () => {
  for (const dir of made) await chmod(dir, 0o700).catch(() => undefined);
  await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** The documented hash suffix, computed here on its own: 10 hex digits of SHA-256. */
function sha10(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex").slice(0, 10);
}

function record(secret = CANARY) {
  return {
    account_id: ACCOUNT,
    client_id: "c".repeat(32),
    client_name: "billing-web",
    client_secret: new Secret(secret),
    issued_at: "2026-11-26T10:00:00.000Z",
  };
}

describe("file sink", () => {
  it("writes <dir>/<account>/<key>.json with mode 0600 in a 0700 directory and reads it back", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir });
    const address = { account_id: ACCOUNT, key: "billing-web" };
    await sink.checkWritable(address);
    await sink.write(address, record());
    const path = join(dir, ACCOUNT, "billing-web.json");
    const onDisk = JSON.parse(await readFile(path, "utf8"));
    expect(onDisk).toEqual({
      client_id: "c".repeat(32),
      client_secret: CANARY,
      account_id: ACCOUNT,
      client_name: "billing-web",
      issued_at: "2026-11-26T10:00:00.000Z",
    });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, ACCOUNT))).mode & 0o777).toBe(0o700);
    const back = await sink.read(address);
    expect(back?.client_secret.reveal()).toBe(CANARY);
    expect(JSON.stringify(back)).not.toContain(CANARY);
    // No temp files are left behind by the atomic write.
    expect(await readdir(join(dir, ACCOUNT))).toEqual(["billing-web.json"]);
  });

  it("replaces a record atomically and changes its version", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir });
    const address = { account_id: ACCOUNT, key: "k" };
    const first = await sink.write(address, record("one-secret"));
    const second = await sink.write(address, record("two-secret"));
    expect(first.version).not.toBe(second.version);
    expect((await sink.read(address))?.client_secret.reveal()).toBe("two-secret");
  });

  it("returns null for a missing record and a coded error for a corrupt one without quoting it", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir });
    expect(await sink.read({ account_id: ACCOUNT, key: "missing" })).toBeNull();
    const { writeFile, mkdir } = await import("node:fs/promises");
    await mkdir(join(dir, ACCOUNT), { recursive: true });
    await writeFile(join(dir, ACCOUNT, "bad.json"), `{"client_secret":"${CANARY}"`);
    const error = await sink.read({ account_id: ACCOUNT, key: "bad" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_CORRUPT" });
    expect(String((error as Error).message)).not.toContain(CANARY);
  });

  it("fails the preflight on a read-only directory", async () => {
    if (process.getuid?.() === 0) {
      // root ignores permission bits; use a path under a regular file instead, which no one can create.
      const dir = await tempDir();
      const { writeFile } = await import("node:fs/promises");
      await writeFile(join(dir, "not-a-dir"), "x");
      const sink = new FileSink({ dir: join(dir, "not-a-dir") });
      await expect(sink.checkWritable({ account_id: ACCOUNT, key: "k" })).rejects.toMatchObject({
        code: "E_SINK_NOT_WRITABLE",
      });
      return;
    }
    const dir = await tempDir();
    await chmod(dir, 0o500);
    const sink = new FileSink({ dir });
    await expect(sink.checkWritable({ account_id: ACCOUNT, key: "k" })).rejects.toMatchObject({
      code: "E_SINK_NOT_WRITABLE",
    });
  });

  it("keeps keys inside the sink directory", () => {
    expect(safeSegment("billing web/v2")).toBe(`billing_web_v2~${sha10("billing web/v2")}`);
    expect(() => safeSegment("..")).toThrow(/cannot be used/);
    expect(() => safeSegment(".")).toThrow(/cannot be used/);
    const sink = new FileSink({ dir: "/srv/secrets" });
    expect(sink.pathOf({ account_id: ACCOUNT, key: "../../etc/passwd" })).toBe(
      `/srv/secrets/${ACCOUNT}/.._.._etc_passwd~${sha10("../../etc/passwd")}.json`,
    );
  });

  it("keeps a key of the safe set as it is and gives every other key its own file", async () => {
    // Names already made of [A-Za-z0-9._@-] keep the file they always had.
    for (const key of ["billing_web", "billing-web", "app@v2.1", "Billing_Web"])
      expect(safeSegment(key)).toBe(key);
    // Others: unsafe characters become `_`, then `~` and 10 hex digits of the SHA-256 of the key.
    expect(safeSegment("billing web")).toBe(`billing_web~${sha10("billing web")}`);
    expect(safeSegment("請求")).toBe(`__~${sha10("請求")}`);
    const dir = await tempDir();
    const sink = new FileSink({ dir });
    const keys = ["billing web", "billing_web", "請求", "管理", "billing/web"];
    for (const [i, key] of keys.entries())
      await sink.write({ account_id: ACCOUNT, key }, record(`${CANARY}-${i}`));
    for (const [i, key] of keys.entries()) {
      expect((await sink.read({ account_id: ACCOUNT, key }))?.client_secret.reveal()).toBe(`${CANARY}-${i}`);
    }
    expect(new Set(keys.map((key) => sink.pathOf({ account_id: ACCOUNT, key }))).size).toBe(keys.length);
    expect(await readdir(join(dir, ACCOUNT))).toHaveLength(keys.length);
  });

  it("refuses a key whose file or temp file name would pass 255 bytes, in the preflight too", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir, format: "json" });
    // `<key>.json` may take MAX_ATOMIC_NAME_BYTES: the temp file `.<name>.<pid>.<12 hex>.tmp` still fits.
    const longest = { account_id: ACCOUNT, key: "k".repeat(MAX_ATOMIC_NAME_BYTES - ".json".length) };
    await sink.checkWritable(longest);
    // The preflight's probe (same name length, same directory) is gone, and no record was made.
    expect(await readdir(join(dir, ACCOUNT))).toEqual([]);
    await sink.write(longest, record());
    expect((await sink.read(longest))?.client_secret.reveal()).toBe(CANARY);
    for (const key of ["k".repeat(MAX_ATOMIC_NAME_BYTES - ".json".length + 1), "n".repeat(240)]) {
      const address = { account_id: ACCOUNT, key };
      await expect(sink.checkWritable(address)).rejects.toMatchObject({ code: "E_SINK_KEY" });
      await expect(sink.write(address, record())).rejects.toMatchObject({ code: "E_SINK_KEY" });
    }
    for (const key of [".", ".."]) {
      await expect(sink.checkWritable({ account_id: ACCOUNT, key })).rejects.toMatchObject({
        code: "E_SINK_KEY",
      });
    }
    expect(await readdir(join(dir, ACCOUNT))).toEqual([`${longest.key}.json`]);
  });

  it("the preflight refuses a key whose place holds something that is not a readable file", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir });
    const address = { account_id: ACCOUNT, key: "web" };
    // A directory in the record's place: rename over it would fail after the secret was minted.
    await mkdir(sink.pathOf(address), { recursive: true });
    await expect(sink.checkWritable(address)).rejects.toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    await sink.checkWritable({ account_id: ACCOUNT, key: "other" });
  });
});

describe("file sink: env format", () => {
  it("writes <key>.env that sh sources back to the same values, however odd the values", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir, format: "env" });
    const address = { account_id: ACCOUNT, key: "odd" };
    const names = [
      "plain-name",
      "with space",
      "it's quoted",
      'dq " and $HOME and `cmd` and \\',
      "",
      "a=b,c:d@e/f+g",
    ];
    for (const client_name of names) {
      await sink.write(address, { ...record("s3cr3t'$x"), client_name });
      const path = join(dir, ACCOUNT, "odd.env");
      const { stdout } = await run("sh", [
        "-c",
        '. "$1" && printf "%s\\0%s" "$CLIENT_NAME" "$CLIENT_SECRET"',
        "sh",
        path,
      ]);
      expect(stdout.split("\0")).toEqual([client_name, "s3cr3t'$x"]);
      expect((await sink.read(address))?.client_name).toBe(client_name);
    }
  });

  it("lays the file out as NAME=value lines in a fixed order", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir, format: "env" });
    await sink.write({ account_id: ACCOUNT, key: "k" }, record("abc123"));
    expect(await readFile(join(dir, ACCOUNT, "k.env"), "utf8")).toBe(
      `CLIENT_ID=${"c".repeat(32)}\nCLIENT_SECRET=abc123\nACCOUNT_ID=${ACCOUNT}\nCLIENT_NAME=billing-web\nISSUED_AT=2026-11-26T10:00:00.000Z\n`,
    );
  });

  it("refuses a value with a control character, naming the variable and not the value", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir, format: "env" });
    const error = await sink
      .write({ account_id: ACCOUNT, key: "k" }, record(`${CANARY}\nINJECTED=1`))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_VALUE" });
    expect((error as Error).message).toContain("CLIENT_SECRET");
    expect((error as Error).message).not.toContain(CANARY);
    expect(await readdir(dir)).toEqual([]);
  });

  it("reports a hand-broken env file as corrupt without quoting it", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir, format: "env" });
    await mkdir(join(dir, ACCOUNT), { recursive: true });
    await writeFile(join(dir, ACCOUNT, "k.env"), `CLIENT_SECRET='${CANARY}\n`);
    const error = await sink.read({ account_id: ACCOUNT, key: "k" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_CORRUPT" });
    expect((error as Error).message).not.toContain(CANARY);
  });
});

describe("file sink: age encryption", () => {
  async function keys(dir: string): Promise<{ identity: string; recipient: string }> {
    const identity = join(dir, "key.txt");
    await run("age-keygen", ["-o", identity]);
    return { identity, recipient: (await run("age-keygen", ["-y", identity])).stdout.trim() };
  }

  it("writes armored <key>.env.age that the age CLI decrypts, and never the plain text", async () => {
    const dir = await tempDir();
    const { identity, recipient } = await keys(dir);
    const other = await keys(await tempDir());
    const sink = new FileSink({
      dir: join(dir, "out"),
      format: "env",
      age_recipients: [recipient, other.recipient],
    });
    await sink.write({ account_id: ACCOUNT, key: "k" }, record(CANARY));
    const path = join(dir, "out", ACCOUNT, "k.env.age");
    const onDisk = await readFile(path, "utf8");
    expect(onDisk.startsWith("-----BEGIN AGE ENCRYPTED FILE-----\n")).toBe(true);
    expect(onDisk).not.toContain(CANARY);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    // Every recipient can open it.
    for (const key of [identity, other.identity]) {
      const { stdout } = await run("age", ["-d", "-i", key, path]);
      expect(stdout).toContain(`CLIENT_SECRET=${CANARY}\n`);
    }
  });

  it("cannot read back without an identity: the preflight refuses it, read says so, write still works", async () => {
    const dir = await tempDir();
    const { recipient } = await keys(dir);
    const sink = new FileSink({ dir: join(dir, "out"), age_recipients: [recipient] });
    const address = { account_id: ACCOUNT, key: "k" };
    await expect(sink.checkWritable(address)).rejects.toMatchObject({ code: "E_SINK_NEEDS_IDENTITY" });
    await sink.write(address, record(CANARY));
    await expect(sink.read(address)).rejects.toMatchObject({ code: "E_SINK_NEEDS_IDENTITY" });
  });

  it("the preflight proves read-back: an identity that opens none of the files is refused before any write", async () => {
    const dir = await tempDir();
    const { recipient, identity } = await keys(dir);
    const wrong = await keys(await tempDir());
    const address = { account_id: ACCOUNT, key: "k" };
    const sink = new FileSink({
      dir: join(dir, "out"),
      age_recipients: [recipient],
      age_identity_file: wrong.identity,
    });
    const error = await sink.checkWritable(address).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    expect((error as Error).message).toContain("read back");
    expect(await readdir(join(dir, "out", ACCOUNT))).toEqual([]);
    const right = new FileSink({
      dir: join(dir, "out"),
      age_recipients: [recipient],
      age_identity_file: identity,
    });
    await right.checkWritable(address);
    expect(await readdir(join(dir, "out", ACCOUNT))).toEqual([]);
  });

  it("fails to decrypt with the wrong identity, and the preflight catches a missing identity file", async () => {
    const dir = await tempDir();
    const { recipient } = await keys(dir);
    const wrong = await keys(await tempDir());
    const address = { account_id: ACCOUNT, key: "k" };
    const writer = new FileSink({ dir, age_recipients: [recipient], age_identity_file: wrong.identity });
    await writer.write(address, record(CANARY));
    const error = await writer.read(address).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_DECRYPT" });
    expect(inspect(error)).not.toContain(CANARY);
    const missing = new FileSink({
      dir,
      age_recipients: [recipient],
      age_identity_file: join(dir, "nope.txt"),
    });
    await expect(missing.checkWritable(address)).rejects.toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
  });

  it("refuses an empty recipient list when built, and an invalid recipient on first use", async () => {
    expect(() => new FileSink({ dir: tmpdir(), age_recipients: [] })).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG" }),
    );
    // age is loaded on first use (src/sinks/file-sink.ts): the preflight, before anything is minted.
    const sink = new FileSink({ dir: tmpdir(), age_recipients: ["age1notarecipient"] });
    const address = { account_id: ACCOUNT, key: "k" };
    await expect(sink.checkWritable(address)).rejects.toMatchObject({ code: "E_SINK_CONFIG" });
    await expect(sink.write(address, record("never-written"))).rejects.toMatchObject({
      code: "E_SINK_CONFIG",
    });
  });
});

describe("file sink: check-and-set", () => {
  it("refuses to replace a file that changed since the version the caller read", async () => {
    const dir = await tempDir();
    const sink = new FileSink({ dir });
    const address = { account_id: ACCOUNT, key: "k" };
    const { version } = await sink.write(address, record("one-secret"), null);
    await expect(sink.write(address, record("two-secret"), null)).rejects.toMatchObject({
      code: "E_SINK_CONFLICT",
    });
    await writeFile(
      sink.pathOf(address),
      JSON.stringify({ ...JSON.parse(await readFile(sink.pathOf(address), "utf8")), client_name: "edited" }),
    );
    await expect(sink.write(address, record("two-secret"), version)).rejects.toMatchObject({
      code: "E_SINK_CONFLICT",
    });
    const current = await sink.read(address);
    expect(current?.client_name).toBe("edited");
    await sink.write(address, record("two-secret"), current?.version);
    expect((await sink.read(address))?.client_secret.reveal()).toBe("two-secret");
  });
});

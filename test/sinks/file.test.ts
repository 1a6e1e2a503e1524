import { mkdtemp, readFile, readdir, stat, chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { FileSink, safeSegment } from "../../src/sinks/file.js";
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
    expect(safeSegment("billing web/v2")).toBe("billing_web_v2");
    expect(() => safeSegment("..")).toThrow(/cannot be used/);
    const sink = new FileSink({ dir: "/srv/secrets" });
    expect(sink.pathOf({ account_id: ACCOUNT, key: "../../etc/passwd" })).toBe(
      `/srv/secrets/${ACCOUNT}/.._.._etc_passwd.json`,
    );
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

  it("cannot read back without an identity, says so, and still writes", async () => {
    const dir = await tempDir();
    const { recipient } = await keys(dir);
    const sink = new FileSink({ dir: join(dir, "out"), age_recipients: [recipient] });
    const address = { account_id: ACCOUNT, key: "k" };
    await sink.checkWritable(address);
    await sink.write(address, record(CANARY));
    await expect(sink.read(address)).rejects.toMatchObject({ code: "E_SINK_NEEDS_IDENTITY" });
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

  it("refuses an invalid recipient or an empty list when built", () => {
    expect(() => new FileSink({ dir: "/tmp", age_recipients: ["age1notarecipient"] })).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG" }),
    );
    expect(() => new FileSink({ dir: "/tmp", age_recipients: [] })).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG" }),
    );
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

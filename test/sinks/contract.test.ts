import { fileURLToPath } from "node:url";
/**
 * The one contract every secret sink meets, run against each of them with a real store behind it:
 * files on disk (JSON, env, age-encrypted and opened with the `age` CLI), `pass` with a real gpg key
 * through the exec sink, and the Vault and Kubernetes fakes over real HTTP (no Vault or API server
 * can run here; the fakes enforce the protocols' rules).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SinkError } from "../../src/errors.js";
import { createSink, type SinkDeps } from "../../src/sinks/index.js";
import type { PlainRecord } from "../../src/sinks/record.js";
import type { SecretSink, SinkAddress } from "../../src/sinks/types.js";
import { KubernetesFake } from "../helpers/kubernetes-fake.js";
import { VaultFake, type VaultPolicy } from "../helpers/vault-fake.js";
import { ACCOUNT, FIXTURES, captureLogger, leaksIn, record, run } from "./helpers.js";

/** Secrets with characters that need care in every format: quotes, `$`, backquote, `+/=`, a space. */
const CANARY = `canary-5b0e2f7c'Q$x"y\`z +/=`;
const NEWER = "canary-newer-9d41aa03+/";
const EXTERNAL = "canary-external-77c1e0";
const ALL_CANARIES = [CANARY, NEWER, EXTERNAL];

interface Harness {
  sink: SecretSink;
  /** Whether versions support check-and-set (a concurrent write is detected, not clobbered). */
  cas: boolean;
  /** The record as stored, read without the sink: the age CLI, `pass show`, the fake's store. */
  inspect(address: SinkAddress): Promise<PlainRecord | null>;
  /** A write by someone else (only needed where `cas`). */
  externalWrite(address: SinkAddress, secret: string): Promise<void>;
  /** A sink of the same kind that cannot write there. */
  refusing(): SecretSink;
  close(): Promise<void>;
}

interface Fixture {
  name: string;
  setup(deps: SinkDeps): Promise<Harness>;
}

const tempDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A directory path nobody can create, even root: it lies under a regular file. */
async function uncreatableDir(): Promise<string> {
  const dir = await tempDir("cfog-ro-");
  await writeFile(join(dir, "a-file"), "x");
  return join(dir, "a-file", "sinks");
}

function fromJson(text: string): PlainRecord {
  const parsed = JSON.parse(text) as PlainRecord;
  return {
    client_id: parsed.client_id,
    client_secret: parsed.client_secret,
    account_id: parsed.account_id,
    client_name: parsed.client_name,
    issued_at: parsed.issued_at,
  };
}

async function readIfExists(path: string): Promise<string | null> {
  return readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return null;
    throw error;
  });
}

const fileJson: Fixture = {
  name: "file (json)",
  async setup(deps) {
    const dir = await tempDir("cfog-json-");
    const blocked = await uncreatableDir();
    const path = (a: SinkAddress) => join(dir, a.account_id, `${a.key}.json`);
    return {
      sink: createSink("files", { type: "file", dir, format: "json" }, deps),
      cas: true,
      async inspect(a) {
        const text = await readIfExists(path(a));
        return text === null ? null : fromJson(text);
      },
      async externalWrite(a, secret) {
        const current = JSON.parse((await readIfExists(path(a))) ?? "{}") as Record<string, string>;
        await writeFile(path(a), JSON.stringify({ ...current, client_secret: secret }));
      },
      refusing: () => createSink("files", { type: "file", dir: blocked, format: "json" }, deps),
      close: async () => undefined,
    };
  },
};

const fileEnv: Fixture = {
  name: "file (env)",
  async setup(deps) {
    const dir = await tempDir("cfog-env-");
    const blocked = await uncreatableDir();
    const path = (a: SinkAddress) => join(dir, a.account_id, `${a.key}.env`);
    return {
      sink: createSink("envs", { type: "file", dir, format: "env" }, deps),
      cas: true,
      // Read back the way a consumer would: sourced by /bin/sh.
      async inspect(a) {
        if ((await readIfExists(path(a))) === null) return null;
        const { stdout } = await run("sh", [
          "-c",
          '. "$1" && printf "%s\\0" "$CLIENT_ID" "$CLIENT_SECRET" "$ACCOUNT_ID" "$CLIENT_NAME" "$ISSUED_AT"',
          "sh",
          path(a),
        ]);
        const [client_id, client_secret, account_id, client_name, issued_at] = stdout.split("\0") as string[];
        return { client_id, client_secret, account_id, client_name, issued_at } as PlainRecord;
      },
      async externalWrite(a, secret) {
        const text = (await readIfExists(path(a))) ?? "";
        await writeFile(path(a), text.replace(/^CLIENT_SECRET=.*$/m, `CLIENT_SECRET=${secret}`));
      },
      refusing: () => createSink("envs", { type: "file", dir: blocked, format: "env" }, deps),
      close: async () => undefined,
    };
  },
};

const fileAge: Fixture = {
  name: "file (json, age-encrypted)",
  async setup(deps) {
    const dir = await tempDir("cfog-age-");
    const blocked = await uncreatableDir();
    const identity = join(dir, "identity.txt");
    await run("age-keygen", ["-o", identity]);
    const recipient = (await run("age-keygen", ["-y", identity])).stdout.trim();
    const path = (a: SinkAddress) => join(dir, "out", a.account_id, `${a.key}.json.age`);
    const config = { type: "file" as const, format: "json" as const, age_recipients: [recipient] };
    return {
      sink: createSink("sealed", { ...config, dir: join(dir, "out"), age_identity_file: identity }, deps),
      cas: true,
      // Decrypted by the real age CLI, as an operator would.
      async inspect(a) {
        if ((await readIfExists(path(a))) === null) return null;
        return fromJson((await run("age", ["-d", "-i", identity, path(a)])).stdout);
      },
      async externalWrite(a, secret) {
        const current = fromJson((await run("age", ["-d", "-i", identity, path(a)])).stdout);
        const plain = join(dir, "plain.json");
        await writeFile(plain, JSON.stringify({ ...current, client_secret: secret }));
        await run("age", ["-a", "-r", recipient, "-o", path(a), plain]);
        await rm(plain);
      },
      refusing: () => createSink("sealed", { ...config, dir: blocked }, deps),
      close: async () => undefined,
    };
  },
};

const execPass: Fixture = {
  name: "exec (pass + gpg)",
  async setup(deps) {
    const gnupgHome = await tempDir("cfog-gpg-");
    const store = await tempDir("cfog-pass-");
    const emptyStore = await tempDir("cfog-nopass-");
    const env = { ...process.env, GNUPGHOME: gnupgHome, PASSWORD_STORE_DIR: store };
    await run(
      "gpg",
      [
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "cf-oauth-gitops test <test@example.invalid>",
        "future-default",
        "default",
        "never",
      ],
      { env },
    );
    const colons = (await run("gpg", ["--list-keys", "--with-colons"], { env })).stdout;
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1] as string;
    await run("pass", ["init", fingerprint], { env });
    // The example users copy (examples/sinks/pass-sink.sh) is the script under test.
    const script = fileURLToPath(new URL("../../examples/sinks/pass-sink.sh", import.meta.url));
    const entry = (a: SinkAddress) => `cf-oauth-gitops/${a.account_id}/${a.key}`;
    return {
      sink: createSink(
        "pass",
        {
          type: "exec",
          command: [script],
          read_command: [script],
          check_command: [script],
          timeout_seconds: 30,
          pass_env: ["GNUPGHOME", "PASSWORD_STORE_DIR"],
        },
        { ...deps, env },
      ),
      cas: false,
      async inspect(a) {
        const shown = await run("pass", ["show", entry(a)], { env }).catch(() => null);
        if (shown === null) return null;
        const [client_secret, ...rest] = shown.stdout.replace(/\n$/, "").split("\n");
        const fields = Object.fromEntries(rest.map((line) => line.split(": ", 2) as [string, string]));
        return { ...fields, client_secret } as PlainRecord;
      },
      async externalWrite() {
        throw new Error("pass has no versions");
      },
      // An uninitialised password store (the check fails) and a write command that echoes its input.
      refusing: () =>
        createSink(
          "pass",
          {
            type: "exec",
            command: [join(FIXTURES, "leaky-fail.sh")],
            read_command: [script],
            check_command: [script],
            pass_env: ["GNUPGHOME", "PASSWORD_STORE_DIR"],
            timeout_seconds: 30,
          },
          { ...deps, env: { ...env, PASSWORD_STORE_DIR: emptyStore } },
        ),
      close: async () => {
        await run("gpgconf", ["--kill", "gpg-agent"], { env }).catch(() => undefined);
      },
    };
  },
};

const vault: Fixture = {
  name: "vault (KV v2 fake)",
  async setup(deps) {
    const writer: VaultPolicy = {
      "secret/data/cf/*": ["create", "read", "update"],
      "secret/metadata/cf/*": ["create", "read", "update"],
    };
    const reader: VaultPolicy = { "secret/data/cf/*": ["read"], "secret/metadata/cf/*": ["read"] };
    const fake = await VaultFake.start({ tokens: { "writer-token": writer, "reader-token": reader } });
    const config = { type: "vault" as const, address: fake.address, mount: "secret", path_prefix: "cf" };
    const path = (a: SinkAddress) => `cf/${a.account_id}/${a.key}`;
    const env = { WRITER: "writer-token", READER: "reader-token" };
    return {
      sink: createSink("vault", { ...config, token_env: "WRITER" }, { ...deps, env }),
      cas: true,
      async inspect(a) {
        return (fake.inspect("secret", path(a))?.data as PlainRecord | undefined) ?? null;
      },
      async externalWrite(a, secret) {
        const current = fake.inspect("secret", path(a))?.data ?? {};
        fake.writeDirect("secret", path(a), { ...current, client_secret: secret });
      },
      refusing: () => createSink("vault", { ...config, token_env: "READER" }, { ...deps, env }),
      close: () => fake.close(),
    };
  },
};

const kubernetes: Fixture = {
  name: "kubernetes (API server fake)",
  async setup(deps) {
    const fake = await KubernetesFake.start({
      tokens: { "writer-token": "all", "reader-token": [{ verbs: ["get", "list"], resources: ["secrets"] }] },
      namespaces: ["apps"],
    });
    const dir = await tempDir("cfog-k8s-");
    await writeFile(join(dir, "writer"), "writer-token\n");
    await writeFile(join(dir, "reader"), "reader-token\n");
    const config = {
      type: "kubernetes" as const,
      namespace: "apps",
      name_prefix: "cf-",
      api_server: fake.url,
    };
    const name = (a: SinkAddress) => `cf-${a.key}`;
    return {
      sink: createSink("cluster", { ...config, token_file: join(dir, "writer") }, deps),
      cas: true,
      async inspect(a) {
        const secret = fake.getSecret("apps", name(a));
        if (!secret) return null;
        const decoded = Object.entries(secret.data ?? {}).map(([k, v]) => [
          k,
          Buffer.from(v, "base64").toString(),
        ]);
        return Object.fromEntries(decoded) as PlainRecord;
      },
      async externalWrite(a, secret) {
        fake.writeDirect("apps", name(a), { data: { client_secret: secret } });
      },
      refusing: () => createSink("cluster", { ...config, token_file: join(dir, "reader") }, deps),
      close: () => fake.close(),
    };
  },
};

const fixtures: Fixture[] = [fileJson, fileEnv, fileAge, execPass, vault, kubernetes];

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe.each(fixtures)("sink contract: $name", (fixture) => {
  let harness: Harness;
  const { logger, lines } = captureLogger();
  const errors: unknown[] = [];
  const described: string[] = [];
  let counter = 0;
  const nextAddress = (): SinkAddress => ({ account_id: ACCOUNT, key: `client-${++counter}` });

  /** Runs `promise`, expecting a SinkError; keeps it for the leak check. */
  async function failure(promise: Promise<unknown>): Promise<SinkError> {
    const error = await promise.then(
      () => {
        throw new Error("expected a SinkError");
      },
      (e: unknown) => e,
    );
    errors.push(error);
    expect(error).toBeInstanceOf(SinkError);
    return error as SinkError;
  }

  beforeAll(async () => {
    harness = await fixture.setup({ logger });
  });

  afterAll(async () => {
    await harness?.close();
  });

  it("writes a record and reads it back equal; the store holds exactly that record", async () => {
    const address = nextAddress();
    await harness.sink.checkWritable(address);
    const written = await harness.sink.write(address, record(CANARY));
    const back = await harness.sink.read(address);
    expect(back).not.toBeNull();
    expect(back?.client_secret.reveal()).toBe(CANARY);
    expect({ ...back, client_secret: back?.client_secret.reveal() }).toMatchObject({
      account_id: ACCOUNT,
      client_id: "c".repeat(32),
      client_name: "billing-web",
      issued_at: "2026-11-26T10:00:00.000Z",
    });
    if (harness.cas) {
      expect(written.version).not.toBeNull();
      expect(back?.version).toBe(written.version);
    }
    expect(await harness.inspect(address)).toEqual({
      client_id: "c".repeat(32),
      client_secret: CANARY,
      account_id: ACCOUNT,
      client_name: "billing-web",
      issued_at: "2026-11-26T10:00:00.000Z",
    });
    described.push(harness.sink.describe(address));
  });

  it("reads nothing where nothing was written", async () => {
    expect(await harness.sink.read(nextAddress())).toBeNull();
  });

  it("replaces a record with a newer one", async () => {
    const address = nextAddress();
    const first = await harness.sink.write(address, record(CANARY));
    const second = await harness.sink.write(
      address,
      record(NEWER, { issued_at: "2026-12-26T10:00:00.000Z", client_name: "billing-web v2" }),
    );
    const back = await harness.sink.read(address);
    expect(back?.client_secret.reveal()).toBe(NEWER);
    expect(back?.issued_at).toBe("2026-12-26T10:00:00.000Z");
    expect(back?.client_name).toBe("billing-web v2");
    expect((await harness.inspect(address))?.client_secret).toBe(NEWER);
    if (harness.cas) expect(second.version).not.toBe(first.version);
  });

  it("detects a write made by someone else between its read and its write, and clobbers nothing", async () => {
    const address = nextAddress();
    if (!harness.cas) {
      // A store without versions must say so (version null), so no caller believes it has check-and-set.
      expect((await harness.sink.write(address, record(CANARY))).version).toBeNull();
      expect((await harness.sink.read(address))?.version).toBeNull();
      return;
    }
    await harness.sink.write(address, record(CANARY));
    const seen = await harness.sink.read(address);
    await harness.externalWrite(address, EXTERNAL);

    const stale = await failure(harness.sink.write(address, record(NEWER), seen?.version ?? null));
    expect(stale.code).toBe("E_SINK_CONFLICT");
    expect((await harness.inspect(address))?.client_secret).toBe(EXTERNAL);

    // "I saw nothing there" is a stale belief too.
    const absent = await failure(harness.sink.write(address, record(NEWER), null));
    expect(absent.code).toBe("E_SINK_CONFLICT");
    expect((await harness.inspect(address))?.client_secret).toBe(EXTERNAL);

    // With the current version the write goes through.
    const fresh = await harness.sink.read(address);
    expect(fresh?.client_secret.reveal()).toBe(EXTERNAL);
    await harness.sink.write(address, record(NEWER), fresh?.version ?? null);
    expect((await harness.inspect(address))?.client_secret).toBe(NEWER);
  });

  it("fails its preflight, and its write, where it cannot write", async () => {
    const address = nextAddress();
    const refusing = harness.refusing();
    const check = await failure(refusing.checkWritable(address));
    expect(check.code).toMatch(/^E_SINK_/);
    const write = await failure(refusing.write(address, record(CANARY)));
    expect(write.code).toMatch(/^E_SINK_/);
    expect(await harness.inspect(address)).toBeNull();
    described.push(refusing.describe(address));
  });

  it("never shows a secret: not in errors, descriptions or log lines, raw or encoded", async () => {
    expect(errors.length).toBeGreaterThan(0);
    expect(described.length).toBeGreaterThan(0);
    for (const error of errors) {
      logger.error({ err: error }, "sink failed");
      const shown = [
        (error as Error).message,
        JSON.stringify(error),
        inspect(error, { depth: 10 }),
        String(error),
      ].join("\n");
      expect(leaksIn(shown, ALL_CANARIES)).toEqual([]);
    }
    expect(leaksIn(described.join("\n"), ALL_CANARIES)).toEqual([]);
    expect(lines.length).toBeGreaterThan(0);
    expect(leaksIn(lines.join("\n"), ALL_CANARIES)).toEqual([]);
  });
});

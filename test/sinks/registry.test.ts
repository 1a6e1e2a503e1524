import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { renderConfigReference } from "../../src/cli/reference.js";
import { createClient } from "../../src/cloudflare/client.js";
import { nonEmpty } from "../../src/config/fields.js";
import {
  configJsonSchema,
  desiredStateJsonSchema,
  loadConfig,
  loadDesiredState,
  policyFromConfig,
} from "../../src/config/index.js";
import { reconcileOnce } from "../../src/engine/reconcile.js";
import { ConfigError, formatIssues, SinkError } from "../../src/errors.js";
import { silentLogger } from "../../src/log.js";
import { Secret } from "../../src/secret.js";
import { createSinkRegistry, defineSink, type SinkDescriptor } from "../../src/sinks/descriptor.js";
import { SINK_TYPES, SINKS, createSink } from "../../src/sinks/index.js";
import type { SecretRecord, SecretSink, SinkAddress, StoredRecord } from "../../src/sinks/types.js";
import { FileInventoryStore } from "../../src/state/inventory.js";
import { FileJournalStore } from "../../src/state/journal.js";
import { startTestEmulator, WRITE_TOKEN } from "../helpers/emulator.js";
import { sourceProgramArgs, TSX_LOADER } from "../helpers/program.js";
import { ACCOUNT, FIXTURES, captureLogger, record } from "./helpers.js";
import { verifiedSecret } from "../helpers/token-exchange.js";

/**
 * The sink registry (src/sinks/registry.ts): the program's sinks are its descriptors, and a sink
 * defined here, outside src/, plugs in with one registry line and is then validated, located,
 * documented and written to through the engine like the built-in ones.
 */

// ---------------------------------------------------------------------------------------------------
// A sink of the test's own: records kept in memory, in a named store.

/** The stores a memory sink writes to, by name: what the test reads back. */
const STORES = new Map<string, Map<string, StoredRecord>>();

class MemorySink implements SecretSink {
  readonly type = "memory";
  readonly #records: Map<string, StoredRecord>;
  readonly #capacity: number;
  #writes = 0;

  constructor(config: { store: string; max_records: number }) {
    this.#records = STORES.get(config.store) ?? new Map();
    STORES.set(config.store, this.#records);
    this.#capacity = config.max_records;
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    if (this.#records.size >= this.#capacity && !this.#records.has(keyOf(address))) {
      throw new SinkError("E_SINK_NOT_WRITABLE", "sink=memory: the store is full", {
        disposition: "terminal",
        context: { sink: "memory" },
      });
    }
  }

  async write(address: SinkAddress, rec: SecretRecord, expectedVersion?: string | null) {
    const current = this.#records.get(keyOf(address))?.version ?? null;
    if (expectedVersion !== undefined && expectedVersion !== current) {
      throw new SinkError("E_SINK_CONFLICT", "sink=memory: the record changed since it was read", {
        context: { sink: "memory" },
      });
    }
    const version = String(++this.#writes);
    this.#records.set(keyOf(address), { ...rec, version });
    return { version };
  }

  async read(address: SinkAddress): Promise<StoredRecord | null> {
    return this.#records.get(keyOf(address)) ?? null;
  }

  describe(address: SinkAddress): string {
    return memoryLocation(address);
  }
}

const keyOf = (address: SinkAddress) => `${address.account_id}/${address.key}`;
const memoryLocation = (address: SinkAddress) => `memory:${keyOf(address)}`;

/** The descriptor, as in the README's "Writing a sink" (its class in the same file: it is small). */
const memorySink = defineSink({
  type: "memory",
  options: {
    store: nonEmpty.meta({ description: "Name of the in-process store the records go to." }),
    max_records: z.int().min(1).default(100).meta({ description: "Refuse new keys beyond this many." }),
    snapshot_file: nonEmpty
      .optional()
      .meta({ description: "Where a snapshot would go, relative to this file." }),
  },
  paths: ["snapshot_file"],
  describe: (_config, address) => memoryLocation(address),
  create: (config) => new MemorySink(config),
});

/** The one registry line: the program's sinks and this one. */
const registry = createSinkRegistry([...SINKS, memorySink]);

// ---------------------------------------------------------------------------------------------------

async function workspace(
  files: Record<string, string>,
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "cfog-registry-"));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** `file:line:col: path: message [CODE]` lines of a config that fails to load. */
async function problemsOf(load: Promise<unknown>): Promise<string> {
  const error = await load.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(error)}`);
  return formatIssues(error.issues);
}

const MEMORY_CONFIG = `account_id: ${ACCOUNT}
desired: ./desired.yaml
sinks:
  default:
    type: memory
    store: STORE
    snapshot_file: ./snapshots/memory.json
`;

describe("the program's sink registry", () => {
  it("is the only list of sinks: the config schema's `sinks:` union is built from it, in its order", () => {
    expect(SINKS.map((d: SinkDescriptor) => d.type)).toEqual(["file", "exec", "vault", "kubernetes"]);
    expect(SINK_TYPES).toEqual(SINKS.map((d: SinkDescriptor) => d.type));
    type Member = { properties: { type: { const: string } } };
    const schema = configJsonSchema() as {
      properties: { sinks: { additionalProperties: { oneOf: Member[] } } };
    };
    const members = schema.properties.sinks.additionalProperties.oneOf;
    expect(members.map((m) => m.properties.type.const)).toEqual([...SINK_TYPES]);
  });

  it("builds each of its sink types from a config entry, and describes a record without loading the sink", () => {
    const built = [
      createSink("f", { type: "file", dir: "/srv/secrets", format: "env" }),
      createSink("e", { type: "exec", command: ["true"], read_command: ["true"], timeout_seconds: 5 }),
      createSink("v", {
        type: "vault",
        address: "http://127.0.0.1:8200/",
        mount: "secret",
        path_prefix: "cf",
      }),
      createSink("k", { type: "kubernetes", namespace: "apps", api_server: "http://127.0.0.1:6443" }),
    ];
    expect(built.map((s) => s.type)).toEqual([...SINK_TYPES]);
    const address = { account_id: ACCOUNT, key: "web" };
    expect(built.map((s) => s.describe(address))).toEqual([
      `file:/srv/secrets/${ACCOUNT}/web.env`,
      `exec:true (${ACCOUNT}/web)`,
      `vault:http://127.0.0.1:8200/v1/secret/data/cf/${ACCOUNT}/web`,
      "kubernetes:apps/secrets/web",
    ]);
  });

  it("names the local directories a sink writes into, which the daemon's file watcher ignores", () => {
    const program = createSinkRegistry(SINKS);
    expect(program.localDirs({ type: "file", dir: "/srv/secrets", format: "json" } as never)).toEqual([
      "/srv/secrets",
    ]);
    const elsewhere = [
      { type: "exec", command: ["true"], read_command: ["true"], timeout_seconds: 5 },
      { type: "vault", address: "http://127.0.0.1:8200/", mount: "secret", path_prefix: "cf" },
      { type: "kubernetes", namespace: "apps", api_server: "http://127.0.0.1:6443" },
    ];
    for (const config of elsewhere) expect(program.localDirs(config as never), config.type).toEqual([]);
    // A sink that says nothing writes nowhere on this machine.
    expect(registry.localDirs({ type: "memory", store: "s", max_records: 1 } as never)).toEqual([]);
  });

  it("refuses an unknown type when the sink is made, and bad settings on its first use", async () => {
    expect(() => createSink("x", { type: "nope" } as never)).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG", message: "sink=x: unknown sink type 'nope'" }),
    );
    const address = { account_id: ACCOUNT, key: "k" };
    const sealed = createSink("x", {
      type: "file",
      dir: tmpdir(),
      format: "json",
      age_recipients: ["ssh-ed25519 not-a-key"],
    });
    // The preflight is the first use: nothing is minted before it.
    await expect(sealed.checkWritable(address)).rejects.toMatchObject({ code: "E_SINK_CONFIG" });
    await expect(sealed.write(address, record("never-written"))).rejects.toMatchObject({
      code: "E_SINK_CONFIG",
    });
    const vault = createSink("x", { type: "vault", address: "ftp://vault", mount: "s", path_prefix: "" });
    await expect(vault.read(address)).rejects.toMatchObject({ code: "E_SINK_CONFIG" });
  });

  it("passes the logger and the sink's name into log lines", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cfog-reg-"));
    try {
      const { logger, lines } = captureLogger();
      const sink = createSink("team-files", { type: "file", dir, format: "json" }, { logger });
      await sink.write({ account_id: ACCOUNT, key: "k" }, record("registry-secret"));
      expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
        expect.objectContaining({
          component: "sink",
          sink: "file",
          sink_name: "team-files",
          msg: "secret written",
        }),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses two sinks of one type", () => {
    expect(() => createSinkRegistry([...SINKS, memorySink, memorySink])).toThrow(
      "two sinks of type 'memory'",
    );
  });
});

describe("a sink defined outside src/, plugged in with one registry line", () => {
  it("is accepted in the config, its options validated, defaulted and its paths resolved", async () => {
    const ws = await workspace({ "cf-oauth-gitops.yaml": MEMORY_CONFIG.replace("STORE", "accepted") });
    try {
      const config = await loadConfig("cf-oauth-gitops.yaml", { cwd: ws.dir, sinks: registry });
      expect(config.sinks["default"]).toEqual({
        type: "memory",
        store: "accepted",
        max_records: 100,
        snapshot_file: join(ws.dir, "snapshots", "memory.json"),
      });
      // The program's own registry does not know it: the list decides, not the loader.
      expect(await problemsOf(loadConfig("cf-oauth-gitops.yaml", { cwd: ws.dir }))).toBe(
        "cf-oauth-gitops.yaml:5:11: sinks.default.type: `memory` is not one of file, exec, vault, kubernetes [E_ENUM]",
      );
    } finally {
      await ws.cleanup();
    }
  });

  it("reports a bad option at its file:line:col, with the codes the built-in sinks use", async () => {
    const text = `${MEMORY_CONFIG.replace("STORE", "bad")}    max_records: 0
    stor: typo
  second:
    type: memory
`;
    const ws = await workspace({ "cf-oauth-gitops.yaml": text });
    try {
      expect(await problemsOf(loadConfig("cf-oauth-gitops.yaml", { cwd: ws.dir, sinks: registry }))).toBe(
        [
          "cf-oauth-gitops.yaml:8:18: sinks.default.max_records: must be at least 1 [E_RANGE]",
          "cf-oauth-gitops.yaml:9:5: sinks.default.stor: unknown key `stor`; did you mean `store`? [E_UNKNOWN_KEY]",
          "cf-oauth-gitops.yaml:11:5: sinks.second.store: `store` is required [E_REQUIRED]",
        ].join("\n"),
      );
    } finally {
      await ws.cleanup();
    }
  });

  it("is in the JSON Schema and the configuration reference, with its descriptions", () => {
    const reference = renderConfigReference(configJsonSchema(registry), desiredStateJsonSchema());
    expect(reference).toContain("### `sinks.<name>` (type: memory)");
    expect(reference).toContain(
      "| `sinks.<name>.store` | string | yes |  | Name of the in-process store the records go to. |",
    );
    expect(reference).toContain(
      "| `sinks.<name>.max_records` | integer |  | `100` | Refuse new keys beyond this many.",
    );
    expect(renderConfigReference(configJsonSchema(), desiredStateJsonSchema())).not.toContain("memory");
  });

  it("receives the secret of a client created through the engine, and the emulator accepts it", async () => {
    const emu = await startTestEmulator();
    const desired = `account_id: ${ACCOUNT}
clients:
  - client_name: memory-web
    token_endpoint_auth_method: client_secret_basic
    grant_types: [authorization_code]
    response_types: [code]
    redirect_uris: [https://memory-web.example.com/callback]
    scopes: [account-settings.read]
    secret: { key: web-creds }
`;
    const ws = await workspace({
      "cf-oauth-gitops.yaml": MEMORY_CONFIG.replace("STORE", "engine"),
      "desired.yaml": desired,
    });
    const api = createClient({
      baseUrl: emu.url,
      credentials: { kind: "token", token: new Secret(WRITE_TOKEN) },
    });
    try {
      const config = await loadConfig("cf-oauth-gitops.yaml", { cwd: ws.dir, sinks: registry });
      const state = await loadDesiredState(config, { sinks: registry });
      const result = await reconcileOnce(
        {
          reader: api,
          writer: api,
          inventoryStore: new FileInventoryStore(config.state_dir),
          journal: new FileJournalStore(config.state_dir),
          sinks: (name) => registry.create(name, config.sinks[name] as { type: string }),
          logger: silentLogger,
          now: () => new Date(),
        },
        { desired: state, policy: policyFromConfig(config), rotation: config.rotation },
      );
      const [created] = result.apply?.results ?? [];
      expect(created).toMatchObject({
        kind: "create",
        status: "applied",
        secret_location: `memory:${ACCOUNT}/web-creds`,
      });
      const stored = STORES.get("engine")?.get(`${ACCOUNT}/web-creds`);
      expect(stored).toMatchObject({
        account_id: ACCOUNT,
        client_id: created?.client_id,
        client_name: "memory-web",
      });
      const verdict = await verifiedSecret(
        emu,
        ACCOUNT,
        created?.client_id ?? "",
        stored?.client_secret.reveal() ?? "",
      );
      expect(verdict.valid).toBe(true);
    } finally {
      await api.close();
      await ws.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Lazy loading, watched from a real process: test/sinks/fixtures/record-imports.mjs logs every
// module the child resolves.

const execFileAsync = promisify(execFile);
const RECORD_IMPORTS = join(FIXTURES, "record-imports.mjs");
const AGE = "/node_modules/age-encryption/";
/** undici, and src/undici.ts, which loads undici's files with `require` (which this recorder does not see). */
const UNDICI = ["/node_modules/undici/", "/src/undici.ts"];
const IMPLEMENTATIONS = ["file-sink", "exec-sink", "vault-sink", "kubernetes-sink"].map(
  (m) => `/src/sinks/${m}.ts`,
);

/** Runs node with the import recorder; returns the URLs the child resolved, and its stdout. */
async function runRecorded(args: string[], cwd: string): Promise<{ stdout: string; imported: string[] }> {
  const log = join(cwd, "imports.log");
  await writeFile(log, "");
  const { stdout } = await execFileAsync(process.execPath, ["--import", RECORD_IMPORTS, ...args], {
    cwd,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "",
      CFOG_IMPORT_LOG: log,
      NO_COLOR: "1",
    },
  });
  return { stdout, imported: (await readFile(log, "utf8")).split("\n").filter(Boolean) };
}

const loaded = (imported: string[], fragment: string) => imported.some((url) => url.includes(fragment));

describe("a sink's implementation is loaded only when the sink is used", () => {
  const config = `account_id: ${ACCOUNT}
desired: ./desired.yaml
sinks:
  default: { type: file, dir: ./plain }
  sealed:
    type: file
    dir: ./sealed
    age_recipients: [age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq]
    age_identity_file: ./identity.txt
  vault: { type: vault, address: "https://vault.example.com:8200", path_prefix: cf }
  cluster: { type: kubernetes, namespace: apps, api_server: "https://k8s.example.com" }
  script: { type: exec, command: [/bin/true], read_command: [/bin/true] }
`;

  it("`validate` loads no sink implementation, no HTTP stack and no age", async () => {
    const ws = await workspace({
      "cf-oauth-gitops.yaml": config,
      "desired.yaml": `account_id: ${ACCOUNT}\nclients: []\n`,
    });
    try {
      const { stdout, imported } = await runRecorded([...sourceProgramArgs(), "validate"], ws.dir);
      expect(stdout).toContain("ok: 0 clients");
      // The recorder works: the config module was resolved through it.
      expect(loaded(imported, "/src/sinks/registry.ts")).toBe(true);
      for (const fragment of [AGE, ...UNDICI, ...IMPLEMENTATIONS])
        expect(loaded(imported, fragment), fragment).toBe(false);
    } finally {
      await ws.cleanup();
    }
  });

  it("a plain file sink writes without loading age; an encrypting one loads it", async () => {
    const ws = await workspace({ "cf-oauth-gitops.yaml": config, "identity.txt": "" });
    try {
      const { stdout } = await runRecorded(
        ["--import", TSX_LOADER, join(FIXTURES, "write-through-sinks.ts")],
        ws.dir,
      );
      const steps = JSON.parse(stdout) as Record<"config" | "default" | "sealed", string[]>;
      expect(loaded(steps.config, "/src/sinks/registry.ts")).toBe(true);
      expect(loaded(steps.config, AGE)).toBe(false);
      expect(loaded(steps.config, "/src/sinks/file-sink.ts")).toBe(false);
      expect(loaded(steps.default, "/src/sinks/file-sink.ts")).toBe(true);
      expect(loaded(steps.default, AGE)).toBe(false);
      expect(loaded(steps.sealed, AGE)).toBe(true);
      for (const fragment of [...UNDICI, "/src/sinks/vault-sink.ts", "/src/sinks/kubernetes-sink.ts"]) {
        expect(loaded(steps.sealed, fragment), fragment).toBe(false);
      }
    } finally {
      await ws.cleanup();
    }
  });
});

import { createHash } from "node:crypto";
import { join } from "node:path";
import { SinkError } from "../errors.js";
import { MAX_ATOMIC_NAME_BYTES } from "../state/atomic.js";
import type { SinkAddress } from "./types.js";

/**
 * How a secret's key (its `secret.key`, or the client name) becomes a place in a sink. These are pure
 * functions, shared by the sinks and by their descriptors' `placement` (src/sinks/file.ts, ...), which
 * `validate` uses (src/config/load-desired.ts), so that the config check compares exactly the names
 * the sinks will write and refuses two clients that would land in one place before either is created.
 */

/** A key made only of these characters is used as it is: safe in file names, URL paths and `pass`. */
const SAFE_SEGMENT_RE = /^[A-Za-z0-9._@-]+$/;
const UNSAFE_CHAR_RE = /[^A-Za-z0-9._@-]/gu;

/** Marks a changed key; outside the safe set, so no key used as it is can contain it. */
export const KEY_HASH_SEPARATOR = "~";

/** Hex digits of SHA-256 that a changed key carries (40 bits). */
export const KEY_HASH_LENGTH = 10;

/** The first `KEY_HASH_LENGTH` hex digits of the SHA-256 of the key's UTF-8 bytes. */
export function keyHash(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex").slice(0, KEY_HASH_LENGTH);
}

/** Whether a key is used as it is (files, Vault) rather than changed and hashed. */
export function isSafeSegment(value: string): boolean {
  return SAFE_SEGMENT_RE.test(value) && value !== "." && value !== "..";
}

function keyError(sink: string, value: string, reason: string): SinkError {
  return new SinkError("E_SINK_KEY", `sink=${sink}: '${value}' ${reason}`, {
    disposition: "terminal",
    context: { sink, key: value, reason },
  });
}

/**
 * Keys and account ids as path segments (files, Vault paths). One-to-one, so two clients never share
 * a record:
 * - a key made only of `[A-Za-z0-9._@-]` is used as it is (`billing_web`, `app@v2`): names that were
 *   already safe keep the place they always had;
 * - any other key has each character outside that set replaced by `_`, then `~` and the first 10 hex
 *   digits of the SHA-256 of the original key: `billing web` becomes `billing_web~<hash>`, `請求`
 *   becomes `__~<hash>`. `~` never appears in a key used as it is, and two changed keys differ in
 *   their hash (a 40-bit clash is refused by `validate`, which compares the mapped names);
 * - `.` and `..` are refused, so no key can name the sink's directory or its parent, and nothing can
 *   escape the sink's directory or prefix (`../../etc` becomes `.._.._etc~<hash>`).
 */
export function safeSegment(value: string, sink = "file"): string {
  if (value === "" || value === "." || value === "..") {
    throw keyError(sink, value, "cannot be used as a file name");
  }
  if (SAFE_SEGMENT_RE.test(value)) return value;
  return `${value.replace(UNSAFE_CHAR_RE, "_")}${KEY_HASH_SEPARATOR}${keyHash(value)}`;
}

/**
 * The file name of a record in a file sink: `<segment>.<json|env>[.age]`, at most
 * `MAX_ATOMIC_NAME_BYTES` long so that the atomic write's temp file beside it fits NAME_MAX
 * (src/state/atomic.ts). A longer one would fail with ENAMETOOLONG after the secret was minted.
 */
export function fileRecordName(key: string, format: "json" | "env", encrypted: boolean): string {
  const name = `${safeSegment(key)}.${format}${encrypted ? ".age" : ""}`;
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_ATOMIC_NAME_BYTES) {
    throw keyError(
      "file",
      key,
      `makes a file name of ${bytes} bytes, over the limit of ${MAX_ATOMIC_NAME_BYTES} (its temporary file must fit 255 bytes)`,
    );
  }
  return name;
}

/** Path segments of a configured Vault mount or prefix, each URL-encoded. */
export function vaultSegments(path: string): string[] {
  return path
    .split("/")
    .filter((segment) => segment !== "")
    .map((segment) => encodeURIComponent(segment));
}

/** A record's path inside a Vault mount: `<path_prefix>/<account_id>/<key>`. */
export function vaultSecretPath(pathPrefix: string, address: SinkAddress): string {
  return [
    ...vaultSegments(pathPrefix),
    safeSegment(address.account_id, "vault"),
    safeSegment(address.key, "vault"),
  ].join("/");
}

/** Longest name Kubernetes accepts for a Secret (a DNS-1123 subdomain). */
export const MAX_KUBERNETES_NAME = 253;

function dnsName(text: string, max: number): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, max)
    .replace(/^-+/, "")
    .replace(/-+$/, "");
}

/**
 * A Kubernetes object name from a prefix and a key: lower case, `[a-z0-9-]` only (a valid DNS-1123
 * subdomain and label), starting and ending with a letter or digit, at most 253 characters. A key of
 * the safe set (`safeSegment`) keeps the name it always had; any other key gets `-` and its
 * `keyHash`, so `請求` and `管理` get different names. Keys of the safe set can still share a name
 * (`Billing_Web` and `billing-web`): `validate` refuses such pairs, and the kubernetes sink records
 * the original key in an annotation and refuses to write over a Secret made for another key.
 */
export function kubernetesName(prefix: string, key: string): string {
  const hash = isSafeSegment(key) ? "" : keyHash(key);
  const base = dnsName(`${prefix}${key}`, MAX_KUBERNETES_NAME - (hash === "" ? 0 : hash.length + 1));
  const name = hash === "" ? base : base === "" ? hash : `${base}-${hash}`;
  if (name === "") {
    throw new SinkError(
      "E_SINK_KEY",
      `sink=kubernetes: '${prefix}${key}' cannot be made into a Secret name`,
      {
        disposition: "terminal",
        context: { sink: "kubernetes", key, reason: "cannot be made into a Secret name" },
      },
    );
  }
  return name;
}

// ---------------------------------------------------------------------------------------------------
// Where a record lives, as messages and plans show it (each sink's `describe`, and its descriptor's
// for a sink not yet loaded: src/sinks/descriptor.ts).

/** What naming a record needs: the file sink's config, or the options of a `FileSink`. */
export interface FileLayout {
  dir: string;
  format: "json" | "env";
  age_recipients?: readonly string[] | undefined;
}

/**
 * The file a record lives in: `<dir>/<account>/<name>` with the name from `fileRecordName`. Keys are checked so that no key can escape the sink's directory, and a key
 * whose file (or temp file) name would pass 255 bytes fails here with `E_SINK_KEY`.
 */
export function fileRecordPath(layout: FileLayout, address: SinkAddress): string {
  return join(
    layout.dir,
    safeSegment(address.account_id),
    fileRecordName(address.key, layout.format, layout.age_recipients !== undefined),
  );
}

/** `file:<path>`, and how many recipients the file is encrypted to. */
export function describeFileRecord(layout: FileLayout, address: SinkAddress): string {
  const recipients = layout.age_recipients;
  return `file:${fileRecordPath(layout, address)}${recipients ? ` (age, ${recipients.length} recipient(s))` : ""}`;
}

/** What naming a record needs: the vault sink's config, or the options of a `VaultSink`. */
export interface VaultLayout {
  address: string;
  mount: string;
  path_prefix: string;
}

/** Vault's address without a trailing slash: what every API path is appended to. */
export function vaultBase(address: string): string {
  return address.replace(/\/+$/, "");
}

/** A record's data path, mount first: `<mount>/data/<path_prefix>/<account_id>/<key>`. */
export function vaultDataPath(layout: VaultLayout, address: SinkAddress): string {
  return `${vaultSegments(layout.mount).join("/")}/data/${vaultSecretPath(layout.path_prefix, address)}`;
}

/** `vault:<address>/v1/<data path>`: the URL the record is read from. */
export function describeVaultRecord(layout: VaultLayout, address: SinkAddress): string {
  return `vault:${vaultBase(layout.address)}/v1/${vaultDataPath(layout, address)}`;
}

/** `kubernetes:<namespace>/secrets/<name>`. */
export function describeKubernetesRecord(
  layout: { namespace: string; name_prefix?: string | undefined },
  address: SinkAddress,
): string {
  return `kubernetes:${layout.namespace}/secrets/${kubernetesName(layout.name_prefix ?? "", address.key)}`;
}

/** `exec:<program> (<account>/<key>)`: the program stands for the store it writes to. */
export function describeExecRecord(config: { command: readonly string[] }, address: SinkAddress): string {
  return `exec:${config.command[0]} (${address.account_id}/${address.key})`;
}

import { createHash } from "node:crypto";
import { join } from "node:path";
import type { SinkConfig } from "../config/types.js";
import { SinkError } from "../errors.js";
import { MAX_ATOMIC_NAME_BYTES } from "../state/atomic.js";
import type { SinkAddress } from "./types.js";

/**
 * How a secret's key (its `secret.key`, or the client name) becomes a place in a sink. These are pure
 * functions, shared by the sinks and by `validate` (src/config/load-desired.ts), so that the config
 * check compares exactly the names the sinks will write and refuses two clients that would land in
 * one place before either is created.
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

/** Where a record lands in a sink: `id` compares places, `shown` names the place in messages. */
export interface SinkPlacement {
  id: string;
  shown: string;
}

/**
 * The place a sink entry of the config would store `address` in, computed as the sink itself does
 * (file path, Vault data path, Secret name). Two addresses with one `id` would overwrite each
 * other's record, across sinks too (two file sinks on one directory). An exec sink's command decides
 * its own places, so only the same account and key in the same exec sink are known to clash. Throws
 * the sink's `E_SINK_KEY` for a key it cannot store; `context.reason` says why.
 */
export function sinkPlacement(
  sinkName: string,
  config: SinkConfig,
  address: SinkAddress,
  show: (absolutePath: string) => string = (path) => path,
): SinkPlacement {
  switch (config.type) {
    case "file": {
      const path = join(
        config.dir,
        safeSegment(address.account_id),
        fileRecordName(address.key, config.format, config.age_recipients !== undefined),
      );
      return { id: `file:${path}`, shown: `file ${show(path)}` };
    }
    case "vault": {
      const base = config.address.replace(/\/+$/, "");
      const data = `${vaultSegments(config.mount).join("/")}/data/${vaultSecretPath(config.path_prefix, address)}`;
      return {
        id: `vault:${base}\u0000${config.namespace ?? ""}\u0000${data}`,
        shown: `vault ${base}/v1/${data}`,
      };
    }
    case "kubernetes": {
      const name = kubernetesName(config.name_prefix ?? "", address.key);
      return {
        id: `kubernetes:${config.api_server ?? "in-cluster"}\u0000${config.namespace}\u0000${name}`,
        shown: `kubernetes Secret ${config.namespace}/${name}`,
      };
    }
    case "exec":
      return {
        id: `exec:${sinkName}\u0000${address.account_id}\u0000${address.key}`,
        shown: `exec sink \`${sinkName}\` key \`${address.key}\``,
      };
  }
}

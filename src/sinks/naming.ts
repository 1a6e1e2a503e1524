import { SinkError } from "../errors.js";

/**
 * Keys and account ids become path segments (files, Vault paths, `pass` entries): anything outside
 * `[A-Za-z0-9._@-]` becomes `_`, and the segments `.` and `..` are refused, so a client named
 * `../../etc` cannot escape the sink's directory or prefix.
 */
export function safeSegment(value: string, sink = "file"): string {
  const cleaned = value.replace(/[^A-Za-z0-9._@-]/g, "_");
  if (cleaned === "" || cleaned === "." || cleaned === "..") {
    throw new SinkError("E_SINK_KEY", `sink=${sink}: '${value}' cannot be used as a file name`, {
      disposition: "terminal",
      context: { sink, key: value },
    });
  }
  return cleaned;
}

/** Longest name Kubernetes accepts for a Secret (a DNS-1123 subdomain). */
export const MAX_KUBERNETES_NAME = 253;

/**
 * A Kubernetes object name from a prefix and a key: lower case, `[a-z0-9-]` only (a valid DNS-1123
 * subdomain and label), starting and ending with a letter or digit, at most 253 characters. Two keys
 * can map to one name (`Billing_Web` and `billing-web`); the kubernetes sink records the original
 * key in an annotation and refuses to write over a Secret made for another key.
 */
export function kubernetesName(prefix: string, key: string): string {
  const name = `${prefix}${key}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, MAX_KUBERNETES_NAME)
    .replace(/^-+/, "")
    .replace(/-+$/, "");
  if (name === "") {
    throw new SinkError(
      "E_SINK_KEY",
      `sink=kubernetes: '${prefix}${key}' cannot be made into a Secret name`,
      {
        disposition: "terminal",
        context: { sink: "kubernetes", key },
      },
    );
  }
  return name;
}

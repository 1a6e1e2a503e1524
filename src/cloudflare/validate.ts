import type { z } from "zod";

/**
 * Turning a zod failure on a response body into one line that names the field, e.g.
 * `result[3].visibility: expected one of public|private`.
 *
 * The text is built from the schema side only (expected types and values, the path, the *type* of what
 * was received), never from received values, so a create or rotate response that fails validation
 * cannot leak its `client_secret` into an error message.
 */

const MAX_ISSUES = 5;

/** `["result", 3, "visibility"]` -> `result[3].visibility`; the empty path is `(body)`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(body)";
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out.startsWith("[") ? `(body)${out}` : out;
}

/** One issue as `path: expectation`, with no received value in it. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  return `${formatIssuePath(issue.path)}: ${expectation(issue)}`;
}

/** Up to five issues, `; `-separated, with a count of the rest. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, MAX_ISSUES).map(describeIssue);
  const more = issues.length > MAX_ISSUES ? ` (and ${issues.length - MAX_ISSUES} more)` : "";
  return `${shown.join("; ")}${more}`;
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_value":
      return issue.values.length === 1
        ? `expected ${String(issue.values[0])}`
        : `expected one of ${issue.values.map(String).join("|")}`;
    case "invalid_type":
      // zod's own message names only the expected and the received *type*.
      return issue.message.replace(/^Invalid input: /, "");
    case "too_small":
      return `too small (minimum ${String(issue.minimum)})`;
    case "too_big":
      return `too big (maximum ${String(issue.maximum)})`;
    case "invalid_format":
      return `expected format ${issue.format}`;
    case "unrecognized_keys":
      return `unexpected keys ${issue.keys.join(", ")}`;
    case "invalid_union":
      return "matches none of the allowed shapes";
    default:
      return issue.code.replace(/_/g, " ");
  }
}

/**
 * Removes every string found under a `client_secret` key in `body` from `text`: a second layer after
 * the schema-side messages above, in case a future zod version quotes inputs.
 */
export function scrubSecrets(text: string, body: unknown): string {
  let out = text;
  for (const secret of collectSecrets(body)) {
    if (secret.length >= 4) out = out.split(secret).join("[REDACTED]");
  }
  return out;
}

function collectSecrets(value: unknown, found: string[] = [], depth = 0): string[] {
  if (depth > 8 || value === null || typeof value !== "object") return found;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (key === "client_secret" && typeof child === "string") found.push(child);
    else collectSecrets(child, found, depth + 1);
  }
  return found;
}

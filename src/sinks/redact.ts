/**
 * Scrubbing for text a sink did not write itself: a command's stderr, a server's error message. The
 * `Secret` wrapper keeps our own output clean, but a program we run may echo its input, so every
 * excerpt of foreign text goes through here first. The secret is removed in the forms it is likely
 * to leak in: raw, JSON-escaped, base64 and base64url (renovate scrubs the same way).
 */

const REDACTED = "[REDACTED]";

/** Below this length a value is not scrubbed: replacing one or two characters would garble text. */
const MIN_SCRUB_LENGTH = 4;

/** Every form of `secret` that is worth searching for. */
export function secretForms(secret: string): string[] {
  if (secret.length < MIN_SCRUB_LENGTH) return [];
  const bytes = Buffer.from(secret, "utf8");
  const base64 = bytes.toString("base64");
  const forms = new Set([
    secret,
    JSON.stringify(secret).slice(1, -1),
    base64,
    base64.replace(/=+$/, ""),
    bytes.toString("base64url"),
  ]);
  // Longest first, so a form that contains another is replaced whole.
  return [...forms].filter((f) => f.length >= MIN_SCRUB_LENGTH).sort((a, b) => b.length - a.length);
}

/** `text` with every form of every secret replaced by `[REDACTED]`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    for (const form of secretForms(secret)) out = out.split(form).join(REDACTED);
  }
  return out;
}

/**
 * A short, single-line, scrubbed excerpt of foreign text for an error message. Scrubbing happens
 * before truncation, so a cut can never leave the start of a secret behind.
 */
export function excerpt(text: string, secrets: readonly string[], max = 300): string {
  const clean = scrub(text, secrets).replace(/\s+/g, " ").trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

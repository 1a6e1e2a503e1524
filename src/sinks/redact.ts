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

/**
 * Pieces of a secret at least this long are scrubbed wherever they appear in a command's output.
 * A program handed the secret may print part of it (a prefix in a "bad token" message, a middle cut
 * by a log line's width); eight characters of a random secret are about 48 bits, too much to give
 * away, while shorter runs match ordinary text too often to remove.
 */
export const MIN_PIECE_LENGTH = 8;

/**
 * The encodings a piece of the secret is searched in. Base64 (and base64url) is taken from each of
 * the three byte offsets, so that the base64 of any stretch of the secret, wherever it starts, is a
 * stretch of one of them (up to its last few characters); hex from one offset is enough, each byte
 * being two characters.
 */
function pieceForms(secret: string): string[] {
  const bytes = Buffer.from(secret, "utf8");
  const forms = [
    secret,
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    bytes.toString("hex"),
  ];
  for (const offset of [0, 1, 2]) {
    const shifted = bytes.subarray(offset);
    forms.push(shifted.toString("base64"), shifted.toString("base64url"));
  }
  return forms;
}

/**
 * `text` with every run of at least {@link MIN_PIECE_LENGTH} characters that occurs in a secret (raw,
 * JSON-escaped, URL-encoded, hex, base64, base64url) replaced by `[REDACTED]`; secrets shorter than
 * that are scrubbed whole, as {@link scrub} does. Every window of the text is looked up in the set
 * of the secrets' windows, so the cost is linear in the text (callers cut it to a bounded prefix
 * first: that is safe, because a cut piece of at least the minimum length is still found).
 */
export function scrubPieces(text: string, secrets: readonly string[]): string {
  const n = MIN_PIECE_LENGTH;
  const windows = new Set<string>();
  const short: string[] = [];
  for (const secret of secrets) {
    if (secret.length < n) {
      short.push(secret);
      continue;
    }
    for (const form of pieceForms(secret)) {
      for (let i = 0; i + n <= form.length; i++) windows.add(form.slice(i, i + n));
    }
  }
  let out = text;
  if (windows.size > 0) {
    const hidden = new Uint8Array(text.length);
    for (let i = 0; i + n <= text.length; i++) {
      if (windows.has(text.slice(i, i + n))) hidden.fill(1, i, i + n);
    }
    let result = "";
    for (let i = 0; i < text.length;) {
      if (hidden[i] === 1) {
        while (hidden[i] === 1) i++;
        result += REDACTED;
      } else {
        result += text[i];
        i++;
      }
    }
    out = result;
  }
  return scrub(out, short);
}

/**
 * A short, single-line excerpt of a command's output for an error message, with every piece of the
 * secrets it was given scrubbed ({@link scrubPieces}). Only a bounded prefix is looked at; scrubbing
 * runs again after whitespace is folded, so that folding cannot join two harmless halves into a piece.
 */
export function pieceScrubbedExcerpt(text: string, secrets: readonly string[], max = 300): string {
  const head = text.slice(0, 16 * 1024);
  const folded = scrubPieces(head, secrets).replace(/\s+/g, " ").trim();
  const clean = scrubPieces(folded, secrets);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

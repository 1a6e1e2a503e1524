import { GitOpsError } from "../errors.js";

/**
 * Durations in the config and desired-state files are strings with units, largest first, each unit
 * at most once: `30s`, `10m`, `24h`, `90d`, `1h30m`. They are carried as whole seconds after parsing
 * (see `RotationPolicy` in src/core/model.ts). Bare numbers are refused: `interval: 10` is ambiguous.
 */

const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** The same grammar as a JSON Schema `pattern` (the lookahead refuses the empty string). */
export const DURATION_PATTERN = "^(?=\\d)(?:\\d+d)?(?:\\d+h)?(?:\\d+m)?(?:\\d+s)?$";

const UNIT_SECONDS = [86_400, 3_600, 60, 1] as const;

/** Seconds for a duration string, or `undefined` when the text is not one. */
export function tryParseDuration(text: string): number | undefined {
  const match = DURATION_RE.exec(text);
  if (text.length === 0 || match === null) return undefined;
  let total = 0;
  for (let i = 0; i < UNIT_SECONDS.length; i++) {
    const digits = match[i + 1];
    if (digits !== undefined) total += Number(digits) * (UNIT_SECONDS[i] ?? 0);
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/** Why `text` is not a duration, phrased as advice; used by the schema and by `parseDuration`. */
export function describeBadDuration(text: string): string {
  const hint = /^\d+$/.test(text)
    ? `add a unit, e.g. \`${text}s\``
    : /^\d+(\.\d+)?\s*\w+$/.test(text) || /\s/.test(text)
      ? "use whole numbers and the units d, h, m, s with no spaces, e.g. `90d`, `1h30m`"
      : "expected whole numbers with units d, h, m, s (largest first), e.g. `30s`, `10m`, `24h`, `90d`, `1h30m`";
  return `\`${text.length > 40 ? `${text.slice(0, 40)}...` : text}\` is not a duration: ${hint}`;
}

/**
 * Parses `30s`, `10m`, `24h`, `90d`, `1h30m` into seconds. Throws a `GitOpsError` with code
 * `E_BAD_DURATION` otherwise; the config loader reports the same problem as a located issue instead.
 */
export function parseDuration(text: string): number {
  const seconds = tryParseDuration(text);
  if (seconds === undefined) throw new GitOpsError("E_BAD_DURATION", describeBadDuration(text));
  return seconds;
}

/** The shortest string for a number of seconds (`7776000` -> `90d`), for messages. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  let rest = seconds;
  let out = "";
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) out += `${count}${unit}`;
    rest -= count * size;
  }
  return out;
}

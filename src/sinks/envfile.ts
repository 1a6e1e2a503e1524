import { SinkError } from "../errors.js";
import type { PlainRecord } from "./record.js";

/** Variable names of the env format, in file order, and the record field each one holds. */
export const ENV_VARIABLES: ReadonlyArray<readonly [string, keyof PlainRecord]> = [
  ["CLIENT_ID", "client_id"],
  ["CLIENT_SECRET", "client_secret"],
  ["ACCOUNT_ID", "account_id"],
  ["CLIENT_NAME", "client_name"],
  ["ISSUED_AT", "issued_at"],
];

const BARE = /^[A-Za-z0-9_.,:@%+/=-]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Quotes a value so that `sh` (`. file.env`), systemd's `EnvironmentFile=` and dotenv all read back
 * the same string: plain when it is made of safe characters, in single quotes when it holds no
 * single quote, otherwise in double quotes with `\ " $ \`` escaped. Control characters (a newline in
 * a client name) have no portable spelling, so they are refused; the message names the variable,
 * never the value.
 */
export function quoteEnvValue(variable: string, value: string): string {
  if (CONTROL.test(value)) {
    throw new SinkError(
      "E_SINK_VALUE",
      `sink=file: ${variable} contains a control character and cannot be written to an env file`,
      { disposition: "terminal", context: { sink: "file", variable } },
    );
  }
  if (value !== "" && BARE.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  return `"${value.replace(/[\\"$`]/g, "\\$&")}"`;
}

/** The env file for a record: one `NAME=value` line per field. */
export function formatEnv(record: PlainRecord): string {
  return ENV_VARIABLES.map(
    ([variable, field]) => `${variable}=${quoteEnvValue(variable, record[field])}\n`,
  ).join("");
}

/**
 * Parses what `formatEnv` writes (and hand edits in the same style: blank lines, `#` comments,
 * `export NAME=...`). Returns null on anything else, so the caller can report a corrupt file without
 * quoting it.
 */
export function parseEnv(text: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(trimmed);
    if (!match) return null;
    const value = unquote(match[2] ?? "");
    if (value === null) return null;
    out[match[1] as string] = value;
  }
  return out;
}

function unquote(raw: string): string | null {
  if (raw.startsWith("'")) {
    return raw.length >= 2 && raw.endsWith("'") && !raw.slice(1, -1).includes("'") ? raw.slice(1, -1) : null;
  }
  if (raw.startsWith('"')) {
    const match = /^"((?:[^"\\]|\\.)*)"$/.exec(raw);
    return match ? (match[1] ?? "").replace(/\\(.)/g, "$1") : null;
  }
  return BARE.test(raw) ? raw : null;
}

/** The record held in a parsed env file, or null when a variable is missing. */
export function recordFromEnv(variables: Record<string, string>): PlainRecord | null {
  const record: Partial<PlainRecord> = {};
  for (const [variable, field] of ENV_VARIABLES) {
    const value = variables[variable];
    if (value === undefined) return null;
    record[field] = value;
  }
  return record as PlainRecord;
}

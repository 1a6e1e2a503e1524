import { REQUIRED_FIELDS } from "../api/oauth-clients.js";
import type { RotationPolicy, SecretTarget } from "../core/model.js";
import { formatDuration, tryParseDuration } from "./duration.js";
import { type Anchor, type PathSegment, isRecord } from "./issues.js";
import { NON_OPTIONAL_SCOPES, type DesiredClientEntry } from "./schema.js";
import { closest } from "./suggest.js";
import type { ReconcilerConfig } from "./types.js";
import type { ErrorCode, WarningCode } from "../error-codes.js";

/**
 * Rules about one desired entry that relate several of its fields or the config (which sinks exist,
 * rotation defaults), plus how an entry's secret target and rotation policy are resolved. The rules
 * read the raw entry with type guards, so they still run (and report) when zod found other problems
 * in the same entry: one pass shows every problem.
 */

/** Receives problems at a YAML path; `warn` is for valid input that is probably a mistake. */
export interface RuleReporter {
  error(path: PathSegment[], code: ErrorCode, message: string, anchor?: Anchor): void;
  warn(path: PathSegment[], code: WarningCode, message: string, anchor?: Anchor): void;
}

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : undefined;

/** The sink an entry's secret goes to: its own `secret.sink` or `default`. */
function sinkNameOf(raw: Record<string, unknown>): string | undefined {
  const secret = raw.secret;
  if (secret === undefined) return "default";
  if (!isRecord(secret)) return undefined;
  if (secret.sink === undefined) return "default";
  return typeof secret.sink === "string" ? secret.sink : undefined;
}

/** Does this entry get a secret at all? Only present, confidential clients do. */
export function hasSecret(raw: Record<string, unknown>): boolean {
  return raw.ensure !== "absent" && raw.token_endpoint_auth_method !== "none";
}

/** Checks one entry (the raw mapping at `base`, e.g. `clients[3]`). */
export function checkEntry(
  raw: Record<string, unknown>,
  base: PathSegment[],
  config: ReconcilerConfig,
  report: RuleReporter,
): void {
  const ensure = raw.ensure === undefined ? "present" : raw.ensure;
  if (ensure === "present") checkRequired(raw, base, report);
  if (ensure === "absent" && raw.client_name === undefined && raw.client_id === undefined) {
    report.error(base, "E_REQUIRED", "an `ensure: absent` entry needs `client_name` or `client_id`");
  }
  checkOptionalScopes(raw, base, report);
  checkDuplicateValues(raw, base, report);
  if (ensure === "present") checkPresentHints(raw, base, report);
  checkSecret(raw, base, config, report);
  checkRotation(raw, base, config, report);
}

function checkRequired(raw: Record<string, unknown>, base: PathSegment[], report: RuleReporter): void {
  for (const field of REQUIRED_FIELDS) {
    if (raw[field] === undefined) {
      report.error(
        [...base, field],
        "E_REQUIRED",
        `\`${field}\` is required for a client that is present`,
        "parent",
      );
    }
  }
}

function checkOptionalScopes(raw: Record<string, unknown>, base: PathSegment[], report: RuleReporter): void {
  const optional = raw.optional_scopes;
  const scopes = strings(raw.scopes);
  if (!Array.isArray(optional) || scopes === undefined) return;
  const granted = new Set(scopes);
  optional.forEach((scope, i) => {
    if (typeof scope !== "string" || granted.has(scope)) return;
    if ((NON_OPTIONAL_SCOPES as readonly string[]).includes(scope)) return; // reported by the schema
    report.error(
      [...base, "optional_scopes", i],
      "E_OPTIONAL_SCOPE_NOT_IN_SCOPES",
      `optional scope \`${scope}\` must also be listed in \`scopes\``,
    );
  });
}

const LIST_FIELDS = [
  "redirect_uris",
  "grant_types",
  "response_types",
  "scopes",
  "optional_scopes",
  "allowed_cors_origins",
  "post_logout_redirect_uris",
] as const;

/** A repeated item is harmless to the API but makes the list look different from the live one. */
function checkDuplicateValues(raw: Record<string, unknown>, base: PathSegment[], report: RuleReporter): void {
  for (const field of LIST_FIELDS) {
    const list = raw[field];
    if (!Array.isArray(list)) continue;
    const seen = new Set<unknown>();
    list.forEach((item, i) => {
      if (typeof item !== "string") return;
      if (seen.has(item))
        report.warn([...base, field, i], "W_DUPLICATE_VALUE", `\`${item}\` is listed twice`);
      seen.add(item);
    });
  }
}

function checkPresentHints(raw: Record<string, unknown>, base: PathSegment[], report: RuleReporter): void {
  if (Array.isArray(raw.redirect_uris) && raw.redirect_uris.length === 0) {
    report.warn(
      [...base, "redirect_uris"],
      "W_NO_REDIRECT_URIS",
      "no redirect URIs: the authorization code flow cannot complete",
    );
  }
  if (raw.visibility === "public") {
    // Promotion needs a logo and a verified client_uri host (docs/API-BEHAVIOUR.md, "Update").
    for (const [field, code] of [
      ["logo_uri", "W_PUBLIC_NEEDS_LOGO"],
      ["client_uri", "W_PUBLIC_NEEDS_CLIENT_URI"],
    ] as const) {
      if (raw[field] === undefined) {
        report.warn(
          [...base, "visibility"],
          code,
          `\`visibility: public\` needs \`${field}\`: the API refuses to promote a client without it`,
        );
      }
    }
  }
  if (raw.token_endpoint_auth_method === "none") {
    if (raw.secret !== undefined) {
      report.warn(
        [...base, "secret"],
        "W_SECRET_IGNORED",
        "ignored: a `none` (public PKCE) client has no secret",
      );
    }
    if (isRecord(raw.rotation)) {
      report.warn(
        [...base, "rotation"],
        "W_ROTATION_IGNORED",
        "ignored: a `none` (public PKCE) client has no secret to rotate",
      );
    }
  }
}

function checkSecret(
  raw: Record<string, unknown>,
  base: PathSegment[],
  config: ReconcilerConfig,
  report: RuleReporter,
): void {
  const explicit = isRecord(raw.secret) && typeof raw.secret.sink === "string";
  if (!hasSecret(raw) && !explicit) return;
  const sink = sinkNameOf(raw);
  if (sink === undefined || Object.hasOwn(config.sinks, sink)) return;
  const names = Object.keys(config.sinks);
  if (explicit) {
    const suggestion = closest(sink, names);
    report.error(
      [...base, "secret", "sink"],
      "E_UNKNOWN_SINK",
      `no sink named \`${sink}\` in the config${suggestion ? `; did you mean \`${suggestion}\`?` : names.length > 0 ? ` (sinks: ${names.join(", ")})` : ""}`,
    );
  } else {
    report.error(
      [...base, "secret"],
      "E_UNKNOWN_SINK",
      `the config has no \`default\` sink: name one with \`secret.sink\`${names.length > 0 ? ` (sinks: ${names.join(", ")})` : ""} or define \`sinks.default\``,
      raw.secret === undefined ? "parent" : "value",
    );
  }
}

function effectiveRotation(
  raw: Record<string, unknown>,
  config: ReconcilerConfig,
): RotationPolicy | undefined {
  const rotation = raw.rotation;
  if (rotation === false) return undefined;
  if (rotation !== undefined && !isRecord(rotation)) return undefined;
  const every =
    typeof rotation?.every === "string" ? tryParseDuration(rotation.every) : config.rotation.every;
  const grace =
    typeof rotation?.grace === "string" ? tryParseDuration(rotation.grace) : config.rotation.grace;
  return every === undefined || grace === undefined ? undefined : { every, grace };
}

function checkRotation(
  raw: Record<string, unknown>,
  base: PathSegment[],
  config: ReconcilerConfig,
  report: RuleReporter,
): void {
  if (!isRecord(raw.rotation) || !hasSecret(raw)) return;
  const policy = effectiveRotation(raw, config);
  if (policy && policy.grace >= policy.every) {
    report.error(
      [...base, "rotation"],
      "E_BAD_ROTATION",
      `rotation grace (${formatDuration(policy.grace)}) must be shorter than rotation every (${formatDuration(policy.every)})`,
    );
  }
}

/** Where a valid entry's secret goes; null for absent entries and `none` clients (no secret). */
export function resolveSecret(entry: DesiredClientEntry): SecretTarget | null {
  if (entry.ensure === "absent" || entry.token_endpoint_auth_method === "none") return null;
  return { sink: entry.secret?.sink ?? "default", key: entry.secret?.key ?? entry.client_name ?? "" };
}

/** A valid entry's rotation with the config's defaults applied; null when off or not applicable. */
export function resolveRotation(entry: DesiredClientEntry, config: ReconcilerConfig): RotationPolicy | null {
  if (entry.ensure === "absent" || entry.token_endpoint_auth_method === "none") return null;
  return effectiveRotation(entry as unknown as Record<string, unknown>, config) ?? null;
}

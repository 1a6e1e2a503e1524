import {
  PROTOCOL_SCOPES,
  REQUIRED_FIELDS,
  WRITABLE_FIELDS,
  type CreateClientBody,
  type LiveClient,
  type UpdateClientBody,
  type WritableField,
} from "../api/oauth-clients.js";
import type { DesiredClient } from "./model.js";
import type { FieldChange, PlanItemCode } from "./plan-types.js";

/**
 * Every rule for comparing a desired client with a live one lives in this module, so "why does the
 * plan show a change here?" has one answer. Both sides go through the same normalisation
 * (`normaliseFields`) into one comparison key per field; a field differs exactly when its keys differ.
 * That symmetry is what makes the plan empty right after a successful apply.
 *
 * | field                       | kind       | rule                                                                    |
 * |-----------------------------|------------|-------------------------------------------------------------------------|
 * | client_name                 | scalar req | exact string; the entry's top-level `client_name` is the desired value   |
 * | redirect_uris               | set req    | order and duplicates ignored                                            |
 * | grant_types                 | set req    | order and duplicates ignored                                            |
 * | response_types              | set req    | order and duplicates ignored                                            |
 * | scopes                      | scopes req | a set, compared with `openid`/`offline_access` taken out: the server    |
 * |                             |            | adds or removes them by itself (docs/API-BEHAVIOUR.md, "Scopes"); the   |
 * |                             |            | body sends the base scopes plus exactly the protocol scopes the server  |
 * |                             |            | would hold                                                              |
 * | optional_scopes             | set opt    | a set; left out == [] == absent live; cleared with null                 |
 * | token_endpoint_auth_method  | scalar req | exact; between the confidential methods a plain patch; between `none`   |
 * |                             |            | and a confidential method a blocking `needs-replacement` conflict (the  |
 * |                             |            | emulator refuses it, src/emulator/behaviour.ts; a PATCH could not       |
 * |                             |            | return a secret)                                                        |
 * | client_uri                  | uri opt    | exact string; never re-sent when unchanged (re-sending restarts         |
 * |                             |            | verification, docs/API-BEHAVIOUR.md, "Update"); a host change (or       |
 * |                             |            | clear) once the live host is verified is a blocking `needs-replacement` |
 * |                             |            | conflict                                                                |
 * | logo_uri, policy_uri,       | scalar opt | exact string; left out == "" == absent live; cleared with null          |
 * | tos_uri                     |            |                                                                         |
 * | allowed_cors_origins,       | set opt    | a set; left out == [] == absent live; cleared with null                 |
 * | post_logout_redirect_uris   |            |                                                                         |
 * | visibility                  | ratchet    | private -> public only when the promotion preconditions hold with the   |
 * |                             |            | post-patch values (else a `visibility-pending` item naming what is      |
 * |                             |            | missing); public -> private is a non-blocking `visibility-downgrade`    |
 * |                             |            | conflict (promotion is permanent, docs/API-BEHAVIOUR.md, "Update")      |
 *
 * Required fields missing from a present entry make the entry a `missing-required` conflict (the
 * planner never creates or patches from an incomplete entry); the config loader should catch it first.
 */

/** How one writable field is compared (see the table above). */
export type FieldKind = "scalar" | "set" | "scopes" | "client_uri";

export interface FieldRule {
  kind: FieldKind;
  /** Required on create and not clearable with null (`REQUIRED_FIELDS` in src/api/oauth-clients.ts). */
  required: boolean;
}

/** How each writable field is compared (see the table above). */
const FIELD_KINDS: Readonly<Record<WritableField, FieldKind>> = {
  client_name: "scalar",
  redirect_uris: "set",
  grant_types: "set",
  response_types: "set",
  scopes: "scopes",
  optional_scopes: "set",
  token_endpoint_auth_method: "scalar",
  client_uri: "client_uri",
  logo_uri: "scalar",
  policy_uri: "scalar",
  tos_uri: "scalar",
  allowed_cors_origins: "set",
  post_logout_redirect_uris: "set",
};

const REQUIRED = new Set<WritableField>(REQUIRED_FIELDS);

/** The rule per field, in one table so tests can walk it field by field; `required` is the API's. */
export const FIELD_RULES: Readonly<Record<WritableField, FieldRule>> = Object.fromEntries(
  WRITABLE_FIELDS.map((field) => [field, { kind: FIELD_KINDS[field], required: REQUIRED.has(field) }]),
) as Record<WritableField, FieldRule>;

/** One comparison key per writable field; `undefined` means "unset" (absent, "", or an empty set). */
export type NormalForm = Record<WritableField, string | undefined>;

/** Raw field values as either side holds them. */
export type FieldValues = Partial<Record<WritableField, unknown>>;

const PROTOCOL = new Set<string>(PROTOCOL_SCOPES);

/** Builds the comparison key of every writable field. Both sides go through this one function. */
export function normaliseFields(values: FieldValues): NormalForm {
  const out = {} as NormalForm;
  for (const field of WRITABLE_FIELDS) out[field] = normaliseField(field, values[field]);
  return out;
}

function normaliseField(field: WritableField, value: unknown): string | undefined {
  const kind = FIELD_RULES[field].kind;
  if (kind === "set" || kind === "scopes")
    return Array.isArray(value) ? setKey(value, kind === "scopes") : undefined;
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * A set's comparison key: its distinct strings, sorted, joined by NUL (a character no URI, scope or
 * enum value can hold). Sort-then-skip-adjacent avoids a Set per array: this runs for every array
 * field of every client, 10,000s of times per plan.
 */
function setKey(values: readonly unknown[], dropProtocol: boolean): string | undefined {
  const items: string[] = [];
  for (const v of values) if (typeof v === "string" && !(dropProtocol && PROTOCOL.has(v))) items.push(v);
  if (items.length === 0) return undefined;
  if (items.length > 1) items.sort();
  let key = items[0]!;
  for (let i = 1; i < items.length; i++) if (items[i] !== items[i - 1]) key += `\u0000${items[i]!}`;
  return key;
}

/** Strings of an array, first occurrence kept, in input order. */
export function uniqueStrings(values: readonly unknown[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const v of values) {
    if (typeof v !== "string" || seen.has(v)) continue;
    seen.add(v);
    out.push(v);
  }
  return out;
}

/** Scopes without the protocol scopes the server manages itself. */
export function baseScopes(scopes: readonly unknown[]): string[] {
  return uniqueStrings(scopes).filter((s) => !PROTOCOL.has(s));
}

/**
 * The scopes the server will hold for these grant and response types (docs/API-BEHAVIOUR.md, "Scopes":
 * `offline_access` exactly when `refresh_token` is granted, `openid` exactly when `id_token` is a
 * response type). The user's order is kept; inconsistent protocol scopes are dropped, implied ones
 * appended.
 */
export function effectiveScopes(
  scopes: readonly unknown[],
  grantTypes: readonly unknown[] | undefined,
  responseTypes: readonly unknown[] | undefined,
): string[] {
  const implied = new Set<string>();
  if (responseTypes?.includes("id_token")) implied.add("openid");
  if (grantTypes?.includes("refresh_token")) implied.add("offline_access");
  const out = uniqueStrings(scopes).filter((s) => !PROTOCOL.has(s) || implied.has(s));
  for (const s of PROTOCOL_SCOPES) if (implied.has(s) && !out.includes(s)) out.push(s);
  return out;
}

/**
 * An "identity" scope is a simple, undotted one (`openid`, `profile`, `email`, `offline_access`);
 * API scopes are dot-delimited (docs/API-BEHAVIOUR.md, "Scopes"). Promotion needs at least one non-identity
 * scope.
 */
export function isIdentityScope(scope: string): boolean {
  return !scope.includes(".");
}

/** The lower-cased host of a URI, or the whole lower-cased string when it does not parse. */
export function hostOf(uri: string): string {
  try {
    return new URL(uri).hostname.toLowerCase();
  } catch {
    return uri.toLowerCase();
  }
}

/** A desired entry normalised once, before matching, so comparisons are string compares. */
export interface PreparedDesired {
  entry: DesiredClient;
  /** The writable fields, with the top-level `client_name` as the name. */
  values: FieldValues;
  normal: NormalForm;
  /** Required fields the entry leaves out (only meaningful for `ensure: present`). */
  missing: WritableField[];
}

/** Normalises a desired entry once; the top-level `client_name` wins over `fields.client_name`. */
export function prepareDesired(entry: DesiredClient): PreparedDesired {
  const values: FieldValues = {};
  for (const field of WRITABLE_FIELDS) {
    const v = (entry.fields as FieldValues)[field];
    if (v !== undefined && v !== null) values[field] = v;
  }
  values.client_name = entry.client_name;
  const missing = WRITABLE_FIELDS.filter(
    (f) => FIELD_RULES[f].required && (values[f] === undefined || values[f] === ""),
  );
  return { entry, values, normal: normaliseFields(values), missing };
}

/** Normalises a live client's writable fields (unknown response fields, e.g. a secret, are never read). */
export function normaliseLive(live: LiveClient): NormalForm {
  return normaliseFields(live as FieldValues);
}

/** The value a create or PATCH sends for a field; null clears an unset optional field. */
function sendValue(field: WritableField, values: FieldValues): unknown {
  const rule = FIELD_RULES[field];
  const value = values[field];
  if (rule.kind === "scopes") {
    return effectiveScopes(
      Array.isArray(value) ? value : [],
      values.grant_types as unknown[] | undefined,
      values.response_types as unknown[] | undefined,
    );
  }
  if (rule.kind === "set") {
    const items = Array.isArray(value) ? uniqueStrings(value) : [];
    return items.length === 0 && !rule.required ? null : items;
  }
  return typeof value === "string" && value !== "" ? value : null;
}

/** The create body for a prepared entry: required fields, then optional ones that are set. */
export function createBody(desired: PreparedDesired): CreateClientBody {
  const body: Record<string, unknown> = {};
  for (const field of WRITABLE_FIELDS) {
    const value = sendValue(field, desired.values);
    if (value !== null) body[field] = value;
  }
  return body as unknown as CreateClientBody;
}

/** A reason the planner reports instead of (or next to) a patch. */
export interface ComparisonIssue {
  code: PlanItemCode;
  reason: string;
  /** True when the client must not be patched at all this run. */
  blocking: boolean;
}

export interface ClientComparison {
  /** Differing fields, in `WRITABLE_FIELDS` order, `visibility` last. */
  fields: FieldChange[];
  /** Exactly the differing fields. */
  body: UpdateClientBody;
  conflicts: ComparisonIssue[];
  pending: ComparisonIssue[];
}

/** Compares one desired entry with the live client it matched. Pure; both sides pre-normalised. */
export function compareClient(
  desired: PreparedDesired,
  live: LiveClient,
  liveNormal: NormalForm = normaliseLive(live),
): ClientComparison {
  const result: ClientComparison = { fields: [], body: {}, conflicts: [], pending: [] };
  const body = result.body as Record<string, unknown>;
  const raw = live as FieldValues;
  for (const field of WRITABLE_FIELDS) {
    if (desired.normal[field] === liveNormal[field]) continue;
    if (field === "token_endpoint_auth_method") {
      const blocked = publicConfidentialSwitch(
        live.token_endpoint_auth_method,
        desired.values.token_endpoint_auth_method,
      );
      if (blocked) {
        result.conflicts.push(blocked);
        continue;
      }
    }
    if (field === "client_uri") {
      const blocked = verifiedHostChange(desired.normal.client_uri, live);
      if (blocked) {
        result.conflicts.push(blocked);
        continue;
      }
    }
    const value = sendValue(field, desired.values);
    body[field] = value;
    result.fields.push({ field, old: raw[field] ?? null, new: value });
  }
  compareVisibility(desired, live, result);
  return result;
}

/**
 * `none` is a public client (no secret); the other methods are confidential. Moving across that line
 * would need a secret to appear or vanish, which a PATCH cannot return (docs/API-BEHAVIOUR.md, "The
 * client object": the secret is shown only at create and rotate), and the emulator refuses it
 * (src/emulator/behaviour.ts): a new client is needed.
 */
function publicConfidentialSwitch(have: string | undefined, want: unknown): ComparisonIssue | undefined {
  if (have === undefined || typeof want !== "string" || have === want) return undefined;
  if (have !== "none" && want !== "none") return undefined;
  return {
    code: "needs-replacement",
    blocking: true,
    reason:
      `token_endpoint_auth_method cannot change from ${have} to ${want} (between a public and a confidential ` +
      `client); replacement needed: create a new client (new name) and delete this one`,
  };
}

/**
 * A verified `client_uri` host cannot change (docs/API-BEHAVIOUR.md, "Update"): a different host, or clearing
 * the field, needs a new client. Path-only changes are fine.
 */
function verifiedHostChange(want: string | undefined, live: LiveClient): ComparisonIssue | undefined {
  const have = live.client_uri;
  if (!have || live.client_uri_verification?.status !== "verified") return undefined;
  if (want !== undefined && hostOf(want) === hostOf(have)) return undefined;
  const target = want === undefined ? "be removed" : `change to ${hostOf(want)}`;
  return {
    code: "needs-replacement",
    blocking: true,
    reason:
      `client_uri host ${hostOf(have)} is verified and cannot ${target}; ` +
      `replacement needed: create a new client (new name) and delete this one`,
  };
}

function compareVisibility(desired: PreparedDesired, live: LiveClient, result: ClientComparison): void {
  const want = desired.entry.visibility;
  if (want === live.visibility) return;
  if (want === "private") {
    result.conflicts.push({
      code: "visibility-downgrade",
      blocking: false,
      reason:
        "client is public and cannot be made private again (promotion is permanent); " +
        "set visibility: public in the desired state",
    });
    return;
  }
  const gaps = promotionGaps(desired, live);
  if (gaps.length > 0) {
    result.pending.push({ code: "visibility-pending", blocking: false, reason: pendingReason(gaps) });
    return;
  }
  (result.body as Record<string, unknown>).visibility = "public";
  result.fields.push({ field: "visibility", old: live.visibility, new: "public" });
}

/** The text of a `visibility-pending` item. */
export function pendingReason(gaps: readonly string[]): string {
  return `visibility: public is pending: ${gaps.join("; ")}`;
}

/**
 * What stops promotion to public, judged on the values the client will have after this plan's patch
 * (desired name, logo and scopes) and the live verification state (docs/API-BEHAVIOUR.md, "Update": a
 * non-empty name, a logo, a verified client_uri host, one non-identity scope). `live` is undefined for a
 * create.
 */
export function promotionGaps(desired: PreparedDesired, live: LiveClient | undefined): string[] {
  const gaps: string[] = [];
  if (!desired.normal.client_name?.trim()) gaps.push("set a non-empty client_name");
  if (!desired.normal.logo_uri) gaps.push("set logo_uri");
  const scopes = Array.isArray(desired.values.scopes) ? baseScopes(desired.values.scopes) : [];
  if (!scopes.some((s) => !isIdentityScope(s))) {
    gaps.push(
      "add at least one non-identity scope (a dot-delimited API scope such as account-settings.read)",
    );
  }
  const verification = verificationGap(desired.normal.client_uri, live);
  if (verification) gaps.push(verification);
  return gaps;
}

function verificationGap(want: string | undefined, live: LiveClient | undefined): string | undefined {
  if (want === undefined) return "set client_uri (its host must be verified)";
  const host = hostOf(want);
  if (live === undefined) {
    return `create the client, then publish the DNS TXT record the API returns for ${host} (the next plan shows it)`;
  }
  if (!live.client_uri || hostOf(live.client_uri) !== host) {
    return `client_uri moves to ${host} in this plan; publish the DNS TXT record the API returns for it (the next plan shows it)`;
  }
  const v = live.client_uri_verification;
  if (v === undefined) return `verify the host ${host} of client_uri (no verification has started)`;
  if (v.status === "verified") return undefined;
  const record = v.text
    ? `publish DNS TXT record \`${v.text}\` at ${host}`
    : `wait for the API to issue the DNS TXT record for ${host}`;
  if (v.status === "failed") return `${record} (verification failed and must be restarted)`;
  // The OpenAPI document makes `status` optional; a verification without one is not yet verified.
  return `${record} (verification ${v.status ?? "status not reported"})`;
}

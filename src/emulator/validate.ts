import {
  GRANT_TYPES,
  REQUIRED_FIELDS,
  RESPONSE_TYPES,
  TOKEN_ENDPOINT_AUTH_METHODS,
  UPDATE_FIELDS,
  WRITABLE_FIELD_SCHEMAS,
  WRITABLE_FIELDS,
  type CreateClientBody,
  type WritableField,
} from "../api/oauth-clients.js";
import {
  CREATE_REFUSED_FIELDS,
  IDENTITY_SCOPE_PATTERN,
  IGNORE_UNKNOWN_FIELDS,
  NEVER_OPTIONAL_SCOPES,
  NULL_ON_CREATE_MEANS_ABSENT,
  PROTOCOL_SCOPE_RULES,
  VALUE_RULES,
} from "./behaviour.js";
import { fail } from "./failure.js";
import type { ScopeCatalogue } from "./scopes.js";

/**
 * The request-body rules of create and PATCH (docs/API-BEHAVIOUR.md, "Create", "Scopes", "Update"). Pure
 * functions: they take a body and the current fields and return the new fields or throw an `ApiFailure`. The
 * store decides what happens to the client; this module decides only whether the fields are valid.
 */

/** The writable fields of a stored client: exactly the create body, scopes normalised. */
export type ClientFields = CreateClientBody;

const REQUIRED = new Set<string>(REQUIRED_FIELDS);
const WRITABLE = new Set<string>(WRITABLE_FIELDS);
const PATCHABLE = new Set<string>(UPDATE_FIELDS);
/** The writable fields the API documents as plain strings (src/api/oauth-clients.ts). */
const STRING_FIELDS = new Set<WritableField>(
  WRITABLE_FIELDS.filter((field) => WRITABLE_FIELD_SCHEMAS[field].type === "string"),
);
const HTTP_URL_FIELDS = new Set<string>(VALUE_RULES.httpUrlFields);
const ANY_URL_ARRAYS = new Set<string>(VALUE_RULES.anyUrlArrayFields);
const ORIGIN_ARRAYS = new Set<string>(VALUE_RULES.originArrayFields);

/** True for a plain JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates a create body and returns normalised fields (protocol scopes applied). */
export function validateCreateBody(body: Record<string, unknown>, catalogue: ScopeCatalogue): ClientFields {
  for (const field of CREATE_REFUSED_FIELDS) {
    if (field in body) throw fail("fieldNotAllowed", `${field}: cannot be sent on create`, { field });
  }
  checkUnknownFields(body, WRITABLE);
  const fields: Partial<Record<WritableField, unknown>> = {};
  for (const field of WRITABLE_FIELDS) {
    const value = body[field];
    if (value === undefined) continue;
    if (value === null) {
      if (NULL_ON_CREATE_MEANS_ABSENT) continue;
      throw fail("invalidField", `${field}: cannot be null`, { field });
    }
    fields[field] = checkFieldValue(field, value);
  }
  for (const field of REQUIRED_FIELDS) {
    if (fields[field] === undefined) throw fail("invalidField", `${field}: required`, { field });
  }
  return validateMerged(fields as ClientFields, catalogue);
}

/** Result of applying a PATCH body to the current fields. */
export interface PatchOutcome {
  fields: ClientFields;
  /** Which writable fields the body carried (null included). */
  sent: ReadonlySet<WritableField>;
  /** `visibility` as sent, or undefined when absent. */
  visibility: unknown;
}

/** Applies a PATCH: only sent fields change, arrays replaced whole, null clears optionals; re-validates. */
export function applyPatchBody(
  current: ClientFields,
  body: Record<string, unknown>,
  catalogue: ScopeCatalogue,
): PatchOutcome {
  checkUnknownFields(body, PATCHABLE);
  const merged: Record<string, unknown> = { ...current };
  const sent = new Set<WritableField>();
  for (const field of WRITABLE_FIELDS) {
    if (!(field in body)) continue;
    const value = body[field];
    if (value === undefined) continue;
    sent.add(field);
    if (value === null) {
      if (REQUIRED.has(field)) throw fail("invalidField", `${field}: required, cannot be null`, { field });
      delete merged[field];
      continue;
    }
    merged[field] = checkFieldValue(field, value);
  }
  return {
    fields: validateMerged(merged as unknown as ClientFields, catalogue),
    sent,
    visibility: body["visibility"],
  };
}

/** The rules that span fields; applied to every create and to every merged PATCH result. */
export function validateMerged(fields: ClientFields, catalogue: ScopeCatalogue): ClientFields {
  if (!fields.grant_types.includes("authorization_code")) {
    throw fail("invalidField", "grant_types: must contain authorization_code", { field: "grant_types" });
  }
  if (fields.redirect_uris.length < VALUE_RULES.minRedirectUris) {
    throw fail("invalidField", `redirect_uris: at least ${VALUE_RULES.minRedirectUris} required`, {
      field: "redirect_uris",
    });
  }
  if (fields.response_types.length < VALUE_RULES.minResponseTypes) {
    throw fail("invalidField", `response_types: at least ${VALUE_RULES.minResponseTypes} required`, {
      field: "response_types",
    });
  }
  const scopes = normaliseProtocolScopes(fields);
  scopes.forEach((scope, i) => checkScope(scope, `scopes[${i}]`, catalogue));
  if (scopes.length < VALUE_RULES.minScopes) {
    throw fail("invalidField", `scopes: at least ${VALUE_RULES.minScopes} required`, { field: "scopes" });
  }
  if (fields.optional_scopes) checkOptionalScopes(fields.optional_scopes, scopes);
  return { ...fields, scopes };
}

/** Strips `openid`/`offline_access` and re-adds each exactly when its rule holds (behaviour.ts). */
export function normaliseProtocolScopes(
  fields: Pick<ClientFields, "scopes" | "grant_types" | "response_types">,
) {
  const protocol = new Set<string>(PROTOCOL_SCOPE_RULES.map((r) => r.scope));
  const out = fields.scopes.filter((s) => !protocol.has(s));
  for (const rule of PROTOCOL_SCOPE_RULES) if (rule.when(fields)) out.push(rule.scope);
  return out;
}

/** True for a scope with no dot and no colon (identity or protocol scope). */
export function isIdentityScope(scope: string): boolean {
  return IDENTITY_SCOPE_PATTERN.test(scope);
}

/** Unknown fields are ignored unless behaviour.ts says otherwise. */
function checkUnknownFields(body: Record<string, unknown>, known: ReadonlySet<string>): void {
  if (IGNORE_UNKNOWN_FIELDS) return;
  const unknown = Object.keys(body).find((key) => !known.has(key));
  if (unknown !== undefined) throw fail("fieldNotAllowed", `${unknown}: unknown field`, { field: unknown });
}

function checkScope(scope: string, where: string, catalogue: ScopeCatalogue): void {
  if (scope.includes(":")) {
    throw fail("invalidScope", `${where}: colon-delimited scope '${scope}' is not accepted`, { scope });
  }
  if (scope.includes(".")) {
    if (!catalogue.ids.has(scope)) {
      throw fail("invalidScope", `${where}: unknown scope '${scope}' (not in GET /oauth/scopes)`, { scope });
    }
    return;
  }
  if (!isIdentityScope(scope)) throw fail("invalidScope", `${where}: invalid scope '${scope}'`, { scope });
}

function checkOptionalScopes(optional: readonly string[], scopes: readonly string[]): void {
  const never = new Set<string>(NEVER_OPTIONAL_SCOPES);
  const all = new Set(scopes);
  optional.forEach((scope, i) => {
    if (never.has(scope)) {
      throw fail("invalidOptionalScope", `optional_scopes[${i}]: '${scope}' cannot be optional`, { scope });
    }
    if (!all.has(scope)) {
      throw fail("invalidOptionalScope", `optional_scopes[${i}]: '${scope}' is not in scopes`, { scope });
    }
  });
}

/** Type and format check of one sent value; returns it as stored. */
function checkFieldValue(field: WritableField, value: unknown): unknown {
  if (STRING_FIELDS.has(field)) {
    if (typeof value !== "string") throw fail("invalidField", `${field}: must be a string`, { field });
    if (HTTP_URL_FIELDS.has(field) && !isHttpUrl(value)) {
      throw fail("invalidField", `${field}: must be an absolute http(s) URL`, { field });
    }
    return value;
  }
  switch (field) {
    case "token_endpoint_auth_method":
      return checkEnum(field, value, TOKEN_ENDPOINT_AUTH_METHODS);
    case "grant_types":
      return checkEnumArray(field, value, GRANT_TYPES);
    case "response_types":
      return checkEnumArray(field, value, RESPONSE_TYPES);
    default:
      return checkStringArray(field, value);
  }
}

function checkEnum(field: string, value: unknown, allowed: readonly string[]): string {
  if (typeof value !== "string" || !allowed.includes(value)) {
    throw fail("invalidField", `${field}: must be one of ${allowed.join(", ")}`, { field });
  }
  return value;
}

function checkEnumArray(field: string, value: unknown, allowed: readonly string[]): string[] {
  const items = checkStringArray(field, value);
  items.forEach((item, i) => checkEnum(`${field}[${i}]`, item, allowed));
  return items;
}

function checkStringArray(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw fail("invalidField", `${field}: must be an array of strings`, { field });
  const seen = new Set<string>();
  value.forEach((item: unknown, i) => {
    if (typeof item !== "string" || item.length === 0) {
      throw fail("invalidField", `${field}[${i}]: must be a non-empty string`, { field });
    }
    if (VALUE_RULES.refuseDuplicates && seen.has(item)) {
      throw fail("invalidField", `${field}[${i}]: duplicate '${item}'`, { field });
    }
    seen.add(item);
    if (ANY_URL_ARRAYS.has(field) && !isUrl(item)) {
      throw fail("invalidField", `${field}[${i}]: must be an absolute URL`, { field });
    }
    if (ORIGIN_ARRAYS.has(field) && !isOrigin(item)) {
      throw fail("invalidField", `${field}[${i}]: must be an origin like https://example.com`, { field });
    }
  });
  return [...(value as string[])];
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function isUrl(value: string): boolean {
  return parseUrl(value) !== undefined;
}

function isHttpUrl(value: string): boolean {
  const url = parseUrl(value);
  return url !== undefined && (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
}

function isOrigin(value: string): boolean {
  const url = parseUrl(value);
  return url !== undefined && isHttpUrl(value) && url.origin === value;
}

/** The lowercase host name of an http(s) URL (verification is per host, docs/API-BEHAVIOUR.md, "Update"). */
export function hostOf(uri: string): string {
  return parseUrl(uri)?.hostname.toLowerCase() ?? "";
}

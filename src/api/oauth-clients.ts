import { z } from "zod";

/**
 * The vocabulary of Cloudflare's OAuth-clients API, as zod schemas with the TypeScript types derived
 * from them: field names and types, enums, which fields a create requires, which fields are writable,
 * read-only or patchable. The HTTP client (src/cloudflare), the planner (src/core), the config loader
 * (src/config) and the emulator (src/emulator) all take it from here and not from each other, so the
 * emulator, which is what the tests believe about Cloudflare, never inherits the client's assumptions
 * by accident.
 *
 * This module says what the API's documents say and nothing about behaviour: retries and tolerance
 * belong to the client, validation quirks, error wording and status codes to the emulator
 * (src/emulator/behaviour.ts). Its source is docs/api/oauth-clients.openapi.json (the subset of
 * Cloudflare's OpenAPI document) and docs/API-BEHAVIOUR.md; test/api/openapi.test.ts holds every
 * schema here against the OpenAPI document field by field and lists, with reasons, where it differs.
 *
 * Objects are not `.strict()`: Cloudflare adds response fields over time and an unknown field must not
 * break a reconcile. Unknown fields are dropped.
 */

/** `iam_oauth_client_grant_types` items. The API also requires `authorization_code` to be present. */
export const GRANT_TYPES = ["authorization_code", "refresh_token"] as const;
export const grantTypeSchema = z.enum(GRANT_TYPES);
export type GrantType = z.infer<typeof grantTypeSchema>;

/** `iam_oauth_client_response_types` items. */
export const RESPONSE_TYPES = ["token", "id_token", "code"] as const;
export const responseTypeSchema = z.enum(RESPONSE_TYPES);
export type ResponseType = z.infer<typeof responseTypeSchema>;

/** `iam_oauth_client_token_endpoint_auth_method`; `none` is a public (PKCE) client with no secret. */
export const TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"] as const;
export const tokenEndpointAuthMethodSchema = z.enum(TOKEN_ENDPOINT_AUTH_METHODS);
export type TokenEndpointAuthMethod = z.infer<typeof tokenEndpointAuthMethodSchema>;

/** A client's `visibility`; every new client is `private`, and promotion to `public` is one-way. */
export const VISIBILITIES = ["public", "private"] as const;
export const visibilitySchema = z.enum(VISIBILITIES);
export type Visibility = z.infer<typeof visibilitySchema>;

/** `client_uri_verification.status`: the DNS verification of the `client_uri` host. */
export const VERIFICATION_STATUSES = ["pending", "in_progress", "verified", "failed"] as const;
export const verificationStatusSchema = z.enum(VERIFICATION_STATUSES);
export type VerificationStatus = z.infer<typeof verificationStatusSchema>;

/**
 * Every field a create or PATCH may send, with its documented type (`iam_oauth_client_common`), in
 * the order the planner compares, renders and exports them. The other field lists and both request
 * bodies are derived from this one table.
 */
export const WRITABLE_FIELD_SCHEMAS = {
  client_name: z.string(),
  redirect_uris: z.array(z.string()),
  grant_types: z.array(grantTypeSchema),
  response_types: z.array(responseTypeSchema),
  scopes: z.array(z.string()),
  optional_scopes: z.array(z.string()),
  token_endpoint_auth_method: tokenEndpointAuthMethodSchema,
  client_uri: z.string(),
  logo_uri: z.string(),
  policy_uri: z.string(),
  tos_uri: z.string(),
  allowed_cors_origins: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
} as const;
type WritableSchemas = typeof WRITABLE_FIELD_SCHEMAS;
export type WritableField = keyof WritableSchemas;

/** The fields a create or PATCH may send; the planner compares exactly these. */
export const WRITABLE_FIELDS = Object.keys(WRITABLE_FIELD_SCHEMAS) as [WritableField, ...WritableField[]];

/**
 * Fields a create must carry (`iam_oauth_client_create_request.required`). The API also refuses to
 * clear them with `null` on PATCH (docs/API-BEHAVIOUR.md, "Update").
 */
export const REQUIRED_FIELDS = [
  "client_name",
  "grant_types",
  "redirect_uris",
  "response_types",
  "scopes",
  "token_endpoint_auth_method",
] as const satisfies readonly WritableField[];
export type RequiredField = (typeof REQUIRED_FIELDS)[number];
export type OptionalField = Exclude<WritableField, RequiredField>;

const REQUIRED = new Set<WritableField>(REQUIRED_FIELDS);

/** Writable fields a create may leave out and a PATCH may clear with `null`. */
export const OPTIONAL_FIELDS = WRITABLE_FIELDS.filter((f): f is OptionalField => !REQUIRED.has(f));

const optionalMask = Object.fromEntries(OPTIONAL_FIELDS.map((f) => [f, true])) as {
  [K in OptionalField]: true;
};

/** The body of `POST /accounts/{account_id}/oauth_clients`. */
export const createClientBodySchema = z.object(WRITABLE_FIELD_SCHEMAS).partial(optionalMask);
export type CreateClientBody = z.infer<typeof createClientBodySchema>;

type UpdateShape = { [K in RequiredField]: z.ZodOptional<WritableSchemas[K]> } & {
  [K in OptionalField]: z.ZodOptional<z.ZodNullable<WritableSchemas[K]>>;
} & { visibility: z.ZodOptional<z.ZodLiteral<"public">> };

function updateShape(): UpdateShape {
  const shape: Record<string, z.ZodType> = {};
  for (const field of WRITABLE_FIELDS) {
    const schema = WRITABLE_FIELD_SCHEMAS[field];
    shape[field] = REQUIRED.has(field) ? schema.optional() : schema.nullable().optional();
  }
  shape["visibility"] = z.literal("public").optional();
  return shape as unknown as UpdateShape;
}

/**
 * The body of `PATCH /accounts/{account_id}/oauth_clients/{id}`: any subset of the writable fields;
 * `null` clears an optional one (docs/API-BEHAVIOUR.md, "Update"); `visibility` accepts only `public`.
 */
export const updateClientBodySchema = z.object(updateShape());
export type UpdateClientBody = z.infer<typeof updateClientBodySchema>;
export type UpdateField = keyof UpdateClientBody;

/** The fields a PATCH may send: the writable ones and `visibility`. */
export const UPDATE_FIELDS = Object.keys(updateClientBodySchema.shape) as [UpdateField, ...UpdateField[]];

/**
 * Fields the client object marks `readOnly`: the server sets them and a create cannot send them
 * (`visibility` changes only through a PATCH promotion).
 */
export const READ_ONLY_FIELDS = [
  "client_id",
  "visibility",
  "has_rotated_secret",
  "created_at",
  "updated_at",
  "promoted_at",
] as const;
export type ReadOnlyField = (typeof READ_ONLY_FIELDS)[number];

/**
 * Scopes the server adds or removes by itself, following `grant_types` and `response_types` (the
 * `scopes` description in the OpenAPI document); a reconciler compares scopes without them.
 */
export const PROTOCOL_SCOPES = ["openid", "offline_access"] as const;

/** `iam_oauth_client_uri_verification`: both fields optional, as documented. */
export const clientUriVerificationSchema = z.object({
  status: verificationStatusSchema.optional(),
  text: z.string().optional(),
});

const W = WRITABLE_FIELD_SCHEMAS;

/** A client as the API returns it from list, get and PATCH (`iam_oauth_client`). */
export const liveClientSchema = z.object({
  client_id: z.string().min(1),
  visibility: visibilitySchema,
  client_name: W.client_name.optional(),
  client_uri: W.client_uri.optional(),
  client_uri_verification: clientUriVerificationSchema.optional(),
  logo_uri: W.logo_uri.optional(),
  policy_uri: W.policy_uri.optional(),
  tos_uri: W.tos_uri.optional(),
  allowed_cors_origins: W.allowed_cors_origins.optional(),
  redirect_uris: W.redirect_uris.optional(),
  post_logout_redirect_uris: W.post_logout_redirect_uris.optional(),
  grant_types: W.grant_types.optional(),
  response_types: W.response_types.optional(),
  scopes: W.scopes.optional(),
  optional_scopes: W.optional_scopes.optional(),
  token_endpoint_auth_method: W.token_endpoint_auth_method.optional(),
  has_rotated_secret: z.boolean().optional(),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
  promoted_at: z.string().optional(),
});
export type LiveClient = z.infer<typeof liveClientSchema>;

/** `result` of `GET /accounts/{account_id}/oauth_clients`: one page, the whole list. */
export const liveClientListSchema = z.array(liveClientSchema);

/**
 * The create response (`iam_oauth_client_with_secret`): a client plus, once, its secret (absent for
 * `none` clients).
 */
export const createdClientSchema = liveClientSchema.extend({ client_secret: z.string().min(1).optional() });

/** `result` of `POST .../rotate_secret`: the new secret, shown this once. */
export const rotateSecretResultSchema = z.object({ client_secret: z.string().min(1) });

/** One entry of `GET /oauth/scopes` (`iam_oauth_scope`). */
export const scopeSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  category: z.string().optional(),
  scopes: z.array(z.string()).optional(),
});
export type OAuthScope = z.infer<typeof scopeSchema>;

/** `result` of `GET /oauth/scopes`. */
export const scopeListSchema = z.array(scopeSchema);

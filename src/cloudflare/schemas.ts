import { z } from "zod";

/**
 * zod schemas for what the Cloudflare OAuth-clients API returns, from Cloudflare's published OpenAPI
 * document and docs/API-BEHAVIOUR.md. Responses are validated at the edge so that a response that
 * breaks the contract fails with the name of the field, not deep inside the planner.
 *
 * Objects are not `.strict()`: Cloudflare adds response fields over time and an unknown field must not
 * break a reconcile. Unknown fields are dropped.
 */

export const GRANT_TYPES = ["authorization_code", "refresh_token"] as const;
export const RESPONSE_TYPES = ["token", "id_token", "code"] as const;
export const TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"] as const;
export const VISIBILITIES = ["public", "private"] as const;
export const VERIFICATION_STATUSES = ["pending", "in_progress", "verified", "failed"] as const;

export type GrantType = (typeof GRANT_TYPES)[number];
export type ResponseType = (typeof RESPONSE_TYPES)[number];
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];
export type Visibility = (typeof VISIBILITIES)[number];

/** The fields a create or PATCH may send; the planner compares exactly these. */
export const WRITABLE_FIELDS = [
  "client_name",
  "redirect_uris",
  "grant_types",
  "response_types",
  "scopes",
  "optional_scopes",
  "token_endpoint_auth_method",
  "client_uri",
  "logo_uri",
  "policy_uri",
  "tos_uri",
  "allowed_cors_origins",
  "post_logout_redirect_uris",
] as const;
export type WritableField = (typeof WRITABLE_FIELDS)[number];

/**
 * Fields that are required on create and cannot be cleared with `null` (docs/API-BEHAVIOUR.md, "Create",
 * "Update").
 */
export const REQUIRED_FIELDS = [
  "client_name",
  "grant_types",
  "redirect_uris",
  "response_types",
  "scopes",
  "token_endpoint_auth_method",
] as const;

/** Scopes the server adds or removes by itself (docs/API-BEHAVIOUR.md, "Scopes"). */
export const PROTOCOL_SCOPES = ["openid", "offline_access"] as const;

export const clientUriVerificationSchema = z.object({
  status: z.enum(VERIFICATION_STATUSES),
  text: z.string().optional(),
});

/** A client as the API returns it from list, get and PATCH. */
export const liveClientSchema = z.object({
  client_id: z.string().min(1),
  visibility: z.enum(VISIBILITIES),
  client_name: z.string().optional(),
  client_uri: z.string().optional(),
  client_uri_verification: clientUriVerificationSchema.optional(),
  logo_uri: z.string().optional(),
  policy_uri: z.string().optional(),
  tos_uri: z.string().optional(),
  allowed_cors_origins: z.array(z.string()).optional(),
  redirect_uris: z.array(z.string()).optional(),
  post_logout_redirect_uris: z.array(z.string()).optional(),
  grant_types: z.array(z.enum(GRANT_TYPES)).optional(),
  response_types: z.array(z.enum(RESPONSE_TYPES)).optional(),
  scopes: z.array(z.string()).optional(),
  optional_scopes: z.array(z.string()).optional(),
  token_endpoint_auth_method: z.enum(TOKEN_ENDPOINT_AUTH_METHODS).optional(),
  has_rotated_secret: z.boolean().optional(),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
  promoted_at: z.string().optional(),
});
export type LiveClient = z.infer<typeof liveClientSchema>;

/** The create response: a client plus, once, its secret (absent for `none` clients). */
export const createdClientSchema = liveClientSchema.extend({ client_secret: z.string().min(1).optional() });

export const rotateSecretResultSchema = z.object({ client_secret: z.string().min(1) });

export const scopeSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  category: z.string().optional(),
  scopes: z.array(z.string()).optional(),
});
export type OAuthScope = z.infer<typeof scopeSchema>;

export const singleIdSchema = z.object({ id: z.string() }).nullable().optional();

export const apiMessageSchema = z.object({
  code: z.number().int(),
  message: z.string(),
  documentation_url: z.string().optional(),
  source: z.object({ pointer: z.string().optional() }).optional(),
});
export type ApiMessage = z.infer<typeof apiMessageSchema>;

/** The v4 envelope, parameterised by the result schema. */
export function envelopeSchema<T extends z.ZodType>(result: T) {
  return z.object({
    success: z.boolean(),
    errors: z.array(apiMessageSchema),
    messages: z.array(apiMessageSchema),
    result: result,
    result_info: z.record(z.string(), z.unknown()).optional(),
  });
}

export const failureEnvelopeSchema = z.object({
  success: z.literal(false),
  errors: z.array(apiMessageSchema).min(1),
  messages: z.array(apiMessageSchema).optional(),
  result: z.null().optional(),
});

/** The body of a create request. */
export interface CreateClientBody {
  client_name: string;
  redirect_uris: string[];
  grant_types: GrantType[];
  response_types: ResponseType[];
  scopes: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  optional_scopes?: string[];
  client_uri?: string;
  logo_uri?: string;
  policy_uri?: string;
  tos_uri?: string;
  allowed_cors_origins?: string[];
  post_logout_redirect_uris?: string[];
}

/** The body of a PATCH: any subset; `null` clears an optional field; `visibility` only `public`. */
export type UpdateClientBody = {
  [K in keyof CreateClientBody]?: CreateClientBody[K] | null;
} & { visibility?: "public" };

/**
 * `result` of `GET /accounts/{account_id}/oauth_clients`: one page, the whole list (docs/API-BEHAVIOUR.md,
 * "Endpoints").
 */
export const liveClientListSchema = z.array(liveClientSchema);

/** `result` of `GET /oauth/scopes`. */
export const scopeListSchema = z.array(scopeSchema);

import { z } from "zod";

/**
 * The v4 envelope every Cloudflare API answer comes in (docs/API-BEHAVIOUR.md, "Envelope and auth";
 * `iam_messages-2` and `iam_api-response-common-failure` in docs/api/oauth-clients.openapi.json).
 * Part of the API's vocabulary (src/api/oauth-clients.ts); how a caller reacts to a failure is not.
 */

/** One entry of `errors` or `messages`. */
export const apiMessageSchema = z.object({
  code: z.number().int(),
  message: z.string(),
  documentation_url: z.string().optional(),
  source: z.object({ pointer: z.string().optional() }).optional(),
});
export type ApiMessage = z.infer<typeof apiMessageSchema>;

/** A success envelope, parameterised by the result schema. */
export function envelopeSchema<T extends z.ZodType>(result: T) {
  return z.object({
    success: z.boolean(),
    errors: z.array(apiMessageSchema),
    messages: z.array(apiMessageSchema),
    result: result,
    result_info: z.record(z.string(), z.unknown()).optional(),
  });
}

/** A failure envelope: `success: false` and at least one error. */
export const failureEnvelopeSchema = z.object({
  success: z.literal(false),
  errors: z.array(apiMessageSchema).min(1),
  messages: z.array(apiMessageSchema).optional(),
  result: z.null().optional(),
});

/** `result` of the DELETEs (`iam_api-response-single-id`): `{id}`, or null. */
export const singleIdSchema = z.object({ id: z.string() }).nullable().optional();

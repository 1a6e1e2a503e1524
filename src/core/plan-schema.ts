import { z } from "zod";
import { createClientBodySchema, UPDATE_FIELDS, updateClientBodySchema } from "../api/oauth-clients.js";
import { GitOpsError } from "../errors.js";
import { PLAN_VERSION, type Plan } from "./plan-types.js";
import { BLOCKED_STATUSES, ROTATION_PHASES, SECRET_ACTION_KINDS } from "./rotation-terms.js";

/**
 * The schema of a saved plan (`plan --out FILE`, `apply --plan FILE`). A reviewed plan is read back from
 * disk, so it is validated like any other input: a hand-edited or truncated file fails with the path of
 * the bad field instead of half-applying. Checksum freshness is a separate step (`verifyPlanFresh`).
 * The request bodies a change carries are the API's own (src/api/oauth-clients.ts), not a copy.
 */

const sourceSchema = z.object({ file: z.string(), line: z.number(), col: z.number(), path: z.string() });
const secretTargetSchema = z.object({ sink: z.string(), key: z.string() });

const changeSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("create"),
    account_id: z.string(),
    client_name: z.string(),
    body: createClientBodySchema,
    secret: secretTargetSchema.nullable(),
    source: sourceSchema,
  }),
  z.object({
    kind: z.literal("update"),
    account_id: z.string(),
    client_id: z.string(),
    client_name: z.string(),
    updated_at: z.string().nullable(),
    fields: z.array(z.object({ field: z.enum(UPDATE_FIELDS), old: z.unknown(), new: z.unknown() })),
    body: updateClientBodySchema,
    source: sourceSchema,
  }),
  z.object({
    kind: z.literal("delete"),
    account_id: z.string(),
    client_id: z.string(),
    client_name: z.string(),
    updated_at: z.string().nullable(),
    reason: z.enum(["ensure-absent", "prune-owned", "prune-all"]),
    source: sourceSchema.optional(),
  }),
]);

const itemSchema = z.object({
  code: z.enum([
    "pinned-not-found",
    "duplicate-live-name",
    "duplicate-inventory-name",
    "duplicate-desired",
    "already-claimed",
    "missing-required",
    "needs-replacement",
    "visibility-downgrade",
    "visibility-pending",
    "orphaned",
    "unmanaged",
    "not-owned",
    "ignored",
    "live-not-read",
  ]),
  account_id: z.string(),
  client_name: z.string(),
  client_id: z.string().optional(),
  reason: z.string(),
  source: sourceSchema.optional(),
});

const clientRefSchema = z.object({ account_id: z.string(), client_id: z.string(), client_name: z.string() });
const count = z.number().int().min(0);

const rotationItemSchema = z.object({
  stage: z.enum(["resume", "act"]),
  account_id: z.string(),
  client_id: z.string().nullable(),
  client_name: z.string(),
  phase: z.enum(ROTATION_PHASES).nullable(),
  due_at: z.string().nullable(),
  actions: z.array(z.enum(SECRET_ACTION_KINDS)),
  wait_until: z.string().optional(),
  blocked: z
    .object({ status: z.enum(BLOCKED_STATUSES), code: z.string().nullable(), reason: z.string() })
    .optional(),
});

/** The whole saved plan. Unknown keys are dropped. */
export const planSchema = z.object({
  version: z.literal(PLAN_VERSION),
  changes: z.array(changeSchema),
  conflicts: z.array(itemSchema),
  pending: z.array(itemSchema),
  orphaned: z.array(itemSchema),
  unmanaged: z.array(itemSchema),
  skipped: z.array(itemSchema),
  adoptions: z.array(clientRefSchema),
  stale_inventory: z.array(clientRefSchema),
  rotations: z.array(rotationItemSchema),
  safety: z.object({
    ok: z.boolean(),
    violations: z.array(
      z.object({
        rule: z.enum(["max-deletes", "max-change-percent", "empty-desired", "owned-vanished"]),
        message: z.string(),
        account_id: z.string().optional(),
        count: z.number(),
        limit: z.number(),
        overridden: z.boolean(),
      }),
    ),
  }),
  summary: z.object({
    create: count,
    update: count,
    delete: count,
    conflicts: count,
    pending: count,
    orphaned: count,
    unmanaged: count,
    skipped: count,
    adoptions: count,
    stale_inventory: count,
    rotations: count,
  }),
  checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/),
});

// Compile-time guard: the schema's output must be assignable to the hand-written Plan type.
const _planSchemaMatchesType: z.ZodType<Plan> = planSchema;

/**
 * Validates a parsed JSON value as a saved plan; throws `E_PLAN_INVALID` naming every bad path. A plan
 * of another format version is refused first, with `E_PLAN_VERSION` and the two versions: its fields
 * may mean something else, so it is never read as this version (plan again and review the new plan).
 */
export function parsePlan(value: unknown, origin = "plan"): Plan {
  const version = (value as { version?: unknown } | null)?.version;
  if (typeof version === "number" && version !== PLAN_VERSION) {
    throw new GitOpsError(
      "E_PLAN_VERSION",
      `${origin}: a version ${version} plan; this build reads version ${PLAN_VERSION} plans only: ` +
        "run plan again with this build and review that plan",
      { context: { origin, version } },
    );
  }
  const parsed = planSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues
    .slice(0, 10)
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
  throw new GitOpsError(
    "E_PLAN_INVALID",
    `${origin}: not a valid version ${PLAN_VERSION} plan: ${problems}`,
    {
      context: { origin },
    },
  );
}

import { z } from "zod";
import { cronLib } from "../cron-lib.js";
import {
  GRANT_TYPES,
  REQUIRED_FIELDS,
  RESPONSE_TYPES,
  TOKEN_ENDPOINT_AUTH_METHODS,
  VISIBILITIES,
} from "../api/oauth-clients.js";
import type { SinkRegistry } from "../sinks/descriptor.js";
import { sinkRegistry } from "../sinks/registry.js";
import {
  durationSchema,
  envNameSchema,
  httpUrl,
  nonEmpty,
  patternCheck,
  positiveDurationSchema,
  type Problem,
  show,
  urlSchema,
  withCheck,
} from "./fields.js";
import { originProblem, redirectUriProblem } from "./urls.js";

/**
 * The zod schemas of the two kinds of file the user writes. Each schema is the single source for
 * validation (through `src/config/issues.ts`, which turns zod issues into located `ConfigIssue`s) and
 * for the JSON Schema that editors use (`cf-oauth-gitops schema`). Checks that zod cannot express in
 * JSON Schema are mirrored with `.meta()` keywords (`pattern`, `contains`, `if`/`then`/`else`), so an
 * editor flags most mistakes as they are typed.
 *
 * Rules that relate several entries or several files (duplicate names, sinks that exist) live in
 * `rules.ts`; they need the config and the other files.
 */

const ACCOUNT_ID_RE = /^[0-9a-fA-F]{32}$/;
export const accountIdSchema = withCheck(
  z.string(),
  patternCheck(
    ACCOUNT_ID_RE,
    "E_BAD_ACCOUNT_ID",
    (v) => `\`${show(v)}\` is not an account id (32 hex characters)`,
  ),
).meta({ pattern: ACCOUNT_ID_RE.source, description: "Cloudflare account id: 32 hex characters." });

const SINK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const sinkNameSchema = withCheck(
  z.string(),
  patternCheck(
    SINK_NAME_RE,
    "E_BAD_SINK_NAME",
    (v) => `\`${show(v)}\` is not a sink name (letters, digits, \`-\`, \`_\`)`,
  ),
).meta({ pattern: SINK_NAME_RE.source });

// ---------------------------------------------------------------------------------------------------
// Desired-state files

/** Protocol scopes that cannot be optional (docs/API-BEHAVIOUR.md, "Scopes"). */
export const NON_OPTIONAL_SCOPES = ["openid", "offline", "offline_access"] as const;

function scopeProblem(value: string): Problem | undefined {
  if (value.length === 0) return { code: "E_BAD_SCOPE", message: "a scope cannot be empty" };
  if (value.includes(":")) {
    return {
      code: "E_COLON_SCOPE",
      message: `scope \`${show(value)}\` is colon-delimited; the API accepts dot-delimited scopes such as \`account-settings.read\``,
    };
  }
  if (/\s/.test(value)) {
    return {
      code: "E_BAD_SCOPE",
      message: `scope \`${show(value)}\` contains spaces: list one scope per item`,
    };
  }
  return undefined;
}

const SCOPE_PATTERN = "^[^:\\s]+$";

const scopeSchema = withCheck(z.string(), scopeProblem).meta({ pattern: SCOPE_PATTERN });

const optionalScopeSchema = withCheck(z.string(), (value) => {
  if ((NON_OPTIONAL_SCOPES as readonly string[]).includes(value)) {
    return {
      code: "E_PROTOCOL_SCOPE_OPTIONAL",
      message: `\`${value}\` is a protocol scope and cannot be optional (openid, offline and offline_access never are)`,
    };
  }
  return scopeProblem(value);
}).meta({ pattern: SCOPE_PATTERN, not: { enum: [...NON_OPTIONAL_SCOPES] } });

const clientNameSchema = withCheck(z.string(), (value) => {
  if (value.trim().length === 0) return { code: "E_EMPTY_NAME", message: "client_name cannot be empty" };
  if (value.trim() !== value) {
    return {
      code: "E_BAD_NAME",
      message: "client_name has leading or trailing spaces (the plan would never settle)",
    };
  }
  return undefined;
}).meta({
  minLength: 1,
  description: "Human-readable name; unique within the account (it is how clients are matched).",
});

/**
 * Cloudflare's client ids are 32 lowercase hex characters (Cloudflare's schema gives the example
 * `a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4`; src/emulator/store.ts mints the same shape). A pin of any other
 * shape can never match a live client: it would only ever show as a conflict, so `validate` refuses
 * it where it is written. Upper-case hex gets its own hint: ids are compared exactly.
 */
const CLIENT_ID_RE = /^[0-9a-f]{32}$/;
const clientIdSchema = withCheck(z.string(), (value): Problem | undefined => {
  if (CLIENT_ID_RE.test(value)) return undefined;
  const hint = CLIENT_ID_RE.test(value.toLowerCase())
    ? "; client ids are lower case (write it in lower case)"
    : " (a client id is 32 lowercase hex characters)";
  return { code: "E_BAD_CLIENT_ID", message: `\`${show(value)}\` is not a client id${hint}` };
}).meta({
  pattern: CLIENT_ID_RE.source,
  description:
    "Pin this entry to an existing live client (adopts it when the tool did not create it): 32 lowercase hex characters.",
});

function secretKeyProblem(value: string): Problem | undefined {
  if (value.length === 0) return { code: "E_BAD_SECRET_KEY", message: "a secret key cannot be empty" };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    return { code: "E_BAD_SECRET_KEY", message: "a secret key cannot contain control characters" };
  }
  if (value.startsWith("/") || value.split(/[\\/]/).some((part) => part === "..")) {
    return {
      code: "E_BAD_SECRET_KEY",
      message: `secret key \`${show(value)}\` must be relative and must not contain \`..\``,
    };
  }
  return undefined;
}

const secretSchema = z
  .strictObject({
    sink: sinkNameSchema
      .optional()
      .meta({ description: "A sink named in the config's `sinks:`; `default` when left out." }),
    key: withCheck(z.string(), secretKeyProblem).optional().meta({
      description:
        "Key inside the sink (file name, Vault path, Secret name); the client_name when left out. Characters outside `[A-Za-z0-9._@-]` are replaced and a hash of the key is appended.",
    }),
  })
  .meta({ description: "Where this client's secret is written." });

const rotationEntrySchema = z
  .union([
    z.literal(false),
    z.strictObject({
      every: positiveDurationSchema.optional(),
      grace: durationSchema.optional(),
    }),
  ])
  .meta({
    description: "`false` turns rotation off; a mapping overrides the config's `rotation.every`/`grace`.",
  });

const grantTypesSchema = withCheck(z.array(z.enum(GRANT_TYPES)), (value) =>
  value.includes("authorization_code")
    ? undefined
    : {
        code: "E_NO_AUTHORIZATION_CODE",
        message:
          "grant_types must contain authorization_code (refresh_token is optional, nothing else is allowed)",
      },
).meta({ contains: { const: "authorization_code" } });

/**
 * One entry of a desired-state file: the API's own field names (src/api/oauth-clients.ts) plus the
 * reconciler's (`client_id`, `ensure`, `secret`, `rotation`). No defaults for API fields: an omitted
 * field means "not set" and the planner clears it on the live client.
 */
export const desiredClientSchema = z
  .strictObject({
    client_name: clientNameSchema.optional(),
    client_id: clientIdSchema.optional(),
    ensure: z.enum(["present", "absent"]).default("present").meta({
      description: "`absent` deletes the client; such an entry needs only client_name or client_id.",
    }),
    redirect_uris: z
      .array(urlSchema(redirectUriProblem, "Absolute redirect URI; no fragment.", "uri"))
      .optional()
      .meta({ description: "Allowed redirect URIs (absolute; custom schemes allowed for native apps)." }),
    grant_types: grantTypesSchema.optional(),
    response_types: z.array(z.enum(RESPONSE_TYPES)).optional(),
    scopes: z.array(scopeSchema).optional().meta({
      description: "Dot-delimited scope ids (`account-settings.read`) or identity scopes (`email`).",
    }),
    optional_scopes: z
      .array(optionalScopeSchema)
      .optional()
      .meta({ description: "Scopes the user may decline; each must also be in `scopes`." }),
    token_endpoint_auth_method: z
      .enum(TOKEN_ENDPOINT_AUTH_METHODS)
      .optional()
      .meta({ description: "`none` for public (PKCE) clients, which have no secret." }),
    client_uri: httpUrl("Home page; its host is verified by DNS and cannot change once verified.").optional(),
    logo_uri: httpUrl("Logo URL; required before promotion to public.").optional(),
    policy_uri: httpUrl("Privacy policy URL.").optional(),
    tos_uri: httpUrl("Terms of service URL.").optional(),
    allowed_cors_origins: z
      .array(
        urlSchema(originProblem, "An origin: `https://host[:port]`.").meta({ pattern: "^https?://[^/?#]+$" }),
      )
      .optional(),
    post_logout_redirect_uris: z
      .array(urlSchema(redirectUriProblem, "Absolute URI; no fragment.", "uri"))
      .optional(),
    visibility: z
      .enum(VISIBILITIES)
      .default("private")
      .meta({ description: "`public` promotes the client, once and for ever: the API has no way back." }),
    secret: secretSchema.optional(),
    rotation: rotationEntrySchema.optional(),
  })
  .meta({
    title: "OAuth client",
    if: { properties: { ensure: { const: "absent" } }, required: ["ensure"] },
    then: { anyOf: [{ required: ["client_name"] }, { required: ["client_id"] }] },
    else: { required: [...REQUIRED_FIELDS] },
  });

/** One desired entry as written, and as parsed (`ensure`/`visibility` defaulted, nothing else). */
export type DesiredClientInput = z.input<typeof desiredClientSchema>;
export type DesiredClientEntry = z.output<typeof desiredClientSchema>;

/** Top-level keys starting with `x-` are ignored: a place for YAML anchors shared by entries. */
export const EXTENSION_KEY_RE = /^x-/;

const desiredDocumentShape = {
  account_id: accountIdSchema
    .optional()
    .meta({ description: "Account of these clients; the config's `account_id` when left out." }),
  clients: z
    .array(desiredClientSchema)
    .meta({ description: "The OAuth clients of this account declared in this document." }),
};

/** One YAML document of a desired-state file (a file may hold several, separated by `---`). */
export const desiredDocumentSchema = z.strictObject(desiredDocumentShape).meta({
  title: "cf-oauth-gitops desired state",
  description:
    "Desired OAuth clients of one Cloudflare account. Keys starting with `x-` are ignored (use them for YAML anchors).",
  patternProperties: { "^x-": {} },
});

/** What is validated first; each entry is then validated on its own so one bad entry cannot hide another. */
export const desiredEnvelopeSchema = z.strictObject({
  ...desiredDocumentShape,
  clients: z.array(z.unknown()),
});

// ---------------------------------------------------------------------------------------------------
// The reconciler's config file

/** When no `sinks:` are given: secrets go to `secrets/` beside the config file, one JSON file each. */
export const DEFAULT_SINKS = { default: { type: "file", dir: "secrets" } } as const;

const cronSchema = withCheck(z.string(), (value) =>
  cronLib().validate(value)
    ? undefined
    : {
        code: "E_BAD_CRON",
        message: `\`${show(value)}\` is not a cron expression (five fields, e.g. \`0 3 * * *\`)`,
      },
);

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: value });
    return value.length > 0;
  } catch {
    return false;
  }
}

const timezoneSchema = withCheck(z.string(), (value) =>
  isTimeZone(value)
    ? undefined
    : {
        code: "E_BAD_TIMEZONE",
        message: `\`${show(value)}\` is not an IANA time zone (e.g. \`UTC\`, \`Europe/Berlin\`)`,
      },
);

const ADDRESS_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/;
const addressSchema = withCheck(z.string(), (value) => {
  const port = Number(ADDRESS_RE.exec(value)?.[2] ?? Number.NaN);
  return port >= 0 && port <= 65_535
    ? undefined
    : { code: "E_BAD_ADDRESS", message: `\`${show(value)}\` is not a \`host:port\` address` };
}).meta({ pattern: ADDRESS_RE.source });

/** Where `run` publishes the ownership record unless `ownership.git.ref` says otherwise. */
export const DEFAULT_OWNERSHIP_REF = "refs/cf-oauth-gitops/ownership";

/**
 * A full ref name outside `refs/heads/` is the default (no branch list shows it, no pull request can
 * target it), but hosts that refuse other namespaces can use a branch: any full name under `refs/`
 * that `git check-ref-format` accepts, never one that could be read as an option.
 */
const ownershipRefSchema = withCheck(z.string(), (value) =>
  isFullRefName(value)
    ? undefined
    : {
        code: "E_BAD_REF",
        message: `\`${show(value)}\` is not a full ref name (e.g. \`${DEFAULT_OWNERSHIP_REF}\` or \`refs/heads/ownership\`)`,
      },
).meta({
  pattern: "^refs/[^\\s~^:?*\\[\\\\]+$",
  description:
    "Full ref name in the source repository; a branch (`refs/heads/...`) where the host refuses refs outside `refs/heads/` and `refs/tags/`.",
});

/** `git check-ref-format`'s main rules, for a name that must start with `refs/` and have two parts more. */
export function isFullRefName(value: string): boolean {
  const parts = value.split("/");
  return (
    parts.length >= 3 &&
    parts[0] === "refs" &&
    parts.every((p) => p.length > 0 && !p.startsWith(".") && !p.endsWith(".lock")) &&
    !value.endsWith(".") &&
    !value.includes("..") &&
    !value.includes("@{") &&
    // eslint-disable-next-line no-control-regex
    !/[\s~^:?*[\\\u0000-\u001f\u007f]/.test(value)
  );
}

const CONFIG_TITLE = "cf-oauth-gitops config";

/** `sinks:`, each entry one of the registry's sinks (src/sinks/registry.ts), tagged by `type`. */
function sinksSchema(registry: SinkRegistry) {
  return z
    .record(sinkNameSchema, registry.entrySchema)
    .prefault(DEFAULT_SINKS)
    .meta({ description: "Named secret sinks; entries that name none use `default`." });
}

/** The reconciler's config file (`cf-oauth-gitops.yaml`). */
export const configSchema = z
  .strictObject({
    desired: nonEmpty.meta({
      description:
        "Desired-state file or directory (searched recursively for *.yaml, *.yml), relative to this file.",
    }),
    account_id: accountIdSchema.optional(),
    state_dir: nonEmpty
      .default(".cf-oauth-gitops")
      .meta({ description: "Ownership inventory and journal, relative to this file." }),
    prune: z.enum(["none", "owned", "all"]).default("none").meta({
      description:
        "Delete live clients missing from the desired state: none, only those this tool created or adopted, or all (except `ignore`).",
    }),
    ignore: z
      .array(nonEmpty)
      .default([])
      .meta({ description: "Client names or ids never touched by `prune: all`." }),
    safety: z
      .strictObject({
        max_deletes: z.int().min(0).default(10),
        max_change_percent: z.number().min(0).max(100).default(30),
        min_clients_for_percent: z.int().min(0).default(10),
        allow_empty: z.boolean().default(false),
      })
      .prefault({}),
    sinks: sinksSchema(sinkRegistry),
    rotation: z
      .strictObject({
        every: positiveDurationSchema.default("90d"),
        grace: durationSchema.default("24h"),
        schedule: cronSchema.default("0 3 * * *"),
        timezone: timezoneSchema.default("UTC"),
        max_concurrent: z.int().min(1).default(4),
      })
      .prefault({}),
    interval: positiveDurationSchema.default("10m"),
    source: z
      .strictObject({
        git: z.strictObject({
          url: nonEmpty.meta({
            description:
              "https://, http://, ssh:// or user@host:path. Give credentials with token_env/token_file or ssh_key_file, not in the URL (this file is often a ConfigMap).",
          }),
          branch: nonEmpty.default("main"),
          path: nonEmpty.default("."),
          config: nonEmpty.optional().meta({
            description:
              "A cf-oauth-gitops.yaml inside the repository: each run of `run` takes `desired`, `account_id`, `prune`, `ignore`, `safety` and `ownership` from this file at the commit it applies (the file a pull request's plan used); `path` is then not used.",
          }),
          interval: positiveDurationSchema.default("1m"),
          token_env: envNameSchema.optional().meta({
            description:
              "https URL: environment variable holding an access token, sent as HTTP basic auth `username:token`.",
          }),
          token_file: nonEmpty.optional().meta({
            description:
              "https URL: file holding an access token (read before each git command, so a rotated Secret is picked up). Relative to this file.",
          }),
          username: nonEmpty.optional().meta({
            description:
              "User name sent with the token (default `x-access-token`, as GitHub wants; GitLab: `oauth2`, Bitbucket: `x-token-auth`).",
          }),
          ssh_key_file: nonEmpty.optional().meta({
            description: "ssh URL: private key file (needs `known_hosts_file`). Relative to this file.",
          }),
          known_hosts_file: nonEmpty.optional().meta({
            description:
              "ssh URL: the only host keys trusted (StrictHostKeyChecking=yes; `ssh-keyscan HOST` output, checked). Relative to this file.",
          }),
        }),
      })
      .optional(),
    ownership: z
      .strictObject({
        git: z
          .strictObject({
            ref: ownershipRefSchema.default(DEFAULT_OWNERSHIP_REF),
            url: nonEmpty.optional().meta({
              description:
                "Where `plan` fetches the ref: the daemon's source repository as this machine reaches it. Default: the `origin` of the clone holding this file (then `source.git.url`).",
            }),
          })
          .prefault({})
          .meta({
            description:
              "`run` with a git source publishes the ownership inventory (client ids, names, account ids; never a secret) to this ref of its repository after each run that changed it; `plan` reads it from there, and exits 1 (E_OWNERSHIP_UNREADABLE) when it cannot.",
          }),
      })
      .optional()
      .meta({ description: "Where the ownership record is shared between `run` and `plan` (README, CI)." }),
    daemon: z
      .strictObject({
        delete_delay: durationSchema.default("1m").meta({
          description:
            "Directory source: a client must stay absent from the desired state this long (seen again by a later run) before `run` deletes it; 0 deletes at once. A git source deletes at once.",
        }),
        quiet_period: durationSchema.default("1s").meta({
          description:
            "Directory source: the desired files must read the same across this long before `run` plans from them.",
        }),
      })
      .prefault({})
      .meta({ description: "How `run` reads a desired-state directory that may be written while it reads." }),
    server: z.strictObject({ address: addressSchema.default("127.0.0.1:9090") }).prefault({}),
    webhook: z
      .strictObject({
        secret_env: envNameSchema.optional(),
        secret_file: nonEmpty.optional().meta({ description: "Relative to this file." }),
      })
      .optional(),
  })
  .meta({ title: CONFIG_TITLE });

const configSchemas = new WeakMap<SinkRegistry, typeof configSchema>();

/**
 * The config file's schema with the sinks of `registry` in `sinks:`: `configSchema` for the
 * program's own registry; a test (or an embedding program) passes a registry with a sink of its own
 * (src/sinks/descriptor.ts `createSinkRegistry`) and gets the same config with that sink.
 */
export function configSchemaFor(registry: SinkRegistry): typeof configSchema {
  if (registry === sinkRegistry) return configSchema;
  let schema = configSchemas.get(registry);
  if (!schema) {
    schema = configSchema.extend({ sinks: sinksSchema(registry) }).meta({ title: CONFIG_TITLE });
    configSchemas.set(registry, schema);
  }
  return schema;
}

/** The config file as written, and as parsed (defaults applied, durations still strings). */
export type ConfigInput = z.input<typeof configSchema>;
export type ConfigOutput = z.output<typeof configSchema>;

// ---------------------------------------------------------------------------------------------------
// JSON Schema

function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  // draft-07: what yaml-language-server, VS Code and JetBrains all read.
  return z.toJSONSchema(schema, { io: "input", target: "draft-7" }) as Record<string, unknown>;
}

/** JSON Schema of one desired-state document, for `# yaml-language-server: $schema=...`. */
export function desiredStateJsonSchema(): Record<string, unknown> {
  return jsonSchemaOf(desiredDocumentSchema);
}

/** JSON Schema of the reconciler's config file; `registry` decides which sinks `sinks:` takes. */
export function configJsonSchema(registry: SinkRegistry = sinkRegistry): Record<string, unknown> {
  return jsonSchemaOf(configSchemaFor(registry));
}

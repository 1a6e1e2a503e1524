/**
 * Every stable code the tool reports, each with what it means: the one list scripts, alerts and
 * operators can match on. `GitOpsError`'s code is an {@link ErrorCode} and a config issue's an
 * {@link IssueCode}, so a code missing here does not compile; docs/ERRORS.md is rendered from this
 * file (`npx tsx scripts/error-codes.ts > docs/ERRORS.md`) and test/ship/error-codes.test.ts checks
 * that it lists exactly these codes, and that no code in src/ or the docs is missing here.
 *
 * A code names a kind of failure, never one message: messages may be reworded, codes are kept.
 */

/** Where a code comes from, for the grouping in docs/ERRORS.md. */
export const CODE_AREAS = {
  config: "Config and desired-state files (located issues, all reported at once)",
  plan: "Plans, safety valves and saved plans",
  api: "The Cloudflare API client",
  listing: "Reading the live state",
  secrets: "Secrets: creation, rotation and publication",
  sinks: "Secret sinks",
  state: "The state directory (inventory, journal, lock)",
  git: "Git source and the published ownership record",
  daemon: "The daemon, its HTTP server and webhook",
  cli: "Command line",
  emulator: "The emulator",
  internal: "Anything else",
} as const;

export type CodeArea = keyof typeof CODE_AREAS;

/** One registered code: its area and what it means for the person who sees it. */
export interface CodeDoc {
  readonly area: CodeArea;
  readonly doc: string;
}

/** The error codes. Each `doc` says what failed and, where it helps, what to do about it. */
export const ERROR_CODES = {
  // Config and desired-state files.
  E_CONFIG: {
    area: "config",
    doc: "The config or the desired state is invalid; the error lists every problem, each with file, line, column, path and its own code below.",
  },
  E_CONFIG_NOT_FOUND: { area: "config", doc: "The config file does not exist (pass `-c FILE`)." },
  E_NOT_FOUND: { area: "config", doc: "A file to be read does not exist." },
  E_UNREADABLE: { area: "config", doc: "A file exists but cannot be read (permissions, I/O error)." },
  E_NOT_A_FILE: { area: "config", doc: "A path that must be a regular file is a directory or a device." },
  E_LINK_OUTSIDE: {
    area: "config",
    doc: "A symbolic link in the desired directory resolves outside it; it is not followed.",
  },
  E_TOO_LARGE: { area: "config", doc: "One file is over the size limit; split it into several files." },
  E_DESIRED_TOO_LARGE: {
    area: "config",
    doc: "The desired directory as a whole is over its limits (64 MiB, 20,000 files).",
  },
  E_DESIRED_MISSING: {
    area: "config",
    doc: "The desired path does not exist or is not a file or directory.",
  },
  E_EMPTY_FILE: {
    area: "config",
    doc: "A file has no content; a desired file declares an empty account with `clients: []`.",
  },
  E_BINARY: { area: "config", doc: "A file is UTF-16 or binary, not YAML." },
  E_NOT_UTF8: { area: "config", doc: "A file is not valid UTF-8." },
  E_YAML_SYNTAX: { area: "config", doc: "The YAML does not parse." },
  E_DUPLICATE_KEY: { area: "config", doc: "A YAML mapping has the same key twice." },
  E_TOO_DEEP: { area: "config", doc: "The YAML nests deeper than the parser allows." },
  E_ALIAS_BOMB: {
    area: "config",
    doc: "YAML aliases expand to too many nodes: refused as a resource-exhaustion attack.",
  },
  E_UNRESOLVED_ALIAS: { area: "config", doc: "A YAML alias `*name` has no anchor `&name` before it." },
  E_MULTIPLE_DOCUMENTS: { area: "config", doc: "The config file holds more than one YAML document." },
  E_TYPE: {
    area: "config",
    doc: "A value has the wrong type (a list where a mapping belongs, and the like).",
  },
  E_REQUIRED: { area: "config", doc: "A required setting is missing." },
  E_UNKNOWN_KEY: {
    area: "config",
    doc: "A key the schema does not know; the message suggests the nearest one.",
  },
  E_BAD_KEY: { area: "config", doc: "A mapping key that is not allowed where it stands." },
  E_ENUM: { area: "config", doc: "A value outside the allowed set; the message lists the choices." },
  E_RANGE: { area: "config", doc: "A number, string or list outside its allowed size." },
  E_FORMAT: { area: "config", doc: "A string in the wrong format." },
  E_INVALID: { area: "config", doc: "A value fails a check that has no more specific code." },
  E_BAD_ACCOUNT_ID: { area: "config", doc: "An account id that is not 32 hex characters." },
  E_BAD_CLIENT_ID: { area: "config", doc: "A pinned `client_id` that is not 32 lowercase hex characters." },
  E_NO_ACCOUNT: {
    area: "config",
    doc: "A desired document has no `account_id` and the config sets no default one.",
  },
  E_EMPTY_NAME: { area: "config", doc: "An empty `client_name`." },
  E_BAD_NAME: {
    area: "config",
    doc: "A `client_name` with leading or trailing spaces (the plan would never settle).",
  },
  E_BAD_URL: { area: "config", doc: "A URL that is not valid where it stands (scheme, host, fragment)." },
  E_BAD_SCOPE: { area: "config", doc: "An empty scope, or one with white space in it." },
  E_COLON_SCOPE: {
    area: "config",
    doc: "A colon-delimited scope (`account:read`); the API takes dot-delimited ones (`account-settings.read`).",
  },
  E_PROTOCOL_SCOPE_OPTIONAL: {
    area: "config",
    doc: "`openid`, `offline` or `offline_access` listed as optional; protocol scopes never are.",
  },
  E_OPTIONAL_SCOPE_NOT_IN_SCOPES: { area: "config", doc: "An optional scope that is not also in `scopes`." },
  E_NO_AUTHORIZATION_CODE: {
    area: "config",
    doc: "`grant_types` without `authorization_code` (only `refresh_token` may join it).",
  },
  E_DUPLICATE_NAME: { area: "config", doc: "Two desired clients with one `client_name` in one account." },
  E_DUPLICATE_CLIENT_ID: { area: "config", doc: "Two desired entries pin the same `client_id`." },
  E_PRESENT_AND_ABSENT: {
    area: "config",
    doc: "One client is declared `ensure: present` in one place and `ensure: absent` in another.",
  },
  E_BAD_SECRET_KEY: {
    area: "config",
    doc: "A secret key its sink cannot store (empty, control characters, `..`, a file name over the limit).",
  },
  E_DUPLICATE_SECRET_KEY: { area: "config", doc: "Two clients would write their secrets to one place." },
  E_UNKNOWN_SINK: { area: "config", doc: "A client names a sink the config does not define." },
  E_BAD_SINK_NAME: { area: "config", doc: "A sink name other than letters, digits, `-` and `_`." },
  E_BAD_ENV_NAME: {
    area: "config",
    doc: "A setting that names an environment variable holds something else.",
  },
  E_BAD_AGE_RECIPIENT: { area: "config", doc: "An age recipient that is not `age1...`." },
  E_AGE_NEEDS_IDENTITY: {
    area: "config",
    doc: "`age_recipients` without `age_identity_file`: without it no secret can be read back to confirm it was published.",
  },
  E_BAD_NAMESPACE: { area: "config", doc: "A Kubernetes namespace that is not a valid name." },
  E_BAD_DURATION: {
    area: "config",
    doc: "A duration that is not like `30s`, `10m`, `24h` or `90d`, or too short.",
  },
  E_BAD_CRON: { area: "config", doc: "A cron expression that is not five fields." },
  E_BAD_TIMEZONE: { area: "config", doc: "A time zone that is not an IANA name (`UTC`, `Europe/Berlin`)." },
  E_BAD_ROTATION: { area: "config", doc: "A rotation `grace` that is not shorter than `every`." },
  E_BAD_DAEMON: {
    area: "config",
    doc: "A daemon `delete_delay` that is not longer than `quiet_period` (or 0 to delete at once).",
  },
  E_BAD_ADDRESS: { area: "config", doc: "An address that is not `host:port`." },
  E_BAD_REF: { area: "config", doc: "An ownership ref that is not a full ref name (`refs/...`)." },
  E_GIT_PATH_AND_CONFIG: { area: "config", doc: "`source.git.path` and `source.git.config` are both set." },
  E_GIT_CREDENTIALS: {
    area: "config",
    doc: "Git credentials that contradict each other or cannot be used with the URL, or a credential file or variable that cannot be read.",
  },
  E_GIT_KNOWN_HOSTS: {
    area: "config",
    doc: "`ssh_key_file` without `known_hosts_file`: host keys are never accepted on first use.",
  },
  E_UNKNOWN_SCOPE: {
    area: "config",
    doc: "A scope the account's catalogue (`GET /oauth/scopes`) does not offer; nothing was written.",
  },

  // Plans.
  E_UNSAFE_PLAN: {
    area: "plan",
    doc: "A safety valve refused the plan (too many deletes or changes); exit code 3, `--force` to go on.",
  },
  E_PLAN_CONFLICTS: {
    area: "plan",
    doc: "The desired state cannot be realised as written (such as a pinned `client_id` no live client has); the clients concerned were left untouched.",
  },
  E_PLAN_READ: { area: "plan", doc: "A saved plan file cannot be read or is not JSON." },
  E_PLAN_INVALID: {
    area: "plan",
    doc: "A saved plan file is not a valid plan; the message names every bad path.",
  },
  E_PLAN_VERSION: { area: "plan", doc: "A saved plan was written by a build with another plan version." },
  E_PLAN_TAMPERED: {
    area: "plan",
    doc: "A saved plan was edited after it was written: its checksum does not match.",
  },
  E_PLAN_STALE: {
    area: "plan",
    doc: "The live or desired state changed since the plan was saved; plan again and review.",
  },

  // The Cloudflare API client.
  E_NO_CREDENTIALS: {
    area: "api",
    doc: "No usable Cloudflare credentials: set `CLOUDFLARE_API_TOKEN`, or `CLOUDFLARE_EMAIL` and `CLOUDFLARE_API_KEY`.",
  },
  E_BAD_BASE_URL: {
    area: "api",
    doc: "`CLOUDFLARE_BASE_URL` is not an http(s) URL, or carries credentials.",
  },
  E_API_HTTP: { area: "api", doc: "Any non-2xx answer not covered below (400 validation, 408, 5xx, ...)." },
  E_API_AUTH: {
    area: "api",
    doc: "401 or 403 (Cloudflare code 10000): wrong, expired or read-only credentials.",
  },
  E_API_NOT_FOUND: { area: "api", doc: "404: unknown account or client." },
  E_API_RATE_LIMITED: {
    area: "api",
    doc: "429, or the local rate budget would have to wait longer than allowed; a `wait` until the window resets.",
  },
  E_API_NETWORK: { area: "api", doc: "Connection refused, reset, or closed before an answer." },
  E_API_TIMEOUT: { area: "api", doc: "No complete answer within the per-attempt timeout." },
  E_API_ABORTED: { area: "api", doc: "The call was cancelled (shutdown, or the caller gave up)." },
  E_API_SCHEMA: {
    area: "api",
    doc: "A 2xx answer that breaks the documented response schema (src/cloudflare/schemas.ts).",
  },
  E_API_TOO_LARGE: {
    area: "api",
    doc: "An answer larger than the client reads, dropped unread and not retried (the same request would get the same answer). A write whose answer this was may have been applied.",
  },
  E_API_LIST_COUNT_MISMATCH: {
    area: "api",
    doc: "A list answer whose `result_info.total_count` disagrees with its length: a failed read (retried, then transient), never a view to plan from.",
  },
  E_API_ARGUMENT: {
    area: "api",
    doc: "The client was called with an unusable argument (an empty account or client id).",
  },
  E_CREATE_AMBIGUOUS: {
    area: "api",
    doc: "A create may have succeeded but its answer was lost and the account could not be listed to check; list before creating again.",
  },
  E_ROTATE_AMBIGUOUS: {
    area: "api",
    doc: "A rotate_secret may have succeeded but its answer was lost: the new secret is unknown, the old one still works.",
  },

  // Reading the live state.
  E_LIST_INCOMPLETE: {
    area: "listing",
    doc: "A client the inventory owns exists (a GET finds it) but the list left it out: nothing was planned.",
  },
  E_LIST_UNCONFIRMED: {
    area: "listing",
    doc: "A client the inventory owns was missing from the list and the GET that should confirm it failed: nothing was planned.",
  },

  // Secrets.
  E_SECRET_UNPUBLISHED: {
    area: "secrets",
    doc: "A new secret could not be written to its sink and read back; it is kept in the journal (0600) and published on the next run, and the old secret stays valid.",
  },
  E_SECRET_PENDING: {
    area: "secrets",
    doc: "A new client's secret operation did not finish in this run and gave no code of its own; the next run continues it.",
  },
  E_SECRET_PLAN_STALE: {
    area: "secrets",
    doc: "The secret journal no longer matches what the secret plan expected (an interrupted operation moved on); the next run plans again.",
  },
  E_SECRET_OP: {
    area: "secrets",
    doc: "A secret operation of the run failed or needs an operator; `/status` lists each.",
  },
  E_ROTATION_BUSY: {
    area: "secrets",
    doc: "A client's earlier secret operation is still in progress in the journal.",
  },
  E_ROTATION_SECRET_LOST: {
    area: "secrets",
    doc: "A rotation happened but its new secret never reached the journal; left alone until `rotate --recover --client NAME`.",
  },
  E_UNKNOWN_ROTATED_SECRET: {
    area: "secrets",
    doc: "A client has a rotated secret this tool has no record of (someone rotated by hand); left alone until `rotate --recover --client NAME`.",
  },
  E_UNKNOWN_CLIENT: { area: "secrets", doc: "`rotate --client NAME` names no rotatable client." },
  E_DRY_RUN: {
    area: "secrets",
    doc: "Rotation was asked of a `--dry-run` daemon, which has no mutating client.",
  },

  // Secret sinks.
  E_SINK_CONFIG: {
    area: "sinks",
    doc: "A sink's settings are unusable (unknown type, empty argv, bad URL); found at startup.",
  },
  E_SINK_NOT_WRITABLE: {
    area: "sinks",
    doc: "The preflight found a sink that cannot be written (permissions, RBAC, policy) before anything was created for it.",
  },
  E_SINK_UNREACHABLE: { area: "sinks", doc: "A network sink (Vault, Kubernetes) could not be reached." },
  E_SINK_UNAVAILABLE: {
    area: "sinks",
    doc: "Vault answered a login with 5xx or 429 (sealed, standby, a quota): transient.",
  },
  E_SINK_AUTH: { area: "sinks", doc: "A sink refused or could not read its credentials." },
  E_SINK_WRITE: { area: "sinks", doc: "A sink failed to write a record." },
  E_SINK_READ: { area: "sinks", doc: "A sink failed to read a record back." },
  E_SINK_READBACK: { area: "sinks", doc: "The record read back from a sink differs from what was written." },
  E_SINK_READ_UNSUPPORTED: {
    area: "sinks",
    doc: "An exec sink has no `read_command`, so nothing it stores can be confirmed.",
  },
  E_SINK_CONFLICT: {
    area: "sinks",
    doc: "The record changed in the sink since it was read (check-and-set refused the write).",
  },
  E_SINK_CORRUPT: { area: "sinks", doc: "A record in a sink is not a valid secret record." },
  E_SINK_KEY: {
    area: "sinks",
    doc: "A key the sink cannot store (a name it cannot form, over a length limit).",
  },
  E_SINK_VALUE: { area: "sinks", doc: "A value an env file cannot hold (a control character)." },
  E_SINK_NEEDS_IDENTITY: {
    area: "sinks",
    doc: "Encrypted file records without `age_identity_file`: they cannot be read back.",
  },
  E_SINK_IDENTITY: { area: "sinks", doc: "The age identity file cannot be read or holds no identity." },
  E_SINK_DECRYPT: {
    area: "sinks",
    doc: "An encrypted record cannot be decrypted with the configured identity.",
  },
  E_SINK_EXEC_FAILED: {
    area: "sinks",
    doc: "An exec sink's command exited non-zero; the message carries a scrubbed excerpt of its stderr.",
  },
  E_SINK_EXEC_TIMEOUT: { area: "sinks", doc: "An exec sink's command ran past `timeout_seconds`." },
  E_SINK_KV_VERSION: {
    area: "sinks",
    doc: "A Vault KV version 1 mount: it has no versions and no check-and-set; use a KV version 2 mount.",
  },
  E_SINK_UNMANAGED: {
    area: "sinks",
    doc: "A Kubernetes Secret of that name exists without this tool's managed-by label; it is never overwritten.",
  },
  E_SINK_COLLISION: {
    area: "sinks",
    doc: "A Kubernetes Secret of that name holds another client's key or account; give one of them another key or `name_prefix`.",
  },
  E_SINK_IMMUTABLE: {
    area: "sinks",
    doc: "A Kubernetes Secret is `immutable: true`, so its data can never change; delete it to let a new one be written.",
  },

  // The state directory.
  E_STATE_LOCKED: {
    area: "state",
    doc: "Another run holds the state directory's lock: a `wait`, retried when it is free.",
  },
  E_STATE_LOCK: {
    area: "state",
    doc: "The lock could not be taken: the file system refused, or it kept changing hands.",
  },
  E_STATE_READ: { area: "state", doc: "The ownership inventory cannot be read." },
  E_STATE_WRITE: { area: "state", doc: "The ownership inventory cannot be written." },
  E_STATE_CORRUPT: {
    area: "state",
    doc: "An ownership inventory (a file, or the published record) is not valid.",
  },
  E_STATE_READ_ONLY: { area: "state", doc: "The published ownership record is read-only outside `run`." },
  E_JOURNAL_READ: { area: "state", doc: "The secret journal directory cannot be read." },
  E_JOURNAL_WRITE: { area: "state", doc: "A secret journal entry cannot be written or removed." },
  E_JOURNAL_CORRUPT: {
    area: "state",
    doc: "A secret journal entry is not readable, or is inconsistent (minted without a secret); it is never quoted, as it may hold one.",
  },

  // Git.
  E_GIT: { area: "git", doc: "A git command failed, or a ref moved while it was fetched." },
  E_GIT_URL: { area: "git", doc: "`source.git.url` is unusable (it starts with `-`)." },
  E_GIT_BRANCH: { area: "git", doc: "`source.git.branch` is not a branch name." },
  E_GIT_PATH: { area: "git", doc: "`source.git.config` or the desired path leads outside the repository." },
  E_OWNERSHIP_NEEDS_GIT: {
    area: "git",
    doc: "`ownership.git` without a git source: the record is published to a ref of the repository `run` reads.",
  },
  E_OWNERSHIP_PUBLISH: {
    area: "git",
    doc: "The ownership record could not be published; plans in CI read the previous record until a run publishes it.",
  },
  E_OWNERSHIP_UNREADABLE: {
    area: "git",
    doc: "`plan` could not read the published ownership record; nothing was planned, rather than show owned clients as unmanaged.",
  },

  // The daemon.
  E_DESIRED_UNSTABLE: {
    area: "daemon",
    doc: "The desired files kept changing through every quiet period; nothing was planned, the next change or retry tries again.",
  },
  E_SHUTDOWN: { area: "daemon", doc: "The daemon is shutting down; the run in progress is stopped." },
  E_ABORTED: { area: "daemon", doc: "An apply stopped (shutdown) before this change started." },
  E_LISTEN: { area: "daemon", doc: "The HTTP server cannot listen on the address given." },
  E_WEBHOOK_SECRET: { area: "daemon", doc: "The webhook secret is not configured or cannot be read." },

  // Command line.
  E_USAGE: {
    area: "cli",
    doc: "Wrong command-line usage: an unknown flag, a missing argument, flags that exclude each other.",
  },

  // The emulator.
  E_EMULATOR_OPTIONS: { area: "emulator", doc: "Unusable emulator options." },
  E_EMULATOR_LISTEN: { area: "emulator", doc: "The emulator cannot listen on the address given." },
  E_EMULATOR_SCOPES: {
    area: "emulator",
    doc: "The emulator's scope catalogue file is not readable JSON of the right shape.",
  },
  E_EMULATOR_STATE: { area: "emulator", doc: "The emulator's state file cannot be read, parsed or written." },
  E_EMULATOR_REFUSED: {
    area: "emulator",
    doc: "Inside the emulator: a request one of its API or OAuth rules refuses. Clients see the Cloudflare failure envelope or the OAuth error answer, never this code.",
  },

  // Anything else.
  E_UNEXPECTED: {
    area: "internal",
    doc: "A failure that is not one of the above: a bug or a library's error. Please report it.",
  },
} as const satisfies Record<`E_${string}`, CodeDoc>;

/** The warning codes: reported on stderr and in the output, but they fail nothing. */
export const WARNING_CODES = {
  W_YAML: { area: "config", doc: "The YAML parser warns about something it accepted." },
  W_DUPLICATE_VALUE: { area: "config", doc: "A list holds the same value twice." },
  W_NO_REDIRECT_URIS: {
    area: "config",
    doc: "A client without redirect URIs: the authorization code flow cannot complete.",
  },
  W_PUBLIC_NEEDS_LOGO: {
    area: "config",
    doc: "A `public` client without `logo_uri`: promotion will be refused.",
  },
  W_PUBLIC_NEEDS_CLIENT_URI: {
    area: "config",
    doc: "A `public` client without `client_uri`: promotion needs a verified one.",
  },
  W_SECRET_IGNORED: {
    area: "config",
    doc: "A secret target on a `none` (public PKCE) client, which has no secret.",
  },
  W_ROTATION_IGNORED: {
    area: "config",
    doc: "A rotation policy on a `none` (public PKCE) client, which has no secret.",
  },
  W_OWNERSHIP_UNKNOWN: {
    area: "plan",
    doc: "`plan` has no ownership record (neither a state directory nor `ownership.git`) while live clients would be adopted or listed as unmanaged: a daemon may own them, and this plan may not show the deletes it will make.",
  },
} as const satisfies Record<`W_${string}`, CodeDoc>;

/** A registered error code: the only kind a `GitOpsError` can carry. */
export type ErrorCode = keyof typeof ERROR_CODES;
/** A registered warning code. */
export type WarningCode = keyof typeof WARNING_CODES;
/** The code of a located config issue: an error or a warning. */
export type IssueCode = ErrorCode | WarningCode;

/** Every registered code with its documentation, errors first, in registry order. */
export function registeredCodes(): { code: IssueCode; area: CodeArea; doc: string }[] {
  const entries = [...Object.entries(ERROR_CODES), ...Object.entries(WARNING_CODES)] as [
    IssueCode,
    CodeDoc,
  ][];
  return entries.map(([code, { area, doc }]) => ({ code, area, doc }));
}

/** Whether a string is a registered code, for values read back from disk (journal, saved plans). */
export function isIssueCode(value: string): value is IssueCode {
  return Object.hasOwn(ERROR_CODES, value) || Object.hasOwn(WARNING_CODES, value);
}

/** docs/ERRORS.md: one table per area, codes in registry order. */
export function renderCodeReference(): string {
  const lines = [
    "# Error and warning codes",
    "",
    "<!-- Generated from src/error-codes.ts by `npx tsx scripts/error-codes.ts > docs/ERRORS.md`; do not edit. -->",
    "",
    "Every failure carries one of these codes (`error [CODE]: ...` on stderr, `code` in JSON output, logs",
    "and `/status`); config issues carry theirs after the location (`file:line:col: path: message [CODE]`).",
    "Codes are stable: scripts and alerts can match on them, while messages may be reworded.",
    "",
  ];
  const all = registeredCodes();
  for (const [area, title] of Object.entries(CODE_AREAS) as [CodeArea, string][]) {
    const errors = all.filter((c) => c.area === area && c.code.startsWith("E_"));
    const warnings = all.filter((c) => c.area === area && c.code.startsWith("W_"));
    for (const [heading, codes] of [
      [title, errors],
      [`${title}: warnings`, warnings],
    ] as const) {
      if (codes.length === 0) continue;
      lines.push(`## ${heading}`, "", "| Code | Meaning |", "|---|---|");
      for (const c of codes) lines.push(`| \`${c.code}\` | ${c.doc.replace(/\|/g, "\\|")} |`);
      lines.push("");
    }
  }
  return `${lines.join("\n").trimEnd()}\n`;
}

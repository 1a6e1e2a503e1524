import {
  DEFAULT_HOST,
  DEFAULT_OAUTH_USER,
  DEFAULT_PORT,
  RATE_LIMIT_DEFAULTS,
} from "../emulator/behaviour.js";
import {
  choice,
  custom,
  defineVerb,
  duration,
  flag,
  integer,
  rate,
  text,
  texts,
  UsageError,
  type VerbSpec,
} from "./frame.js";

/**
 * Every verb's options, declared once: the parser, the checks, `--help`, the top-level usage and the
 * README's CLI table (`schema --cli`) are all read from here (src/cli/frame.ts). This module loads
 * nothing but the frame, so `--help`, `--version` and a mistyped option cost no verb's code.
 */

/** The config file every verb reads unless told otherwise (the same name src/config/load-config.ts uses). */
export const DEFAULT_CONFIG_FILE = "cf-oauth-gitops.yaml";

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

const config = text({
  short: "c",
  value: "FILE",
  default: DEFAULT_CONFIG_FILE,
  defaultText: `${DEFAULT_CONFIG_FILE} in the working directory`,
  help: "config file",
});

const stateDir = text({
  value: "DIR",
  defaultText: "the config's state_dir",
  help: "state directory (inventory, journal, lock) to use instead of the config's",
});

/** Options every reconciling verb takes. */
const COMMON = {
  config,
  "state-dir": stateDir,
  "log-level": choice(LOG_LEVELS, {
    value: "LEVEL",
    defaultText: "LOG_LEVEL, else warn",
    help: "log level of the logs written to stderr",
  }),
};

/**
 * Changes in flight at once, for `apply` and `run` alike: the one place the bound is checked. Past 64
 * the rate budget, not the concurrency, decides the pace.
 */
const concurrency = integer({ min: 1, max: 64, default: 4, help: "changes in flight at once" });

const noColor = flag("no colour in text output, even on a terminal (NO_COLOR does the same)");

const planFormat = choice(["text", "markdown", "json"], {
  default: "text",
  help:
    "text (colour on a terminal), markdown (for a pull-request comment: a summary table first, details " +
    "folded) or json (versioned)",
});

export const VALIDATE = defineVerb({
  name: "validate",
  summary: "check the config and desired-state files (no credentials, no network)",
  about:
    "Checks the config file and every desired-state file it points to, offline: no credentials, no " +
    "network. Prints every problem as file:line:col: path: message [CODE] on stderr and exits 1.",
  options: { config },
});

export const PLAN = defineVerb({
  name: "plan",
  http: true,
  summary: "show what apply would change (read-only)",
  about: "Lists the live clients and prints what apply would do. Reads only (a read-only token is enough).",
  options: {
    ...COMMON,
    format: planFormat,
    out: text({
      value: "FILE",
      help: "also save the plan (JSON, with its checksum) for 'apply --plan FILE'",
    }),
    "detailed-exitcode": flag("exit 2 when the plan has changes (0: none, 1: error, 3: unsafe)"),
    "no-color": noColor,
    ownership: choice(["state", "git"], {
      defaultText: "git when the config sets ownership.git, else state",
      help:
        "which clients this tool owns: 'git' reads the record 'run' publishes, 'state' the state " +
        "directory's inventory.json. An unreadable record is exit 1 (E_OWNERSHIP_UNREADABLE), never a " +
        "plan without it",
    }),
  },
});

export const APPLY = defineVerb({
  name: "apply",
  http: true,
  summary: "make the account match the desired state",
  about:
    "Plans, then applies: creates and patches first, deletes last. Secrets of new clients go to their sinks.",
  options: {
    ...COMMON,
    plan: text({
      value: "FILE",
      help: "apply only if the account still matches this reviewed plan (saved by 'plan --out')",
    }),
    force: flag("apply even when a safety valve refuses the plan"),
    concurrency,
    format: planFormat,
    "no-color": noColor,
  },
});

export const RUN = defineVerb({
  name: "run",
  http: true,
  summary: "keep the account matching the desired state (daemon: git, watch, webhook, metrics)",
  about:
    "Runs the reconciler until SIGTERM/SIGINT/SIGHUP: a run at start, then on every trigger (the config's " +
    "'interval' with ±10% jitter, a change under the desired directory, a new commit on the git source's " +
    "branch, a verified POST /hooks/git) and on the rotation schedule. One run at a time; triggers during " +
    "a run coalesce into one follow-up run; failures back off. Invalid desired state is never applied.",
  options: {
    ...COMMON,
    "log-level": choice(LOG_LEVELS, {
      value: "LEVEL",
      defaultText: "LOG_LEVEL, else info",
      help: "log level",
    }),
    "dry-run": flag(
      "observe only: the mutating client is never built; drift and due rotations are reported (status, " +
        "metrics, logs)",
    ),
    once: flag("one run with the daemon's wiring, then exit (0 ok, 1 error or partial, 3 unsafe)"),
    listen: text({
      value: "HOST:PORT",
      defaultText: "the config's server.address, 127.0.0.1:9090",
      help: "serve /healthz /readyz /status /metrics /hooks/git here (port 0 picks a free port)",
    }),
    "log-format": choice(["json", "pretty"], {
      default: "json",
      help: "json (one object per line on stdout) or pretty (for people)",
    }),
    "shutdown-timeout": duration({
      min: 1,
      max: 3600,
      default: 30,
      help: "on SIGTERM, SIGINT or SIGHUP, finish the changes in flight within this long, then exit",
    }),
    concurrency,
  },
});

const ROTATE_MODES = ["now", "finish", "compromised", "recover", "status"] as const;

export const ROTATE = defineVerb({
  name: "rotate",
  http: true,
  summary: "rotate client secrets (two phases, journaled, grace honoured)",
  about:
    "Rotates client secrets in two phases, each step journaled in the state directory so a killed run is " +
    "resumed by the next one: (1) check the sink is writable, rotate_secret, write the new secret to the " +
    "sink and read it back; (2) once 'grace' has passed, delete the old secret. Work left by an earlier " +
    "run (a secret not yet published, a due deletion) is always finished first.\n\n" +
    "Without a mode option it finishes deletions whose grace has passed and rotates secrets whose age " +
    "reached 'every'.",
  options: {
    ...COMMON,
    client: texts({ value: "NAME", nonEmpty: true, help: "act only on these clients" }),
    now: flag("start a rotation now, whatever the age (the old secret still gets its grace)"),
    finish: flag("only delete old secrets whose grace has passed"),
    compromised: flag(
      "break-glass, needs --client: delete any old secret, rotate, publish, and delete the replaced " +
        "secret at once (consumers must pick up the new secret immediately)",
    ),
    recover: flag(
      "needs --client: for a client left alone because it has a rotated secret this tool does not know " +
        "(E_UNKNOWN_ROTATED_SECRET) or a rotation whose new secret was lost (E_ROTATION_SECRET_LOST). " +
        "Trusts that the sink holds the NEWEST secret, deletes the rotated (older) one, then rotates and " +
        "publishes right away so the tool knows a valid secret again (the secret it replaces keeps its " +
        "grace). Risk: if the sink holds the older secret, consumers are locked out from the delete until " +
        "they read the newly published one; after E_ROTATION_SECRET_LOST that is certain (the sink holds " +
        "the older secret), so run it when consumers can re-read the sink.",
    ),
    status: flag("print each client's secret age, phase and next due time; change nothing"),
    "dry-run": flag(
      "print what this rotate (with the options given) would do, action by action, and change nothing: " +
        "no API write, no sink probe or write, no journal file",
    ),
    format: choice(["text", "json"], { default: "text", help: "text or json" }),
  },
  check: (v) => {
    const chosen = ROTATE_MODES.filter((mode) => v[mode]);
    if (chosen.length > 1) return `--${chosen.join(" and --")} cannot be combined`;
    const mode = chosen[0];
    if ((mode === "compromised" || mode === "recover") && v.client.length === 0) {
      return `--${mode} needs --client NAME: it never applies to every client implicitly`;
    }
    if (v["dry-run"] && mode === "status") return "--dry-run and --status cannot be combined";
    return undefined;
  },
  epilogue:
    "Exit codes: 0 everything done (or waiting for grace); 1 any failure, or a client left alone that\n" +
    "needs --recover (an unknown rotated secret, a lost new secret).",
});

/** The mode a rotate was asked for, after {@link ROTATE}'s check (at most one). */
export function rotateMode(values: {
  readonly [K in (typeof ROTATE_MODES)[number]]: boolean;
}): (typeof ROTATE_MODES)[number] | undefined {
  return ROTATE_MODES.find((mode) => values[mode]);
}

export const EXPORT = defineVerb({
  name: "export",
  http: true,
  summary: "write an account's live clients as a desired-state file",
  about:
    "Writes the live clients of an account as a desired-state file: complete entries pinned by client_id, " +
    "so committing it and running plan shows no change (adopting an existing account). Reads only.",
  options: {
    account: text({ value: "ID", defaultText: "account_id from the config", help: "the account" }),
    ...COMMON,
    "state-dir": text({
      value: "DIR",
      help: "accepted like the other verbs' and not used: export keeps no state",
    }),
    out: text({ value: "FILE", help: "write here instead of stdout" }),
  },
});

export const SCHEMA = defineVerb({
  name: "schema",
  summary: "print the JSON Schema of desired-state files (or of the config, or reference docs)",
  about:
    "Prints the JSON Schema of desired-state files (for editors: put '# yaml-language-server: " +
    "$schema=<path or URL>' at the top of each file), or with --config the JSON Schema of the config " +
    "file. Both are generated from the same zod schemas that validate.",
  options: {
    config: flag("print the config file's schema instead"),
    reference: flag("print the Markdown configuration reference (docs/CONFIGURATION.md)"),
    cli: flag("print the Markdown table of every command's options (the README's CLI section)"),
  },
  check: (v) => {
    const chosen = (["config", "reference", "cli"] as const).filter((k) => v[k]);
    return chosen.length > 1 ? `--${chosen.join(" and --")} cannot be combined` : undefined;
  },
});

function rateLimit(value: string, flagName: string): { quota: number; windowSeconds: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  const quota = Number(match?.[1]);
  const windowSeconds = Number(match?.[2]);
  if (!match || quota < 1 || windowSeconds < 1) {
    throw new UsageError(`${flagName}: '${value}' is not QUOTA/SECONDS (e.g. 1200/300)`);
  }
  return { quota, windowSeconds };
}

/** `ID:EMAIL` of `--oauth-user`: the id has no colon, the email one '@'. */
function oauthUser(value: string, flagName: string): { id: string; email: string } {
  const match = /^([A-Za-z0-9._-]+):([^@\s:]+@[^@\s]+)$/.exec(value.trim());
  if (!match?.[1] || !match[2]) {
    throw new UsageError(
      `${flagName}: '${value}' is not ID:EMAIL (e.g. ${DEFAULT_OAUTH_USER.id}:${DEFAULT_OAUTH_USER.email})`,
    );
  }
  return { id: match[1], email: match[2] };
}

export const EMULATOR = defineVerb({
  name: "emulator",
  summary: "run a local Cloudflare OAuth-clients API emulator and OAuth authorization server",
  about:
    "Runs a local emulator of Cloudflare's OAuth-clients API (control endpoints under /__emulator/) and of " +
    "its OAuth authorization server until SIGTERM or SIGINT. Prints two lines: 'listening on " +
    "http://HOST:PORT/client/v4', the URL to use as CLOUDFLARE_BASE_URL, then 'oauth issuer " +
    "http://HOST:PORT', the issuer whose /.well-known/openid-configuration a login library discovers.",
  options: {
    host: text({ value: "HOST", nonEmpty: true, defaultText: DEFAULT_HOST, help: "listen address" }),
    port: integer({
      min: 0,
      max: 65535,
      defaultText: String(DEFAULT_PORT),
      help: "listen port (0: any free port)",
    }),
    token: texts({
      value: "TOKEN",
      nonEmpty: true,
      help: "accepted write token (none given: any non-empty token is accepted)",
    }),
    "read-only-token": texts({
      value: "TOKEN",
      nonEmpty: true,
      help: "token that may only read (writes get 403)",
    }),
    "rate-limit": custom({
      value: "QUOTA/SECONDS",
      defaultText: `${RATE_LIMIT_DEFAULTS.quota}/${RATE_LIMIT_DEFAULTS.windowSeconds}`,
      help: "requests per window per credential",
      parse: rateLimit,
    }),
    state: text({ value: "FILE", nonEmpty: true, help: "keep clients in FILE across restarts" }),
    seed: integer({
      min: 0,
      max: 2 ** 32 - 1,
      defaultText: "random",
      help: "seed for every random decision (ids, secrets, faults)",
    }),
    "latency-ms": integer({
      min: 0,
      max: 600_000,
      defaultText: "0",
      help: "added latency per API request, in milliseconds",
    }),
    "fault-5xx": rate({ help: "share of API requests answered 500 (0..1)" }),
    "fault-reset": rate({ help: "share of API requests whose connection is reset (0..1)" }),
    "fault-drop-after-commit": rate({
      help: "share of mutations applied, then dropped before the response (0..1)",
    }),
    scopes: text({
      value: "FILE",
      nonEmpty: true,
      help: "JSON scope catalogue replacing config/scopes.json",
    }),
    "oauth-user": custom({
      value: "ID:EMAIL",
      defaultText: `${DEFAULT_OAUTH_USER.id}:${DEFAULT_OAUTH_USER.email}`,
      help: "the user who signs in and consents at once at /oauth2/auth",
      parse: oauthUser,
    }),
  },
});

export const DEMO = defineVerb({
  name: "demo",
  http: true,
  summary: "plan and apply the examples against an embedded emulator",
  about:
    "Starts the embedded emulator on a free port, copies config/examples to a temporary directory, then " +
    "validates, plans, applies and plans again (no changes), shows where the secrets went (paths, never " +
    "values) and stops.",
  options: {
    keep: flag("keep the temporary working copy (its path is printed) instead of deleting it"),
  },
});

/** Every verb, in the order the usage lists them. */
export const VERBS: readonly VerbSpec[] = [
  VALIDATE,
  PLAN,
  APPLY,
  RUN,
  ROTATE,
  EXPORT,
  SCHEMA,
  EMULATOR,
  DEMO,
];

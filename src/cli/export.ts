import { resolve } from "node:path";
import { stringify } from "yaml";
import type { LiveClient } from "../cloudflare/schemas.js";
import { WRITABLE_FIELDS, PROTOCOL_SCOPES } from "../cloudflare/schemas.js";
import { GitOpsError } from "../errors.js";
import { writeFileAtomic } from "../state/atomic.js";
import { buildReader, cliLogger, COMMON_OPTIONS, parseFlags } from "./common.js";
import { loadConfig } from "../config/index.js";
import { type Command, ExitCode } from "./io.js";

const USAGE = `usage: cf-oauth-gitops export [--account ID] [-c FILE] [--out FILE]

Writes the live clients of an account as a desired-state file: complete entries pinned by client_id,
so committing it and running plan shows no change (adopting an existing account). Reads only.
  --account ID   the account (default: account_id from the config)
  --out FILE     write here instead of stdout`;

/**
 * `export`: live -> desired. Every writable field is written (an entry is the whole truth, so a field
 * left out would be cleared), protocol scopes are left out because the server manages them
 * (docs/API-BEHAVIOUR.md, "Scopes"), and no secret exists in anything the API lists.
 */
export const exportCommand: Command = async (ctx) => {
  const { values } = parseFlags("export", ctx.args, {
    ...COMMON_OPTIONS,
    account: { type: "string" },
    out: { type: "string" },
  });
  if (values.help) {
    ctx.stdout.write(`${USAGE}\n`);
    return ExitCode.ok;
  }
  let accountId = values.account;
  if (!accountId) {
    const config = await loadConfig(resolve(ctx.cwd, values.config ?? "cf-oauth-gitops.yaml")).catch(
      () => null,
    );
    accountId = config?.account_id;
  }
  if (!accountId)
    throw new GitOpsError(
      "E_USAGE",
      "export: name the account with --account ID (or account_id in the config)",
    );
  const logger = cliLogger(ctx, values["log-level"]);
  const reader = buildReader(ctx, logger);
  try {
    const live = await reader.listClients(accountId, { signal: ctx.signal });
    const text = renderDesiredDocument(accountId, live);
    if (values.out) await writeFileAtomic(resolve(ctx.cwd, values.out), text, { mode: 0o644 });
    else ctx.stdout.write(text);
    if (values.out) ctx.stderr.write(`exported ${live.length} clients of ${accountId} to ${values.out}\n`);
    return ExitCode.ok;
  } finally {
    await reader.close();
  }
};

/** A desired-state YAML document for the given live clients, sorted by name. */
export function renderDesiredDocument(accountId: string, live: readonly LiveClient[]): string {
  const clients = [...live]
    .sort(
      (a, b) =>
        (a.client_name ?? "").localeCompare(b.client_name ?? "") || a.client_id.localeCompare(b.client_id),
    )
    .map(toDesiredEntry);
  const header = "# yaml-language-server: $schema=https://cf-oauth-gitops.dev/schema/desired.schema.json\n";
  return header + stringify({ account_id: accountId, clients }, { lineWidth: 0 });
}

function toDesiredEntry(client: LiveClient): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    client_name: client.client_name ?? "",
    client_id: client.client_id,
  };
  for (const field of WRITABLE_FIELDS) {
    if (field === "client_name") continue;
    let value = client[field];
    if (field === "scopes" && Array.isArray(value)) {
      value = value.filter((s) => !(PROTOCOL_SCOPES as readonly string[]).includes(s));
    }
    if (value === undefined || (Array.isArray(value) && value.length === 0 && field !== "scopes")) continue;
    entry[field] = value;
  }
  if (client.visibility === "public") entry["visibility"] = "public";
  return entry;
}

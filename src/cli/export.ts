import { resolve } from "node:path";
import { stringify } from "yaml";
import type { LiveClient } from "../api/oauth-clients.js";
import { WRITABLE_FIELDS, PROTOCOL_SCOPES } from "../api/oauth-clients.js";
import { writeFileAtomic } from "../state/atomic.js";
import { loadConfig } from "../config/index.js";
import { buildReader, cliLogger } from "./api.js";
import { UsageError, type VerbRun } from "./frame.js";
import { ExitCode } from "./io.js";
import type { EXPORT } from "./verbs.js";

/**
 * `export`: live -> desired. Every writable field is written (an entry is the whole truth, so a field
 * left out would be cleared), protocol scopes are left out because the server manages them
 * (docs/API-BEHAVIOUR.md, "Scopes"), and no secret exists in anything the API lists.
 */
export const runExport: VerbRun<typeof EXPORT> = async (ctx, values) => {
  let accountId = values.account;
  if (!accountId) {
    const config = await loadConfig(resolve(ctx.cwd, values.config)).catch(() => null);
    accountId = config?.account_id;
  }
  if (!accountId) throw new UsageError("name the account with --account ID (or account_id in the config)");
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

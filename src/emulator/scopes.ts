import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { GitOpsError } from "../errors.js";
import { scopeSchema, type OAuthScope } from "../api/oauth-clients.js";

/**
 * The scope catalogue served by `GET /oauth/scopes` and used to check dot-delimited scopes
 * (docs/API-BEHAVIOUR.md, "Scopes"). The default lives in `config/scopes.json` (shipped with the package); a
 * test or a user can replace it with `scopesFile` to mirror what the real API returns.
 */
export interface ScopeCatalogue {
  readonly items: readonly OAuthScope[];
  readonly ids: ReadonlySet<string>;
}

/** `config/scopes.json`, two levels up from both `src/emulator/` and `dist/emulator/`. */
export const DEFAULT_SCOPES_FILE = fileURLToPath(new URL("../../config/scopes.json", import.meta.url));

const catalogueSchema = z.array(scopeSchema.strict()).min(1);

/** Reads and validates a catalogue file; a bad file fails with the path and the first problem. */
export function loadScopeCatalogue(path: string = DEFAULT_SCOPES_FILE): ScopeCatalogue {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new GitOpsError("E_EMULATOR_SCOPES", `scopes file ${path}: cannot read JSON`, {
      cause: error,
      context: { path },
    });
  }
  const parsed = catalogueSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join(".") : "";
    throw new GitOpsError(
      "E_EMULATOR_SCOPES",
      `scopes file ${path}: ${where ? `${where}: ` : ""}${issue?.message ?? "invalid"}`,
      { context: { path } },
    );
  }
  return catalogueFrom(parsed.data);
}

/** Builds a catalogue from items already in memory. */
export function catalogueFrom(items: readonly OAuthScope[]): ScopeCatalogue {
  return { items, ids: new Set(items.map((i) => i.id)) };
}

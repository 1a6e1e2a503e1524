import type { ConfigIssue } from "../errors.js";
import type { Change } from "./plan-types.js";

/**
 * The dot-delimited scopes a plan would send that the account's scope catalogue does not list
 * (docs/API-BEHAVIOUR.md, "Scopes": dot scopes must exist in `GET /oauth/scopes`; identity scopes without a
 * dot are allowed; colon scopes are refused offline by the config loader). One issue per entry and scope,
 * located at the desired entry that names it.
 */
export function findUnknownScopes(changes: readonly Change[], known: ReadonlySet<string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const change of changes) {
    if (change.kind === "delete") continue;
    const body = change.body as { scopes?: string[] | null; optional_scopes?: string[] | null };
    for (const field of ["scopes", "optional_scopes"] as const) {
      for (const scope of body[field] ?? []) {
        if (!scope.includes(".") || known.has(scope)) continue;
        issues.push({
          file: change.source.file,
          line: change.source.line,
          col: change.source.col,
          path: `${change.source.path}.${field}`,
          message: `scope '${scope}' is not offered by this account's OAuth scope catalogue (GET /oauth/scopes)`,
          code: "E_UNKNOWN_SCOPE",
        });
      }
    }
  }
  return issues;
}

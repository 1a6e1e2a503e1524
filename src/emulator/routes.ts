/**
 * The emulated endpoints (docs/API-BEHAVIOUR.md, "Endpoints"): method, path template under /client/v4, and
 * whether the call needs "OAuth Client Write" and mutates state (mutations are persisted and are the
 * only calls the commit-then-drop fault applies to).
 */
export type Action =
  "list" | "create" | "get" | "update" | "delete" | "rotate" | "deleteRotated" | "scopes" | "user";

export interface Route {
  method: string;
  /** As counted by `GET /__emulator/stats`: `POST /accounts/:account_id/oauth_clients`. */
  template: string;
  action: Action;
  /** Needs a write token, mutates state. */
  write: boolean;
}

export interface RouteMatch {
  route: Route;
  params: { account_id: string; client_id: string };
}

const CLIENTS = "/accounts/:account_id/oauth_clients";
const CLIENT = `${CLIENTS}/:client_id`;

export const ROUTES: readonly Route[] = [
  { method: "GET", template: `GET ${CLIENTS}`, action: "list", write: false },
  { method: "POST", template: `POST ${CLIENTS}`, action: "create", write: true },
  { method: "GET", template: `GET ${CLIENT}`, action: "get", write: false },
  { method: "PATCH", template: `PATCH ${CLIENT}`, action: "update", write: true },
  { method: "DELETE", template: `DELETE ${CLIENT}`, action: "delete", write: true },
  { method: "POST", template: `POST ${CLIENT}/rotate_secret`, action: "rotate", write: true },
  { method: "DELETE", template: `DELETE ${CLIENT}/rotate_secret`, action: "deleteRotated", write: true },
  { method: "GET", template: "GET /oauth/scopes", action: "scopes", write: false },
  // The signed-in user: answered for an OAuth access token too (src/emulator/oauth.ts).
  { method: "GET", template: "GET /user", action: "user", write: false },
];

/** The template counted for a request no route matched. */
export function unmatchedTemplate(method: string): string {
  return `${method} (no route)`;
}

/** Matches a path relative to /client/v4 (`/accounts/abc/oauth_clients`); undefined when nothing does. */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  const parts = path.split("/").filter((p, i) => i > 0 || p !== "");
  if (parts[parts.length - 1] === "") parts.pop();
  const values = parts.map((p) => safeDecode(p));
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.template
      .slice(route.method.length + 1)
      .split("/")
      .slice(1);
    if (pattern.length !== values.length) continue;
    const params = { account_id: "", client_id: "" };
    const ok = pattern.every((seg, i) => {
      const value = values[i] ?? "";
      if (seg === ":account_id") params.account_id = value;
      else if (seg === ":client_id") params.client_id = value;
      else return seg === value;
      return value !== "";
    });
    if (ok) return { route, params };
  }
  return undefined;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

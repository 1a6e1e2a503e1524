/**
 * Offline URL checks for the client's URL fields: what the API (or the browser, for CORS origins)
 * would refuse is caught before a plan is made. Each function returns a problem phrased to follow the
 * value, or `undefined` when the value is fine.
 */

/** `host:port/...` parses as a URL with scheme `host:`; that is never meant. */
const HOST_PORT_RE = /^[a-z0-9.-]+:\d+(\/|$)/i;

/** Parses once (`canParse` then `new URL` would parse twice; this runs for every URL of every client). */
function parse(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function credentialsProblem(url: URL): string | undefined {
  return url.username !== "" || url.password !== "" ? "must not contain a user name or password" : undefined;
}

/** Redirect URIs: absolute (custom schemes allowed for native apps), no fragment (RFC 6749 3.1.2). */
export function redirectUriProblem(value: string): string | undefined {
  if (HOST_PORT_RE.test(value)) return "is missing a scheme, e.g. `http://`";
  const url = parse(value);
  if (url === undefined)
    return "is not an absolute URL (scheme and host, e.g. `https://app.example.com/callback`)";
  if (value.includes("#")) return "must not contain a fragment (`#...`)";
  return credentialsProblem(url);
}

/** client_uri, logo_uri, policy_uri, tos_uri: web pages, so `http(s)://host/...`. */
export function httpUrlProblem(value: string): string | undefined {
  const url = parse(value);
  if (url === undefined || HOST_PORT_RE.test(value)) return "is not an absolute http(s) URL";
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http:// or https:// URL";
  if (url.hostname === "") return "has no host";
  return credentialsProblem(url);
}

/** CORS origins are `scheme://host[:port]` exactly, as browsers send them in `Origin`. */
export function originProblem(value: string): string | undefined {
  const url = parse(value);
  if (url === undefined || HOST_PORT_RE.test(value)) return "is not an origin (`https://host[:port]`)";
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http:// or https:// origin";
  if (url.origin !== value) {
    return url.origin === "null" || url.hostname === ""
      ? "is not an origin (`https://host[:port]`)"
      : `is not an origin: no path, query or trailing slash; did you mean \`${url.origin}\`?`;
  }
  return undefined;
}

/** A URL as it may be echoed in a message: without credentials and not too long. */
export function showUrl(value: string): string {
  const cleaned = value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1***@");
  return cleaned.length > 100 ? `${cleaned.slice(0, 100)}...` : cleaned;
}

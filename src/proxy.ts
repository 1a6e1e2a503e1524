import type { Agent, Dispatcher } from "undici";
import { EnvHttpProxyAgent } from "./undici.js";

/** The proxy settings of an environment, as curl and most HTTP clients read them. */
export interface ProxySettings {
  /** `http_proxy` or `HTTP_PROXY`; empty when neither is set. */
  httpProxy: string;
  /** `https_proxy` or `HTTPS_PROXY`; empty when neither is set. */
  httpsProxy: string;
  /** `no_proxy` or `NO_PROXY`: hosts (`example.com`, `.example.com`, `*.example.com`, `host:port`) or `*`. */
  noProxy: string;
}

/** Reads the proxy variables of `env`, the lower-case name first (as curl does). */
export function proxySettings(env: Readonly<Record<string, string | undefined>>): ProxySettings {
  const pick = (lower: string, upper: string) => (env[lower] ?? env[upper] ?? "").trim();
  return {
    httpProxy: pick("http_proxy", "HTTP_PROXY"),
    httpsProxy: pick("https_proxy", "HTTPS_PROXY"),
    noProxy: pick("no_proxy", "NO_PROXY"),
  };
}

/** TLS settings for the connection to the server itself (not to the proxy). */
export interface ServerTls {
  /** PEM CA bundle to trust instead of the system's. */
  ca?: string;
  /** Name the certificate must carry (and the SNI sent) instead of the URL's host. */
  servername?: string;
  /** Milliseconds to establish a connection. */
  timeout?: number;
}

/**
 * An undici dispatcher that honours `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` as `proxy` gives them (undici's
 * EnvHttpProxyAgent: an https URL goes through `HTTPS_PROXY`, or `HTTP_PROXY` when that is unset; a
 * host matched by `NO_PROXY` goes direct) and applies `tls` to the server connection either way:
 * through a proxy, that connection is TLS inside the CONNECT tunnel (`requestTls`), directly it is
 * the agent's own (`connect`). The settings are passed explicitly (undici would otherwise read
 * `process.env` behind the caller's back), so an injected environment is the whole truth.
 */
export function proxyAwareDispatcher(
  proxy: ProxySettings,
  tls: ServerTls = {},
  agent: Omit<Agent.Options, "connect"> = {},
): Dispatcher {
  const server = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
  return new EnvHttpProxyAgent({
    ...agent,
    ...proxy,
    connect: server,
    requestTls: server,
    proxyTls: tls.timeout === undefined ? {} : { timeout: tls.timeout },
  });
}

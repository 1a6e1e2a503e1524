import { createRequire } from "node:module";
import type * as Undici from "undici";
import type { Dispatcher } from "undici";

/**
 * The parts of undici this program uses (its agents and `request`), loaded without undici's index.
 * The index requires every module undici has (fetch, WebSocket, the cache and mock agents, the
 * SQLite cache store, Node's own cookie parser) to export them: about 110 modules, where the
 * dispatchers and the request API are about 35. Loading them alone takes a cold `plan` about 80 ms
 * less (docs/BENCHMARKS.md, "cli-start"). undici is pinned to a minor version in package.json, and
 * the paths below are the files its index itself requires; a renamed file fails at the first import
 * of this module, not in use.
 *
 * The index also adds the request API (`request`, `connect`, `stream`, ...) to every dispatcher by
 * assigning it to `Dispatcher.prototype`; that is done here the same way, because the proxy agent
 * opens its CONNECT tunnel through `connect` and the API client calls `dispatcher.request`. Loading
 * the index as well later (a test, a library) assigns the same functions again.
 */

const load = createRequire(import.meta.url);

const dispatcherClass = load("undici/lib/dispatcher/dispatcher.js") as typeof Undici.Dispatcher;
Object.assign(dispatcherClass.prototype, load("undici/lib/api/index.js") as object);

export const Agent = load("undici/lib/dispatcher/agent.js") as typeof Undici.Agent;
export type Agent = Undici.Agent;
export const EnvHttpProxyAgent = load(
  "undici/lib/dispatcher/env-http-proxy-agent.js",
) as typeof Undici.EnvHttpProxyAgent;
export type { Dispatcher };

const { parseURL } = load("undici/lib/core/util.js") as { parseURL: (url: string | URL) => URL };

/** undici's `request` options: a dispatcher, and a method and request options without the URL's parts. */
export type RequestOptions = { dispatcher?: Dispatcher } & Omit<
  Dispatcher.RequestOptions,
  "origin" | "path" | "method"
> &
  Partial<Pick<Dispatcher.RequestOptions, "method">>;

/**
 * undici's `request(url, options)`, as its index defines it: the URL checked and split into origin
 * and path, sent through `options.dispatcher`, or undici's global dispatcher when none is given
 * (loaded only then: loading it installs a global agent).
 */
export function request(url: string | URL, options: RequestOptions = {}): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const target = parseURL(url);
  const via =
    dispatcher ??
    (load("undici/lib/global.js") as { getGlobalDispatcher: () => Dispatcher }).getGlobalDispatcher();
  return via.request({
    ...rest,
    origin: target.origin,
    path: target.search ? `${target.pathname}${target.search}` : target.pathname,
    method: rest.method ?? (rest.body ? "PUT" : "GET"),
  });
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { GitOpsError } from "../errors.js";
import type { Logger } from "../log.js";
import { sendJson, sendText } from "./respond.js";

/**
 * The daemon's HTTP endpoints (node:http, no framework):
 * - `GET /healthz`  200 while the process serves requests.
 * - `GET /readyz`   200 while the daemon takes triggers (start to shutdown), whatever the last run
 *   did; 503 with a JSON reason while shutting down. Run health is in `/status` and `/metrics`.
 * - `GET /status`   the daemon's JSON status (never a secret).
 * - `GET /metrics`  Prometheus text exposition.
 * - `POST /hooks/git` the webhook (404 when no webhook is configured).
 * Slow clients are cut off: headers within 5 s, the whole request within 10 s.
 */

export interface ServerHandlers {
  readiness(): { ready: boolean; reason: string | null };
  status(): unknown;
  metrics(): Promise<{ contentType: string; body: string }>;
  webhook: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | null;
  logger: Logger;
}

export interface RunningServer {
  /** `http://HOST:PORT` with the port actually bound (a `:0` address gets a free one). */
  url: string;
  host: string;
  port: number;
  /** Stops accepting connections and closes the idle ones; resolves when all are closed. */
  close(): Promise<void>;
}

export const HEADERS_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 10_000;

/** `host:port` or `[v6]:port` -> parts. The config loader has checked the shape already. */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(address.trim());
  const port = Number(match?.[2]);
  if (!match || !(port >= 0 && port <= 65_535)) {
    throw new GitOpsError("E_USAGE", `not a host:port address: ${address}`);
  }
  const host = (match[1] as string).replace(/^\[|\]$/g, "") || "0.0.0.0";
  return { host, port };
}

/** Starts listening; resolves once bound. */
export async function startServer(address: string, handlers: ServerHandlers): Promise<RunningServer> {
  const { host, port } = parseAddress(address);
  const log = handlers.logger;
  // Node checks headersTimeout/requestTimeout only every connectionsCheckingInterval (30 s by
  // default): checking every second is what makes the 5 s / 10 s limits cut slow clients off.
  const server = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
    route(req, res, handlers).catch((error: unknown) => {
      log.error({ error: (error as Error).message, path: pathOf(req) }, "request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.destroy();
    });
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = 5_000;
  const bound = await listen(server, host, port);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound}`;
  return {
    url,
    host,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

async function route(req: IncomingMessage, res: ServerResponse, h: ServerHandlers): Promise<void> {
  const path = pathOf(req);
  const method = req.method ?? "GET";
  if (path === "/hooks/git") {
    if (method !== "POST") return methodNotAllowed(res, "POST");
    if (!h.webhook) return sendJson(res, 404, { error: "no webhook is configured (config `webhook:`)" });
    return h.webhook(req, res);
  }
  if (method !== "GET" && method !== "HEAD") {
    return isKnown(path) ? methodNotAllowed(res, "GET") : sendJson(res, 404, { error: "not found" });
  }
  switch (path) {
    case "/healthz":
      return sendText(res, 200, "ok\n");
    case "/readyz": {
      const readiness = h.readiness();
      return sendJson(res, readiness.ready ? 200 : 503, readiness);
    }
    case "/status":
      return sendJson(res, 200, h.status());
    case "/metrics": {
      const { contentType, body } = await h.metrics();
      return sendText(res, 200, body, contentType);
    }
    default:
      return sendJson(res, 404, { error: "not found" });
  }
}

function isKnown(path: string): boolean {
  return ["/healthz", "/readyz", "/status", "/metrics"].includes(path);
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendJson(res, 405, { error: "method not allowed" }, { allow });
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return (q === -1 ? url : url.slice(0, q)).replace(/\/+$/, "") || "/";
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) =>
      reject(
        new GitOpsError("E_LISTEN", `cannot listen on ${host}:${port}: ${error.message}`, {
          cause: error,
          context: { host, port },
        }),
      );
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}

import { request, type Dispatcher } from "../undici.js";
import { SinkError } from "../errors.js";

/** A response with its body parsed as JSON when it is JSON (`body` is undefined otherwise). */
export interface JsonResponse {
  status: number;
  body: unknown;
  /** Response headers, names in lower case (Vault's `x-vault-index` is read from here). */
  headers: Record<string, string | string[] | undefined>;
}

export interface JsonRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  headers?: Record<string, string>;
  body?: unknown;
  dispatcher?: Dispatcher;
  /** Headers and body each must arrive within this long. */
  timeoutMs?: number;
}

/**
 * One JSON request over undici for the Vault and Kubernetes sinks. Transport failures become a
 * transient `E_SINK_UNREACHABLE` naming the sink and the method and path; the request body (which
 * may hold a secret) is never part of any error.
 */
export async function requestJson(sink: string, url: URL, init: JsonRequest): Promise<JsonResponse> {
  const headers: Record<string, string> = { accept: "application/json", ...init.headers };
  let payload: string | undefined;
  if (init.body !== undefined) {
    payload = JSON.stringify(init.body);
    headers["content-type"] = "application/json";
  }
  const timeout = init.timeoutMs ?? 30_000;
  try {
    const response = await request(url, {
      method: init.method,
      headers,
      body: payload,
      dispatcher: init.dispatcher,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    const text = await response.body.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.statusCode, body, headers: response.headers };
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new SinkError(
      "E_SINK_UNREACHABLE",
      `sink=${sink}: ${init.method} ${url.origin}${url.pathname} failed: ${code ?? (error as Error).message}`,
      {
        disposition: "transient",
        context: { sink, method: init.method, url: `${url.origin}${url.pathname}` },
      },
    );
  }
}

import { createServer, type Server } from "node:http";
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "../../src/cloudflare/index.js";
import { Secret } from "../../src/secret.js";
import { ACCOUNT, body, capturingLogger, rejection } from "./support.js";

/**
 * The emulator is faithful by design, so contract-breaking bodies come from a tiny node:http server
 * that answers every request with one canned response and counts requests.
 */

const CANARY = "cs_canary_9f8e7d6c5b4a";

interface Canned {
  server: Server;
  url: string;
  hits: number;
}

let current: Canned | undefined;
afterEach(async () => {
  await new Promise((resolve) => current?.server.close(resolve) ?? resolve(undefined));
  current = undefined;
});

async function cannedServer(status: number, payload: string): Promise<Canned> {
  const canned: Canned = { server: createServer(), url: "", hits: 0 };
  canned.server.on("request", (req, res) => {
    canned.hits += 1;
    req.resume();
    req.on("end", () => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => canned.server.listen(0, "127.0.0.1", resolve));
  const address = canned.server.address();
  canned.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/client/v4`;
  current = canned;
  return canned;
}

function apiFor(canned: Canned, logger = capturingLogger().logger) {
  return createClient({
    baseUrl: canned.url,
    credentials: { kind: "token", token: new Secret("t") },
    backoff: { baseMs: 1, capMs: 5 },
    logger,
  });
}

const good = (id: number) => ({ client_id: `c${id}`, visibility: "private", client_name: `n${id}` });
const envelope = (result: unknown) => JSON.stringify({ success: true, errors: [], messages: [], result });

describe("response validation", () => {
  it("names the route and the field path of a bad list item, and does not retry", async () => {
    const items = [good(0), good(1), good(2), { ...good(3), visibility: "secretive" }];
    const canned = await cannedServer(200, envelope(items));
    const api = apiFor(canned);
    try {
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toMatchObject({ code: "E_API_SCHEMA", retryable: false, disposition: "terminal" });
      expect(error.message).toBe(
        "GET /accounts/:account_id/oauth_clients: result[3].visibility: expected one of public|private",
      );
      expect(canned.hits).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("keeps the secret of a malformed create response out of the error and the logs", async () => {
    const created = {
      ...good(1),
      client_secret: CANARY,
      grant_types: ["implicit"],
      has_rotated_secret: "no",
    };
    const canned = await cannedServer(200, envelope(created));
    const { logger, lines } = capturingLogger();
    const api = apiFor(canned, logger);
    try {
      const error = await rejection(api.createClient(ACCOUNT, body("x"), { existingClientIds: [] }));
      expect(error).toMatchObject({ code: "E_API_SCHEMA" });
      expect(error.message).toContain(
        "POST /accounts/:account_id/oauth_clients: result.grant_types[0]: expected one of",
      );
      expect(error.message).toContain("result.has_rotated_secret: expected boolean");
      for (const text of [
        error.message,
        JSON.stringify(error),
        inspect(error, { depth: 10 }),
        error.stack ?? "",
      ]) {
        expect(text).not.toContain(CANARY);
      }
      expect(lines.join("\n")).not.toContain(CANARY);
      expect(canned.hits).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("accepts what the OpenAPI document allows: a client_uri_verification without a status", async () => {
    const item = {
      ...good(1),
      client_uri: "https://app.example.com",
      client_uri_verification: { text: "t=1" },
    };
    const canned = await cannedServer(200, envelope([item]));
    const api = apiFor(canned);
    try {
      expect(await api.listClients(ACCOUNT)).toEqual([item]);
    } finally {
      await api.close();
    }
  });

  it("rejects a 200 whose body is not JSON, or not an envelope", async () => {
    const html = await cannedServer(200, "<html>oops</html>");
    let api = apiFor(html);
    try {
      expect((await rejection(api.listScopes())).message).toBe("GET /oauth/scopes: (body): expected JSON");
    } finally {
      await api.close();
    }
    await new Promise((resolve) => html.server.close(resolve));
    const bare = await cannedServer(200, JSON.stringify({ result: [] }));
    api = apiFor(bare);
    try {
      const error = await rejection(api.listScopes());
      expect(error.message).toMatch(/^GET \/oauth\/scopes: success: expected boolean/);
      expect(error.message).toContain("errors: expected array");
    } finally {
      await api.close();
    }
  });

  it("maps a non-JSON 502 to a retryable E_API_HTTP with no Cloudflare codes", async () => {
    const canned = await cannedServer(502, "<html>bad gateway</html>");
    const api = apiFor(canned);
    try {
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toMatchObject({
        code: "E_API_HTTP",
        status: 502,
        retryable: true,
        cfErrors: [],
        attempts: 4,
      });
      expect(canned.hits).toBe(4);
    } finally {
      await api.close();
    }
  });
});

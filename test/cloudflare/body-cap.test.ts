import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createReader, createClient } from "../../src/cloudflare/index.js";
import { DEFAULT_MAX_RESPONSE_BYTES } from "../../src/cloudflare/options.js";
import { startTestEmulator } from "../helpers/emulator.js";
import { ACCOUNT, body, optionsFor, rejection, writer } from "./support.js";

/**
 * The API client reads at most `maxResponseBytes` of an answer: real HTTP servers that declare a
 * huge body, or stream one without a length, get the connection closed and the call fails with
 * `E_API_TOO_LARGE`, once (no retry).
 */

interface Fake {
  url: string;
  requests: number;
  /** Resolves when the server sees the client close the connection. */
  clientClosed: Promise<void>;
  /** Bytes of body the server managed to write before the client went away. */
  written: () => number;
  server: Server;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function fake(handler: (res: ServerResponse, count: (n: number) => void) => void): Promise<Fake> {
  let written = 0;
  let requests = 0;
  let onClose: () => void = () => undefined;
  const clientClosed = new Promise<void>((resolve) => (onClose = resolve));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests += 1;
    req.socket.on("close", onClose);
    handler(res, (n) => (written += n));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/client/v4`,
    get requests() {
      return requests;
    },
    clientClosed,
    written: () => written,
    server,
  };
}

/** Writes `chunk` until the client goes away (or `limit` bytes), honouring backpressure. */
function stream(res: ServerResponse, count: (n: number) => void, limit = Number.POSITIVE_INFINITY): void {
  const chunk = Buffer.alloc(64 * 1024, "a");
  let sent = 0;
  const pump = (): void => {
    while (!res.destroyed && sent < limit) {
      sent += chunk.length;
      count(chunk.length);
      if (!res.write(chunk)) {
        res.once("drain", pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  res.on("error", () => undefined);
  pump();
}

describe("API answer size cap", () => {
  it("refuses an answer whose declared length is over the cap without reading it, and does not retry", async () => {
    const server = await fake((res, count) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(700 * 1024 * 1024) });
      // The start of a body, then nothing: a client that waits for the rest would hang.
      res.write('{"success":true,"errors":[],"messages":[],"result":[');
      count(52);
    });
    const api = createReader(optionsFor(server, { maxAttempts: 4 }));
    try {
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toMatchObject({
        code: "E_API_TOO_LARGE",
        retryable: false,
        disposition: "terminal",
        status: 200,
        context: { maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES, declaredBytes: 700 * 1024 * 1024 },
      });
      expect(error.message).toContain(`answer declares ${700 * 1024 * 1024} bytes, over the limit`);
      await server.clientClosed; // the connection was dropped, not left open
      expect(server.requests).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("stops reading a chunked answer with no length once it passes the default cap of 32 MiB", async () => {
    const server = await fake((res, count) => {
      res.writeHead(200, { "content-type": "application/json" }); // chunked: no content-length
      stream(res, count, 48 * 1024 * 1024);
    });
    const api = createReader(optionsFor(server));
    try {
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toMatchObject({ code: "E_API_TOO_LARGE", retryable: false, status: 200 });
      expect(error.message).toContain(`passed the limit of ${DEFAULT_MAX_RESPONSE_BYTES} bytes`);
      await server.clientClosed;
      expect(server.requests).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("caps error answers too, with the limit maxResponseBytes sets", async () => {
    const server = await fake((res, count) => {
      res.writeHead(500, { "content-type": "application/json" });
      stream(res, count, 8 * 1024 * 1024);
    });
    const api = createReader(optionsFor(server, { maxResponseBytes: 1024 * 1024 }));
    try {
      const error = await rejection(api.listClients(ACCOUNT));
      expect(error).toMatchObject({
        code: "E_API_TOO_LARGE",
        retryable: false,
        status: 500,
        context: { maxResponseBytes: 1024 * 1024 },
      });
      expect(server.written()).toBeLessThan(8 * 1024 * 1024); // the client hung up before the end
      await server.clientClosed;
      expect(server.requests).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("applies maxResponseBytes to real emulator answers, and marks a write's oversized answer ambiguous", async () => {
    const emu = await startTestEmulator();
    const setup = writer(emu);
    const small = createClient(optionsFor(emu, { maxResponseBytes: 300 }));
    try {
      for (const name of ["one", "two", "three"]) {
        await setup.createClient(ACCOUNT, body(name), { existingClientIds: [] });
      }
      expect(await setup.listClients(ACCOUNT)).toHaveLength(3);
      await expect(small.listClients(ACCOUNT)).rejects.toMatchObject({
        code: "E_API_TOO_LARGE",
        ambiguous: false,
      });
      const [first] = await setup.listClients(ACCOUNT);
      await expect(
        small.updateClient(ACCOUNT, first?.client_id as string, { redirect_uris: ["https://a.example/cb"] }),
      ).rejects.toMatchObject({ code: "E_API_TOO_LARGE", ambiguous: true });
    } finally {
      await setup.close();
      await small.close();
    }
  });
});

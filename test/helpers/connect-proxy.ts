import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

/**
 * A forward proxy for tests: node:http answering `CONNECT host:port` by opening a TCP tunnel, which
 * is how clients reach https (and, with undici, http) origins through `HTTPS_PROXY`/`HTTP_PROXY`.
 * Every tunnel asked for is recorded, so a test can tell whether a client went through the proxy.
 * `hosts` maps names only the proxy can resolve (as a corporate proxy resolves internal names) to
 * addresses; any other request (a plain proxied GET) is a 405, so a client that does not tunnel fails.
 */
export class ConnectProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** `host:port` of every CONNECT, in order. */
  readonly tunnels: string[] = [];
  url = "";

  private constructor(hosts: Record<string, string>) {
    this.#server = createServer((_req, res) => {
      res.writeHead(405, { "content-type": "text/plain" }).end("only CONNECT is supported\n");
    });
    this.#server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
      const target = req.url ?? "";
      this.tunnels.push(target);
      this.#sockets.add(client);
      client.on("close", () => this.#sockets.delete(client));
      const match = /^(.+):(\d+)$/.exec(target);
      if (!match) {
        client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
        return;
      }
      const host = (match[1] as string).replace(/^\[|\]$/g, "");
      const upstream = connect(Number(match[2]), hosts[host] ?? host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      this.#sockets.add(upstream);
      upstream.on("close", () => this.#sockets.delete(upstream));
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
  }

  static async start(hosts: Record<string, string> = {}): Promise<ConnectProxy> {
    const proxy = new ConnectProxy(hosts);
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    proxy.url = `http://127.0.0.1:${(proxy.#server.address() as AddressInfo).port}`;
    return proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

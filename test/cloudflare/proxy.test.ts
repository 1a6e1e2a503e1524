import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientOptionsFromEnv, createReader } from "../../src/cloudflare/index.js";
import { ConnectProxy } from "../helpers/connect-proxy.js";
import { useEmulator } from "../helpers/emulator.js";
import { ACCOUNT, optionsFor, READ_TOKEN } from "./support.js";

/**
 * The API client honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY: through a real CONNECT proxy that alone
 * can resolve the API's host name, and straight past it for a host NO_PROXY lists.
 */

const emulator = useEmulator();
let proxy: ConnectProxy;

beforeAll(async () => {
  proxy = await ConnectProxy.start({ "api.cloudflare.test": "127.0.0.1" });
});

afterAll(async () => {
  await proxy.close();
});

/** The emulator's URL under a name only the proxy resolves. */
function proxiedUrl(): string {
  const url = new URL(emulator().url);
  url.hostname = "api.cloudflare.test";
  return url.href.replace(/\/+$/, "");
}

describe("Cloudflare client behind a proxy", () => {
  it("tunnels through the proxy the environment names", async () => {
    const url = new URL(proxiedUrl());
    const api = createReader(
      clientOptionsFromEnv(
        { CLOUDFLARE_API_TOKEN: READ_TOKEN, CLOUDFLARE_BASE_URL: url.href, HTTP_PROXY: proxy.url },
        { maxAttempts: 1 },
      ),
    );
    try {
      const before = proxy.tunnels.length;
      expect(await api.listClients(ACCOUNT)).toEqual([]);
      expect(proxy.tunnels.slice(before)).toEqual([`api.cloudflare.test:${url.port}`]);
    } finally {
      await api.close();
    }
    // Without the proxy the name does not resolve: the request above really went through it.
    const direct = createReader(
      optionsFor(
        { url: url.href },
        { maxAttempts: 1, proxy: { httpProxy: "", httpsProxy: "", noProxy: "" } },
      ),
    );
    try {
      await expect(direct.listClients(ACCOUNT)).rejects.toMatchObject({ code: "E_API_NETWORK" });
    } finally {
      await direct.close();
    }
  });

  it("goes straight to a host NO_PROXY lists, and reads the lower-case variables too", async () => {
    const before = proxy.tunnels.length;
    const bypass = createReader(
      clientOptionsFromEnv(
        {
          CLOUDFLARE_API_TOKEN: READ_TOKEN,
          CLOUDFLARE_BASE_URL: emulator().url,
          http_proxy: proxy.url,
          no_proxy: "example.com,127.0.0.1",
        },
        { maxAttempts: 1 },
      ),
    );
    try {
      expect(await bypass.listClients(ACCOUNT)).toEqual([]);
      expect(proxy.tunnels.slice(before)).toEqual([]);
    } finally {
      await bypass.close();
    }
    const proxied = createReader(
      clientOptionsFromEnv(
        { CLOUDFLARE_API_TOKEN: READ_TOKEN, CLOUDFLARE_BASE_URL: emulator().url, http_proxy: proxy.url },
        { maxAttempts: 1 },
      ),
    );
    try {
      expect(await proxied.listClients(ACCOUNT)).toEqual([]);
      expect(proxy.tunnels.slice(before)).toEqual([`127.0.0.1:${new URL(emulator().url).port}`]);
    } finally {
      await proxied.close();
    }
  });
});

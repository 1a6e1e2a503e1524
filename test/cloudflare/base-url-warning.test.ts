import { describe, expect, it } from "vitest";
import { createReader, plainHttpBaseUrlWarning } from "../../src/cloudflare/index.js";
import { Secret } from "../../src/secret.js";
import { makeWorkspace } from "../e2e/support.js";
import { startTestEmulator } from "../helpers/emulator.js";
import { capturingLogger, WRITE_TOKEN } from "./support.js";

/**
 * A plain-http CLOUDFLARE_BASE_URL to a host that is not loopback sends the token in clear text:
 * the client warns in its log, and the CLI says so on stderr in words as well.
 */

const NOT_LOOPBACK = [
  "http://10.1.2.3:8080/client/v4",
  "http://api.example.com/client/v4",
  "http://[2001:db8::1]/client/v4",
  "http://0.0.0.0:8787/client/v4",
  "http://localhost.example.com/client/v4",
];
const QUIET = [
  "https://api.cloudflare.com/client/v4",
  "https://10.1.2.3/client/v4",
  "http://127.0.0.1:8787/client/v4",
  "http://127.12.0.9/client/v4",
  "http://127.1:8787/client/v4",
  "http://localhost:8787/client/v4",
  "http://LOCALHOST./client/v4",
  "http://[::1]:8787/client/v4",
];

describe("plain-http base URL warning", () => {
  it("is given for http to any host outside 127.0.0.0/8, ::1 and localhost, and only then", () => {
    for (const url of NOT_LOOPBACK) {
      expect(plainHttpBaseUrlWarning(url), url).toContain("is plain http to");
    }
    for (const url of QUIET) expect(plainHttpBaseUrlWarning(url), url).toBeUndefined();
  });

  it("is logged at warn level when a client is built, without the token", async () => {
    for (const baseUrl of [...NOT_LOOPBACK, ...QUIET]) {
      const { logger, lines } = capturingLogger();
      const api = createReader({
        baseUrl,
        credentials: { kind: "token", token: new Secret(WRITE_TOKEN) },
        logger,
      });
      await api.close();
      const warnings = lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l["level"] === 40);
      if (NOT_LOOPBACK.includes(baseUrl)) {
        expect(warnings, baseUrl).toHaveLength(1);
        expect(warnings[0]).toMatchObject({
          component: "cloudflare",
          base_url: new URL(baseUrl).origin,
          msg: expect.stringContaining("travel unencrypted"),
        });
      } else {
        expect(warnings, baseUrl).toEqual([]);
      }
      expect(lines.join("\n")).not.toContain(WRITE_TOKEN);
    }
  });

  it("is printed on stderr by the CLI, run as a process, even at log level error", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", "0123456789abcdef0123456789abcdef", []);
    // 0.0.0.0 is not a loopback address, yet on Linux a connection to it reaches this machine's
    // listeners: the plan runs against the emulator and the warning is still due.
    const remote = emu.url.replace("127.0.0.1", "0.0.0.0");
    const warned = await ws.runChild("plan", ["--log-level", "error"], { CLOUDFLARE_BASE_URL: remote });
    expect(warned.code, warned.stderr).toBe(0);
    expect(warned.stderr).toContain(
      `warning: the Cloudflare API base URL (CLOUDFLARE_BASE_URL) is plain http to ${new URL(remote).host}`,
    );
    expect(warned.stderr).not.toContain(WRITE_TOKEN);

    // At the default level the client's own log line says it, and nothing says it twice.
    const logged = await ws.runChild("plan", [], { CLOUDFLARE_BASE_URL: remote });
    expect(logged.code, logged.stderr).toBe(0);
    expect(logged.stderr.split("is plain http to").length - 1, logged.stderr).toBe(1);

    const quiet = await ws.runChild("plan", ["--log-level", "error"]);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).not.toContain("warning:");
  });
});

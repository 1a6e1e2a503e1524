import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { useEmulator } from "../helpers/emulator.js";
import { createLoginClient, type AuthMethod } from "./support.js";

/**
 * examples/login/login.mjs, the login the README shows, run as a real process against a real emulator
 * for a client created through the emulator's API: it must log in and print who, and never a secret
 * or a token.
 */

const SCRIPT = fileURLToPath(new URL("../../examples/login/login.mjs", import.meta.url));
const run = promisify(execFile);
const emulator = useEmulator({ oauthUser: { id: "example-user", email: "example@corp.example" } });

describe("examples/login/login.mjs", () => {
  it.each(["client_secret_basic", "none"] as AuthMethod[])("logs in with a %s client", async (method) => {
    const emu = emulator();
    const client = await createLoginClient(emu, method);
    const { stdout, stderr } = await run(process.execPath, [SCRIPT], {
      env: {
        PATH: process.env["PATH"] ?? "",
        ISSUER: emu.issuer,
        CLIENT_ID: client.client_id,
        ...(client.client_secret === undefined ? {} : { CLIENT_SECRET: client.client_secret }),
      },
      timeout: 30_000,
    });
    expect(stderr).toBe("");
    expect(JSON.parse(stdout)).toEqual({
      sub: "example-user",
      email: "example@corp.example",
      scope: "openid offline_access user-details.read",
      refresh_token: true,
    });
    if (client.client_secret !== undefined) expect(stdout).not.toContain(client.client_secret);
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { emulatorCommand } from "../../src/cli/emulator.js";
import { systemClock } from "../../src/cli/io.js";
import { ACCOUNT_A } from "../helpers/emulator.js";
import { programArgs } from "../helpers/program.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const LISTENING =
  /^listening on (http:\/\/127\.0\.0\.1:(\d+)\/client\/v4)\noauth issuer (http:\/\/127\.0\.0\.1:(\d+))\n$/;

interface Running {
  child: ChildProcess;
  url: string;
  issuer: string;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Runs `cf-oauth-gitops emulator ARGS` from source as a real process and waits for its line. */
async function spawnEmulator(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [...programArgs(), "emulator", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const [url, issuer] = await new Promise<[string, string]>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const match = LISTENING.exec(out);
      if (match?.[1] && match[3]) resolve([match[1], match[3]]);
    });
    void exit.then((code) => reject(new Error(`emulator exited ${code} before listening: ${err}`)));
  });
  return { child, url, issuer, stdout: () => out, stderr: () => err, exit };
}

/** Runs the verb in-process with captured streams. */
async function runInProcess(args: string[], signal = AbortSignal.abort()) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await emulatorCommand({
    args,
    env: {},
    stdout,
    stderr,
    cwd: ROOT,
    signal,
    clock: systemClock,
  });
  return { code, out, err };
}

describe("cf-oauth-gitops emulator", () => {
  it("prints the listening and issuer lines, serves, keeps --state across a restart, and exits 0 on SIGTERM", async () => {
    const dir = await mkdtemp(join(tmpdir(), "emulator-cli-"));
    try {
      const state = join(dir, "state.json");
      const first = await spawnEmulator(["--port", "0", "--seed", "7", "--state", state, "--token", "t1"]);
      const created = await fetch(`${first.url}/accounts/${ACCOUNT_A}/oauth_clients`, {
        method: "POST",
        headers: { authorization: "Bearer t1" },
        body: JSON.stringify({
          client_name: "from cli",
          redirect_uris: ["https://a.example/cb"],
          grant_types: ["authorization_code"],
          response_types: ["code"],
          scopes: ["email"],
          token_endpoint_auth_method: "none",
        }),
      });
      expect(created.status).toBe(200);
      const denied = await fetch(`${first.url}/accounts/${ACCOUNT_A}/oauth_clients`, {
        headers: { authorization: "Bearer other" },
      });
      expect(denied.status).toBe(403);
      first.child.kill("SIGTERM");
      expect(await first.exit).toBe(0);
      expect(first.stdout()).toMatch(LISTENING);
      expect(first.stderr()).toBe("");

      const second = await spawnEmulator(["--port", "0", "--state", state]);
      const list = await fetch(`${second.url}/accounts/${ACCOUNT_A}/oauth_clients`, {
        headers: { authorization: "Bearer any" },
      });
      const body = (await list.json()) as { result: Array<{ client_name: string }> };
      expect(body.result.map((c) => c.client_name)).toEqual(["from cli"]);
      second.child.kill("SIGTERM");
      expect(await second.exit).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("prints the OAuth issuer of the same origin, and --oauth-user names the signed-in user", async () => {
    const running = await spawnEmulator(["--port", "0", "--oauth-user", "u-42:dev@corp.example"]);
    try {
      const match = LISTENING.exec(running.stdout());
      expect(match?.[2]).toBe(match?.[4]);
      expect(running.url).toBe(`${running.issuer}/client/v4`);
      const discovery = await fetch(`${running.issuer}/.well-known/openid-configuration`);
      expect(((await discovery.json()) as { issuer: string }).issuer).toBe(running.issuer);
      const user = await fetch(`${running.url}/user`, { headers: { authorization: "Bearer any" } });
      expect(((await user.json()) as { result: unknown }).result).toEqual({
        id: "u-42",
        email: "dev@corp.example",
      });
    } finally {
      running.child.kill("SIGTERM");
      await running.exit;
    }
  });

  it("exits 1 with a clear message on a bad flag (real process)", async () => {
    const child = spawn(process.execPath, [...programArgs(), "emulator", "--port", "http"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect(err).toContain("--port: 'http' is not a whole number");
  });

  it.each([
    [["--bogus"], "bogus"],
    [["stray"], "stray"],
    [["--port", "70000"], "--port: 70000"],
    [["--rate-limit", "5"], "--rate-limit: '5' is not QUOTA/SECONDS"],
    [["--rate-limit", "0/60"], "--rate-limit"],
    [["--fault-5xx", "1.5"], "--fault-5xx: '1.5'"],
    [["--fault-reset", "x"], "--fault-reset"],
    [["--fault-drop-after-commit", "-0.1"], "--fault-drop-after-commit"],
    [["--seed", "-3"], "--seed"],
    [["--latency-ms", "1.5"], "--latency-ms"],
    [["--token", ""], "--token: must not be empty"],
    [["--oauth-user", "no-email"], "--oauth-user: 'no-email' is not ID:EMAIL"],
  ])("refuses %j", async (args, fragment) => {
    const { code, out, err } = await runInProcess(args);
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(err).toContain(fragment);
    expect(err).toContain("--help");
  });

  it("prints the usage with --help and exits 0", async () => {
    const { code, out } = await runInProcess(["--help"]);
    expect(code).toBe(0);
    for (const flag of [
      "--host",
      "--port",
      "--token",
      "--read-only-token",
      "--rate-limit",
      "--state",
      "--seed",
    ]) {
      expect(out).toContain(flag);
    }
    for (const flag of [
      "--latency-ms",
      "--fault-5xx",
      "--fault-reset",
      "--fault-drop-after-commit",
      "--scopes",
    ]) {
      expect(out).toContain(flag);
    }
  });

  it("runs in-process until its signal aborts, then resolves 0", async () => {
    const controller = new AbortController();
    const stdout = new PassThrough();
    const line = new Promise<string>((resolve) => stdout.once("data", (d: Buffer) => resolve(d.toString())));
    const running = emulatorCommand({
      args: ["--port", "0", "--rate-limit", "5/10"],
      env: {},
      stdout,
      stderr: new PassThrough(),
      cwd: ROOT,
      signal: controller.signal,
      clock: systemClock,
    });
    const url = LISTENING.exec(await line)?.[1];
    const res = await fetch(`${url}/oauth/scopes`, { headers: { authorization: "Bearer x" } });
    expect(res.headers.get("ratelimit-policy")).toBe('"default";q=5;w=10');
    controller.abort();
    expect(await running).toBe(0);
  });
});

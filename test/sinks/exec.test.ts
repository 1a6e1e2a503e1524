import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecSink } from "../../src/sinks/exec-sink.js";
import { createSink } from "../../src/sinks/index.js";
import { ACCOUNT, FIXTURES, captureLogger, leaksIn, record } from "./helpers.js";

const CANARY = "canary-exec-4f1d9b2e+/";
const address = { account_id: ACCOUNT, key: "billing-web" };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cfog-exec-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A `node -e` command (argv, no shell). */
function node(script: string, ...args: string[]): string[] {
  return [process.execPath, "-e", script, ...args];
}

/** Whether a process has ended (a zombie counts: it is dead, only not yet reaped by init). */
async function gone(pid: number): Promise<boolean> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    if (stat === "" || /^\d+ \(.*\) Z/.test(stat)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

const SAVE_STDIN = `let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>require("fs").writeFileSync(process.argv[1],s))`;

describe("exec sink", () => {
  it("hands the command exactly the documented JSON on stdin, and nothing in argv", async () => {
    const out = join(dir, "stdin.json");
    const sink = new ExecSink({ command: node(SAVE_STDIN, out), timeout_seconds: 30 });
    expect(await sink.write(address, record(CANARY))).toEqual({ version: null });
    expect(JSON.parse(await readFile(out, "utf8"))).toEqual({
      account_id: ACCOUNT,
      client_id: "c".repeat(32),
      client_name: "billing-web",
      client_secret: CANARY,
      issued_at: "2026-11-26T10:00:00.000Z",
      key: "billing-web",
      action: "write",
    });
    await sink.write(address, record(CANARY), "v7");
    expect(JSON.parse(await readFile(out, "utf8"))).toMatchObject({ expected_version: "v7" });
  });

  it("runs argv without a shell: metacharacters arrive verbatim", async () => {
    const out = join(dir, "argv.json");
    const script = `require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))`;
    const sink = new ExecSink({
      command: node(script, out, "$(touch pwned)", "a b;c", "*"),
      timeout_seconds: 30,
    });
    await sink.write(address, record(CANARY));
    expect(JSON.parse(await readFile(out, "utf8"))).toEqual(["$(touch pwned)", "a b;c", "*"]);
  });

  it("fails a write on a non-zero exit, naming argv[0] and the code, with stderr scrubbed of the secret", async () => {
    const { logger, lines } = captureLogger();
    const leaky = join(FIXTURES, "leaky-fail.sh");
    const sink = new ExecSink({ command: [leaky, "--flag-not-in-message"], timeout_seconds: 30, logger });
    const error = (await sink.write(address, record(CANARY)).catch((e: unknown) => e)) as Error & {
      code: string;
      context: Record<string, unknown>;
    };
    expect(error.code).toBe("E_SINK_EXEC_FAILED");
    expect(error.message).toContain(`write command ${leaky} exited with code 3`);
    expect(error.message).not.toContain("--flag-not-in-message");
    expect(error.message).toContain("cannot store:");
    expect(error.message).toContain("[REDACTED]");
    expect(error.context).toMatchObject({ command: leaky, exit_code: 3, action: "write" });
    const shown = [
      error.message,
      JSON.stringify(error),
      inspect(error, { depth: 10 }),
      lines.join("\n"),
    ].join("\n");
    expect(leaksIn(shown, [CANARY])).toEqual([]);
  });

  it("keeps only a short excerpt of stderr", async () => {
    const sink = new ExecSink({
      command: node(`process.stderr.write("x".repeat(100000)); process.exit(1)`),
      timeout_seconds: 30,
    });
    const error = (await sink.write(address, record(CANARY)).catch((e: unknown) => e)) as Error;
    expect(error.message.length).toBeLessThan(600);
  });

  it("kills a command that runs past its timeout, with the processes it started", async () => {
    const pidFile = join(dir, "child.pid");
    // sh starts a sleep in the background, records its pid, and waits: both must die.
    const sink = new ExecSink({
      command: ["sh", "-c", 'sleep 30 >/dev/null 2>&1 & echo $! > "$1"; wait', "sh", pidFile],
      timeout_seconds: 0.5,
    });
    const error = await sink.write(address, record(CANARY)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_EXEC_TIMEOUT" });
    expect((error as Error).message).toContain("timed out after 0.5s");
    const pid = Number((await readFile(pidFile, "utf8")).trim());
    expect(await gone(pid)).toBe(true);
  });

  it("reports a command that cannot be started, in the preflight and in the write", async () => {
    const missing = join(dir, "no-such-command");
    const sink = new ExecSink({ command: [missing], read_command: ["true"], timeout_seconds: 30 });
    await expect(sink.checkWritable(address)).rejects.toMatchObject({
      code: "E_SINK_NOT_WRITABLE",
      message: expect.stringContaining(`${missing} is not an executable file`),
    });
    const error = await sink.write(address, record(CANARY)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_EXEC_FAILED" });
    expect((error as Error).message).toContain("could not be started (ENOENT)");

    const notExecutable = join(dir, "plain-file");
    await writeFile(notExecutable, "#!/bin/sh\n", { mode: 0o644 });
    if (process.getuid?.() !== 0) {
      await expect(
        new ExecSink({ command: [notExecutable], read_command: ["true"], timeout_seconds: 30 }).checkWritable(
          address,
        ),
      ).rejects.toMatchObject({
        code: "E_SINK_NOT_WRITABLE",
      });
    }
    // Found through PATH like execvp would.
    await new ExecSink({ command: ["sh"], read_command: ["true"], timeout_seconds: 30 }).checkWritable(
      address,
    );
  });

  it("uses check_command for the preflight when there is one", async () => {
    const passing = new ExecSink({
      command: ["true"],
      read_command: ["true"],
      check_command: node(SAVE_STDIN, join(dir, "check.json")),
      timeout_seconds: 30,
    });
    await passing.checkWritable(address);
    expect(JSON.parse(await readFile(join(dir, "check.json"), "utf8"))).toEqual({
      key: "billing-web",
      account_id: ACCOUNT,
      action: "check",
    });
    const failing = new ExecSink({
      command: ["true"],
      read_command: ["true"],
      check_command: node(`console.error("store locked"); process.exit(4)`),
      timeout_seconds: 30,
    });
    const error = await failing.checkWritable(address).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    expect((error as Error).message).toContain("exited with code 4: store locked");
  });

  it("reads back JSON, a bare secret, or nothing", async () => {
    const json = new ExecSink({
      command: ["true"],
      read_command: node(
        `console.log(JSON.stringify({client_secret:"s-json",client_id:"cid",account_id:"${ACCOUNT}",client_name:"n",issued_at:"t",version:"9"}))`,
      ),
      timeout_seconds: 30,
    });
    const fromJson = await json.read(address);
    expect(fromJson?.client_secret.reveal()).toBe("s-json");
    expect(fromJson).toMatchObject({ client_id: "cid", client_name: "n", issued_at: "t", version: "9" });

    const bare = new ExecSink({
      command: ["true"],
      read_command: node(`console.log("s-bare\\nmetadata: x")`),
      timeout_seconds: 30,
    });
    const fromBare = await bare.read(address);
    expect(fromBare?.client_secret.reveal()).toBe("s-bare");
    expect(fromBare).toMatchObject({ account_id: ACCOUNT, client_id: "", version: null });

    const empty = new ExecSink({ command: ["true"], read_command: ["true"], timeout_seconds: 30 });
    expect(await empty.read(address)).toBeNull();

    const none = new ExecSink({ command: ["true"], timeout_seconds: 30 });
    expect(none.readable).toBe(false);
    await expect(none.read(address)).rejects.toMatchObject({ code: "E_SINK_READ_UNSUPPORTED" });
  });

  it("scrubs what the read command printed from its stderr when it fails", async () => {
    const sink = new ExecSink({
      command: ["true"],
      read_command: node(
        `console.log(JSON.stringify({client_secret:"${CANARY}"})); console.error("oops ${CANARY}"); process.exit(1)`,
      ),
      timeout_seconds: 30,
    });
    const error = (await sink.read(address).catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: "E_SINK_READ" });
    expect(error.message).toContain("oops [REDACTED]");
    expect(leaksIn(inspect(error, { depth: 10 }), [CANARY])).toEqual([]);
  });

  it("refuses an empty argv or a zero timeout when built", () => {
    expect(() => new ExecSink({ command: [], timeout_seconds: 30 })).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG" }),
    );
    expect(() => new ExecSink({ command: ["true"], timeout_seconds: 0 })).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG" }),
    );
  });
});

/** Every stretch of `n` characters of `value` that occurs in `text` (empty when none does). */
function piecesIn(text: string, value: string, n = 8): string[] {
  const found = new Set<string>();
  for (let i = 0; i + n <= value.length; i++) {
    const piece = value.slice(i, i + n);
    if (text.includes(piece)) found.add(piece);
  }
  return [...found];
}

/** Reads the pid a test script wrote to `path` (it is written before the script goes on). */
async function pidIn(path: string): Promise<number> {
  return Number((await readFile(path, "utf8")).trim());
}

describe("exec sink: environment", () => {
  const TOKENS = {
    CLOUDFLARE_API_TOKEN: "canary-cf-api-token-61c0e9",
    VAULT_TOKEN: "canary-vault-token-3f7a21",
    WEBHOOK_SECRET: "canary-webhook-secret-9b4d55",
  };

  it("gives its commands PATH, HOME, LANG and the variables pass_env names, and nothing else", async () => {
    const dump = (name: string) =>
      node(
        `require("fs").writeFileSync(process.argv[1], JSON.stringify(process.env))`,
        join(dir, `${name}.env`),
      );
    const env = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: "/home/sink-user",
      LANG: "C.UTF-8",
      GNUPGHOME: "/srv/gnupg",
      PASSWORD_STORE_DIR: "/srv/pass",
      UNRELATED: "not-named",
      ...TOKENS,
    };
    const sink = createSink(
      "pass",
      {
        type: "exec",
        command: dump("write"),
        read_command: dump("read"),
        check_command: dump("check"),
        timeout_seconds: 30,
        pass_env: ["GNUPGHOME", "PASSWORD_STORE_DIR", "NOT_SET_ANYWHERE"],
      },
      { env },
    );
    await sink.checkWritable(address); // runs check_command, then read_command
    await sink.write(address, record(CANARY));
    for (const name of ["check", "read", "write"]) {
      const text = await readFile(join(dir, `${name}.env`), "utf8");
      expect(JSON.parse(text), name).toEqual({
        PATH: env.PATH,
        HOME: "/home/sink-user",
        LANG: "C.UTF-8",
        GNUPGHOME: "/srv/gnupg",
        PASSWORD_STORE_DIR: "/srv/pass",
      });
      for (const token of Object.values(TOKENS)) expect(text).not.toContain(token);
      expect(text).not.toContain(CANARY);
    }
  });

  it("passes only what is both named and set", async () => {
    const out = join(dir, "unnamed.env");
    const sink = new ExecSink({
      command: node(`require("fs").writeFileSync(process.argv[1], JSON.stringify(process.env))`, out),
      timeout_seconds: 30,
      pass_env: ["GNUPGHOME"],
      env: { UNRELATED: "not-named", ...TOKENS },
    });
    await sink.write(address, record(CANARY));
    expect(JSON.parse(await readFile(out, "utf8"))).toEqual({});
  });
});

describe("exec sink: what a command prints", () => {
  // Random-looking, as a real secret is: no stretch of it occurs in ordinary text.
  const SECRET = "cfs_9QmZ4vT1xK7pLw2RbN8yHc3JdF6gUe5A";
  const LEAK = `const x=JSON.parse(s).client_secret, m=x.slice(12,24);
    console.error("bad token near " + m + " (b64 " + Buffer.from(m).toString("base64") + ") starts " +
      x.slice(0,9) + " ends " + x.slice(-10) + " hex " + Buffer.from(x.slice(5,17)).toString("hex") +
      " b64 from 1: " + Buffer.from(x.slice(1,20)).toString("base64url"));`;

  it("never quotes or logs a piece of the secret of 8 characters or more from a write command's stderr", async () => {
    const { logger, lines } = captureLogger();
    const sink = new ExecSink({
      command: node(`let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{${LEAK} process.exit(5)})`),
      timeout_seconds: 30,
      logger,
    });
    const error = (await sink.write(address, record(SECRET)).catch((e: unknown) => e)) as Error & {
      code: string;
    };
    expect(error.code).toBe("E_SINK_EXEC_FAILED");
    expect(error.message).toContain("exited with code 5: bad token near [REDACTED] (b64 [REDACTED]) starts");
    const shown = [
      error.message,
      JSON.stringify(error),
      inspect(error, { depth: 10 }),
      lines.join("\n"),
    ].join("\n");
    expect(lines.length).toBeGreaterThan(0); // the failure was logged, without what the command printed
    expect(lines.join("\n")).not.toContain("bad token");
    const middle = SECRET.slice(12, 24);
    expect(piecesIn(shown, SECRET)).toEqual([]);
    expect(piecesIn(shown, Buffer.from(middle).toString("base64"))).toEqual([]);
    expect(piecesIn(shown, Buffer.from(SECRET.slice(5, 17)).toString("hex"))).toEqual([]);
    expect(piecesIn(shown, Buffer.from(SECRET.slice(1, 20)).toString("base64url"))).toEqual([]);
  });

  it("scrubs pieces of what a failing read command printed from its stderr", async () => {
    const { logger, lines } = captureLogger();
    const sink = new ExecSink({
      command: ["true"],
      read_command: node(
        `const x=${JSON.stringify(SECRET)}; console.log(JSON.stringify({client_secret:x}));` +
          `console.error("lost " + x.slice(3,15) + " " + Buffer.from(x.slice(10,30)).toString("base64")); process.exit(1)`,
      ),
      timeout_seconds: 30,
      logger,
    });
    const error = (await sink.read(address).catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: "E_SINK_READ" });
    expect(error.message).toContain("lost [REDACTED] [REDACTED]");
    const shown = [error.message, inspect(error, { depth: 10 }), lines.join("\n")].join("\n");
    expect(piecesIn(shown, SECRET)).toEqual([]);
    expect(piecesIn(shown, Buffer.from(SECRET.slice(10, 30)).toString("base64"))).toEqual([]);
  });
});

describe("exec sink: processes", () => {
  it("returns when the command exits although a process it left behind holds its pipes, and kills that process", async () => {
    const pidFile = join(dir, "left-behind.pid");
    // The background sleep inherits stdout and stderr; the script itself exits 0 at once.
    const sink = new ExecSink({
      command: ["sh", "-c", 'sleep 1000 & echo $! > "$1"; exit 0', "sh", pidFile],
      timeout_seconds: 3600,
    });
    expect(await sink.write(address, record(CANARY))).toEqual({ version: null });
    expect(await gone(await pidIn(pidFile))).toBe(true);
  });

  it("on a timeout, stops the whole group and returns even when a process that left the group holds the pipes", async () => {
    const escapedFile = join(dir, "escaped.pid");
    const memberFile = join(dir, "member.pid");
    // `setsid` puts one sleep in a session of its own, out of reach of the group kill; it keeps the
    // pipes open. The other sleep stays in the group; the script waits for it past the timeout.
    const sink = new ExecSink({
      command: [
        "sh",
        "-c",
        'setsid sleep 1000 & echo $! > "$1"; sleep 1000 & echo $! > "$2"; wait',
        "sh",
        escapedFile,
        memberFile,
      ],
      timeout_seconds: 0.5,
    });
    let escaped: number | undefined;
    try {
      const error = await sink.write(address, record(CANARY)).catch((e: unknown) => e);
      escaped = await pidIn(escapedFile);
      expect(error).toMatchObject({ code: "E_SINK_EXEC_TIMEOUT" });
      expect(await gone(await pidIn(memberFile))).toBe(true);
    } finally {
      if (escaped !== undefined) process.kill(escaped, "SIGKILL");
    }
  });

  it("sends SIGTERM first, so a command can clean up before it is stopped", async () => {
    const marker = join(dir, "cleaned-up");
    const sink = new ExecSink({
      command: ["sh", "-c", "trap 'echo done > \"$1\"; exit 1' TERM; sleep 1000 & wait", "sh", marker],
      timeout_seconds: 0.5,
    });
    const error = await sink.write(address, record(CANARY)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_EXEC_TIMEOUT" });
    expect((await readFile(marker, "utf8")).trim()).toBe("done");
  });
});

describe("exec sink: preflight", () => {
  it("refuses a sink without read_command: nothing it writes could be read back", async () => {
    const sink = new ExecSink({ command: ["true"], timeout_seconds: 30 });
    await expect(sink.checkWritable(address)).rejects.toMatchObject({
      code: "E_SINK_NOT_WRITABLE",
      message: expect.stringContaining("no read_command"),
    });
  });

  it("reads the exact key back, and refuses a read command that fails or prints what no read-back accepts", async () => {
    const seen = join(dir, "preflight-read.json");
    const ok = new ExecSink({
      command: ["true"],
      read_command: node(SAVE_STDIN, seen),
      check_command: ["true"],
      timeout_seconds: 30,
    });
    await ok.checkWritable(address);
    expect(JSON.parse(await readFile(seen, "utf8"))).toEqual({
      key: "billing-web",
      account_id: ACCOUNT,
      action: "read",
    });

    const unreadable = new ExecSink({
      command: ["true"],
      read_command: node(`console.log(JSON.stringify({secret: "not-the-protocol"}))`),
      check_command: ["true"],
      timeout_seconds: 30,
    });
    const error = (await unreadable.checkWritable(address).catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ code: "E_SINK_NOT_WRITABLE", context: { read_code: "E_SINK_CORRUPT" } });
    expect(error.message).toContain(`preflight read of ${ACCOUNT}/billing-web failed`);
    expect(error.message).not.toContain("not-the-protocol");

    const failing = new ExecSink({
      command: ["true"],
      read_command: node(`console.error("gpg: decryption failed: No secret key"); process.exit(2)`),
      timeout_seconds: 30,
    });
    await expect(failing.checkWritable(address)).rejects.toMatchObject({
      code: "E_SINK_NOT_WRITABLE",
      message: expect.stringContaining("exited with code 2: gpg: decryption failed"),
    });
  });
});

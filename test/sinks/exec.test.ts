import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecSink } from "../../src/sinks/exec.js";
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
    const sink = new ExecSink({ command: [missing], timeout_seconds: 30 });
    await expect(sink.checkWritable(address)).rejects.toMatchObject({ code: "E_SINK_NOT_WRITABLE" });
    const error = await sink.write(address, record(CANARY)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_SINK_EXEC_FAILED" });
    expect((error as Error).message).toContain("could not be started (ENOENT)");

    const notExecutable = join(dir, "plain-file");
    await writeFile(notExecutable, "#!/bin/sh\n", { mode: 0o644 });
    if (process.getuid?.() !== 0) {
      await expect(
        new ExecSink({ command: [notExecutable], timeout_seconds: 30 }).checkWritable(address),
      ).rejects.toMatchObject({
        code: "E_SINK_NOT_WRITABLE",
      });
    }
    // Found through PATH like execvp would.
    await new ExecSink({ command: ["sh"], timeout_seconds: 30 }).checkWritable(address);
  });

  it("uses check_command for the preflight when there is one", async () => {
    const passing = new ExecSink({
      command: ["true"],
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

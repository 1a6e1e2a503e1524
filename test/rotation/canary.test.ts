import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestEmulator } from "../helpers/emulator.js";
import { leaks, makeRotationWorkspace, type RotationWorkspace } from "./support.js";

/**
 * Canary: every secret issued during a whole lifecycle (create, scheduled rotation, a sink failing
 * after the mint, recovery, break-glass, finishing) appears nowhere in what the program prints: logs
 * at debug level, plans in every format, status, results and errors; raw or base64. And none is left
 * in the journal once published.
 */

const FLAKY_SINK = join(import.meta.dirname, "fixtures", "flaky-sink.mjs");
const DAY = 86_400;

describe("canary: no secret in logs, plans, status, errors or the published journal", () => {
  it("holds for a whole lifecycle at debug log level", async () => {
    const emu = await startTestEmulator();
    const store = join((await makeRotationWorkspace(emu)).dir, "store");
    const sink = [process.execPath, FLAKY_SINK, store];
    const ws = await makeRotationWorkspace(emu, {
      sinks: {
        default: { type: "file", dir: "./secrets" },
        flaky: { type: "exec", command: sink, read_command: sink, check_command: sink },
      },
    });
    await ws.writeClients(["alpha", { ...confidential("beta"), secret: { sink: "flaky" } }]);
    const output: string[] = [];
    const secrets = new Set<string>();
    const published = new Set<string>();
    const run = async (verb: string, args: string[], offset = 0) => {
      const r = await ws.run(verb, [...args, "--log-level", "debug"], { offset });
      output.push(r.stdout, r.stderr);
      for (const s of await sinkSecrets(ws, store)) {
        secrets.add(s);
        published.add(s);
      }
      for (const f of await ws.journalFiles())
        if (typeof f.json["secret"] === "string") secrets.add(f.json["secret"]);
      return r;
    };

    expect((await run("apply", [])).code).toBe(0);
    for (const format of ["text", "json", "markdown"]) await run("plan", ["--format", format], 11 * DAY);
    await run("rotate", ["--status", "--format", "json"], 11 * DAY);
    expect((await run("rotate", [], 11 * DAY)).code).toBe(0);

    await writeFile(join(store, "FAIL_WRITES"), "");
    const failing = await run("rotate", ["--now", "--client", "beta"], 13 * DAY);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toContain("E_SECRET_UNPUBLISHED");
    const unpublished = [...secrets].filter((s) => !published.has(s));
    expect(unpublished).toHaveLength(1); // the minted one waits in the journal, and only there
    await run("apply", [], 13 * DAY);
    await rm(join(store, "FAIL_WRITES"));
    await run("rotate", ["--format", "json"], 13 * DAY);
    await run("rotate", ["--compromised", "--client", "alpha"], 14 * DAY);
    await run("rotate", ["--status"], 15 * DAY);
    expect((await run("rotate", ["--finish"], 15 * DAY)).code).toBe(0);
    await run("plan", ["--format", "json"], 15 * DAY);

    // The detector itself finds a planted secret in each form.
    const probe = [...secrets][0] ?? "";
    for (const form of [
      probe,
      Buffer.from(probe).toString("base64"),
      Buffer.from(probe).toString("base64url"),
    ]) {
      expect(leaks(`log line ${form} end`, [probe])).toHaveLength(1);
    }
    expect(secrets.size).toBeGreaterThanOrEqual(6);
    expect(output.join("").length).toBeGreaterThan(10_000); // debug logs were captured
    expect(leaks(output.join("\n"), [...secrets])).toEqual([]);
    const journal = (await ws.journalFiles()).map((f) => f.text).join("\n");
    expect(leaks(journal, [...secrets])).toEqual([]);
    expect(published.size).toBe(secrets.size);
  });
});

function confidential(name: string): Record<string, unknown> {
  return {
    client_name: name,
    token_endpoint_auth_method: "client_secret_post",
    grant_types: ["authorization_code"],
    response_types: ["code"],
    redirect_uris: [`https://${name}.example.com/callback`],
    scopes: ["account-settings.read"],
  };
}

/** The secrets both sinks hold right now. */
async function sinkSecrets(ws: RotationWorkspace, store: string): Promise<string[]> {
  const out: string[] = [];
  const alpha = await ws.sinkRecord("alpha");
  if (alpha) out.push(alpha.client_secret);
  try {
    const beta = JSON.parse(await readFile(join(store, ws.accountId, "beta.json"), "utf8")) as {
      client_secret: string;
    };
    out.push(beta.client_secret);
  } catch {
    // not written yet
  }
  return out;
}

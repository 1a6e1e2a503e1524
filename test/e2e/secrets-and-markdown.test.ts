import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ACCOUNT_A, ACCOUNT_B, startTestEmulator } from "../helpers/emulator.js";
import {
  checkSecret,
  confidential,
  filesUnder,
  makeWorkspace,
  publicClient,
  type RunResult,
} from "./support.js";

/**
 * The pull-request rendering, and the canary: secrets minted through `apply` are read from the sink
 * files and must appear nowhere else, raw or base64, in any plan format, in apply's output at
 * LOG_LEVEL=debug, in a saved plan, in `export`, or in any file of the state directory.
 */

describe("plan --format markdown", () => {
  it("summary and table first, then one <details> block per account", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu, { prune: "owned" });
    await ws.writeDesired("a.yaml", ACCOUNT_A, [confidential("web"), confidential("api")]);
    await ws.writeDesired("b.yaml", ACCOUNT_B, [publicClient("cli")]);
    expect((await ws.run("apply")).code).toBe(0);
    await ws.writeDesired("a.yaml", ACCOUNT_A, [
      confidential("web", { logo_uri: "https://web.example.com/logo.png" }),
      confidential("jobs"),
    ]);
    await ws.writeDesired("b.yaml", ACCOUNT_B, [
      publicClient("cli", { policy_uri: "https://cli.example.com/p" }),
    ]);

    const result = await ws.run("plan", ["--format", "markdown", "--detailed-exitcode"]);
    expect(result.code).toBe(2);
    const md = result.stdout;
    expect(md.startsWith("## cf-oauth-gitops plan\n\n**Plan: 1 to create, 2 to update, 1 to delete.**")).toBe(
      true,
    );
    const table = md.indexOf("| Account |");
    const firstDetails = md.indexOf("<details");
    expect(table).toBeGreaterThan(0);
    expect(firstDetails).toBeGreaterThan(table);
    expect(md).toContain("| **Total** | **1** | **2** | **1** |");
    expect(md.match(/<details/g)).toHaveLength(2);
    expect(md.match(/<\/details>/g)).toHaveLength(2);
    expect(md).toContain(
      `<summary>Account <code>${ACCOUNT_A}</code>: 1 to create, 1 to update, 1 to delete</summary>`,
    );
    expect(md).toContain(
      `<summary>Account <code>${ACCOUNT_B}</code>: 0 to create, 1 to update, 0 to delete</summary>`,
    );
    // The change lines live inside the folded diff fence, not in the summary.
    expect(md.indexOf('+ create "jobs"')).toBeGreaterThan(firstDetails);
    expect(md).toMatch(/```diff\n/);
  });
});

/** Every form a secret could leak in: raw, base64, base64url. */
function forms(secret: string): string[] {
  const bytes = Buffer.from(secret, "utf8");
  return [secret, bytes.toString("base64"), bytes.toString("base64url")];
}

/** Asserts that no form of any secret appears in `text` (named `where` in the failure). */
function expectNoSecret(where: string, text: string, secrets: readonly string[]): void {
  for (const secret of secrets) {
    for (const form of forms(secret)) {
      if (text.includes(form))
        throw new Error(`${where} contains a secret (${form === secret ? "raw" : "encoded"})`);
    }
  }
}

function outputOf(result: RunResult): string {
  return `${result.stdout}\n${result.stderr}`;
}

describe("secret canary", () => {
  it("no secret in plans, apply output at debug, saved plans, export, or the state directory", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu, {
      prune: "owned",
      sinks: {
        default: { type: "file", dir: "./secrets" },
        envfiles: { type: "file", dir: "./env-secrets", format: "env" },
      },
    });
    const outputs: [string, string][] = [];
    const debug = { LOG_LEVEL: "debug" };
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("web"),
      confidential("api", { token_endpoint_auth_method: "client_secret_post" }),
      confidential("worker", { secret: { sink: "envfiles", key: "worker-creds" } }),
      publicClient("cli"),
    ]);
    const first = await ws.run("apply", [], debug);
    expect(first.code, first.stderr).toBe(0);
    // Debug logging is really on (so the check below covers the client's and sinks' debug lines).
    expect(first.stderr).toContain('"level":20');
    outputs.push(["first apply", outputOf(first)]);

    // A second round with a create, an update and a delete, in every output format.
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("web", { redirect_uris: ["https://web.example.com/v2"] }),
      confidential("worker", { secret: { sink: "envfiles", key: "worker-creds" } }),
      publicClient("cli"),
      confidential("billing"),
    ]);
    for (const format of ["text", "markdown", "json"]) {
      outputs.push([`plan ${format}`, outputOf(await ws.run("plan", ["--format", format], debug))]);
    }
    const planFile = join(ws.dir, "reviewed.json");
    expect((await ws.run("plan", ["--out", planFile])).code).toBe(0);
    const second = await ws.run("apply", ["--plan", planFile, "--format", "markdown"], debug);
    expect(second.code, second.stderr).toBe(0);
    outputs.push(["second apply", outputOf(second)]);
    for (const format of ["text", "markdown", "json"]) {
      outputs.push([`converged plan ${format}`, outputOf(await ws.run("plan", ["--format", format], debug))]);
    }
    outputs.push(["export", outputOf(await ws.run("export", ["--account", ACCOUNT_A], debug))]);

    // The secrets, as the consumers read them; each is live at the API.
    const secrets: string[] = [];
    for (const name of ["web", "api", "billing"]) {
      const record = await ws.secretRecord(ACCOUNT_A, name);
      if (name === "api") {
        // Deleted in round two (prune: owned); its file stays and its secret must not leak either.
        expect(record?.client_id).toMatch(/^[0-9a-f]{32}$/);
        secrets.push(record!.client_secret);
        continue;
      }
      expect(record, name).not.toBeNull();
      // The captured output is the real thing: it names the client, just never its secret.
      if (name === "web") expect(outputs[0]![1]).toContain(record!.client_id);
      expect(await checkSecret(emu, ACCOUNT_A, record!.client_id, record!.client_secret)).toEqual({
        valid: true,
        slot: "current",
      });
      secrets.push(record!.client_secret);
    }
    const env = await readFile(join(ws.dir, "env-secrets", ACCOUNT_A, "worker-creds.env"), "utf8");
    const envSecret = /^CLIENT_SECRET=(.+)$/m.exec(env)?.[1];
    const envId = /^CLIENT_ID=(.+)$/m.exec(env)?.[1];
    expect(envSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(await checkSecret(emu, ACCOUNT_A, envId!, envSecret!)).toEqual({ valid: true, slot: "current" });
    secrets.push(envSecret!);
    expect(new Set(secrets).size).toBe(4);

    for (const [where, text] of outputs) expectNoSecret(where, text, secrets);
    const stateFiles = await filesUnder(ws.stateDir);
    expect(stateFiles.map((f) => f.slice(ws.stateDir.length))).toContain("/inventory.json");
    for (const file of [...stateFiles, planFile, ...(await filesUnder(ws.desiredDir)), ws.config]) {
      expectNoSecret(file, await readFile(file, "utf8"), secrets);
    }
  });
});

import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { describe, expect, it } from "vitest";
import { startTestEmulator } from "../helpers/emulator.js";
import { makeRotationWorkspace, ROUTE, routeCount, stats } from "../rotation/support.js";
import { ACCOUNT_A } from "../helpers/emulator.js";
import {
  CREATE_ROUTE,
  ROOT,
  checkSecret,
  cliEnv,
  confidential,
  makeWorkspace,
  measure,
  runCli,
  type SecretFile,
} from "./support.js";

/**
 * A secret never reaches the wrong client: client names that differ only in characters a sink cannot
 * store get places of their own; names that one sink's mapping still folds together are refused by
 * `validate` (and so by `plan` and `apply`) with both locations; and the preflight before a create or
 * a rotation proves that the exact key can be written and read back, so no secret is minted for a
 * place that cannot take it.
 */

const BAD = join(ROOT, "test", "fixtures", "bad");

/** The documented hash suffix (src/sinks/naming.ts), computed here on its own. */
function sha10(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex").slice(0, 10);
}

describe("sink keys", () => {
  it("names that differ only outside [A-Za-z0-9._@-] get their own files, each with its own secret", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    const names = ["billing web", "billing_web", "請求", "管理"];
    await ws.writeDesired(
      "apps.yaml",
      ACCOUNT_A,
      names.map((name) => confidential(name)),
    );
    expect((await ws.run("validate")).code).toBe(0);
    const applied = await ws.run("apply");
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);

    const files = (await readdir(join(ws.secretsDir, ACCOUNT_A))).sort();
    expect(files).toEqual(
      [
        `billing_web~${sha10("billing web")}.json`,
        "billing_web.json",
        `__~${sha10("請求")}.json`,
        `__~${sha10("管理")}.json`,
      ].sort(),
    );
    const byName = new Map<string, SecretFile>();
    for (const file of files) {
      const record = JSON.parse(await readFile(join(ws.secretsDir, ACCOUNT_A, file), "utf8")) as SecretFile;
      byName.set(record.client_name, record);
    }
    expect([...byName.keys()].sort()).toEqual([...names].sort());
    for (const record of byName.values()) {
      expect(await checkSecret(emu, ACCOUNT_A, record.client_id, record.client_secret)).toMatchObject({
        valid: true,
      });
    }
    expect(new Set([...byName.values()].map((r) => r.client_id)).size).toBe(names.length);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
  });

  it("validate refuses keys a sink maps to one place, naming both entries", async () => {
    const result = await runCli(["validate", "-c", "secret-key-collision-kubernetes/cf-oauth-gitops.yaml"], {
      cwd: BAD,
      env: {},
    });
    expect(result.code).toBe(1);
    const file = "secret-key-collision-kubernetes/desired/clients.yaml";
    // Each refusal is located at the second entry and names the first.
    expect(result.stderr).toContain(
      `${file}:8:18: clients[1].client_name: two clients would write their secrets to one place, kubernetes Secret oauth/cf-billing-web`,
    );
    expect(result.stderr).toContain(`(the other is at ${file}:2:18)`);
    expect(result.stderr).toContain(`${file}:20:18: clients[3].client_name:`);
    expect(result.stderr).toContain(`(the other is at ${file}:14:18)`);
    expect(result.stderr).toContain("2 problems found");
  });
});

/** One age-encrypting file sink for `identity`'s recipient, reading back with ./age-key.txt. */
async function ageFileSinks(identity: string): Promise<Record<string, Record<string, unknown>>> {
  return {
    default: {
      type: "file",
      dir: "./secrets",
      age_recipients: [await identityToRecipient(identity)],
      age_identity_file: "./age-key.txt",
    },
  };
}

describe("sink preflight proves the exact key can be written and read back", () => {
  it("an age identity that cannot open the files: apply sends no create, nothing waits in the journal", async () => {
    const emu = await startTestEmulator();
    const right = await generateX25519Identity();
    const wrong = await generateX25519Identity();
    const ws = await makeWorkspace(emu, {
      sinks: await ageFileSinks(right),
    });
    await writeFile(join(ws.dir, "age-key.txt"), `${wrong}\n`);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("web")]);

    const { value: failed, delta } = await measure(emu, () => ws.run("apply"));
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("[E_SINK_NOT_WRITABLE]");
    expect(failed.stdout).toContain("read back");
    expect(delta.by_route[CREATE_ROUTE] ?? 0).toBe(0);
    expect(await readdir(join(ws.stateDir, "journal")).catch(() => [])).toEqual([]);
    expect(await readdir(join(ws.secretsDir, ACCOUNT_A))).toEqual([]);

    await writeFile(join(ws.dir, "age-key.txt"), `${right}\n`);
    const fixed = await ws.run("apply");
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    expect(await readdir(join(ws.secretsDir, ACCOUNT_A))).toEqual(["web.json.age"]);
  });

  it("an identity swapped for one that cannot open the files: rotate sends no rotate_secret", async () => {
    const emu = await startTestEmulator();
    const right = await generateX25519Identity();
    const ws = await makeRotationWorkspace(emu, {
      sinks: await ageFileSinks(right),
    });
    await writeFile(join(ws.dir, "age-key.txt"), `${right}\n`);
    await ws.writeClients(["alpha"]);
    expect((await ws.run("apply")).code).toBe(0);

    const journaled = (await ws.journalFiles()).map((f) => f.name);
    await writeFile(join(ws.dir, "age-key.txt"), `${await generateX25519Identity()}\n`);
    const rotate = await ws.run("rotate", ["--now"]);
    expect(rotate.code).toBe(1);
    expect(rotate.stdout).toContain("E_SINK_NOT_WRITABLE");
    expect(routeCount(await stats(emu), ROUTE.rotate)).toBe(0);
    // No rotation was journaled: only the finished create's entry, which holds no secret.
    const entries = await ws.journalFiles();
    expect(entries.map((f) => f.name)).toEqual(journaled);
    expect(entries.map((f) => [f.json["op"], f.json["step"], f.json["secret"]])).toEqual([
      ["create", "done", null],
    ]);
  });

  it("plan and apply refuse a client named `..` before any API call", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("..")]);
    const before = await stats(emu);
    for (const verb of ["validate", "plan", "apply"]) {
      const result = await runCli([verb, "-c", ws.config], { cwd: ws.dir, env: cliEnv(emu) });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        "desired/apps.yaml:3:18: clients[0].client_name: sink `default` cannot store",
      );
      expect(result.stderr).toContain("[E_BAD_SECRET_KEY]");
    }
    expect((await stats(emu)).total).toBe(before.total);
  });
});

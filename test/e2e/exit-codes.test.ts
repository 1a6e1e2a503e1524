import { describe, expect, it } from "vitest";
import { ACCOUNT_A, READ_TOKEN, startTestEmulator } from "../helpers/emulator.js";
import {
  CREATE_ROUTE,
  LIST_ROUTE,
  confidential,
  liveClients,
  makeWorkspace,
  measure,
  names,
  publicClient,
  runChild,
  runCli,
  type Workspace,
} from "./support.js";

/**
 * The exit codes of plan and apply (README, "CLI and exit codes"): 0 no changes (or changes without
 * --detailed-exitcode), 2 changes pending with --detailed-exitcode, 3 refused as unsafe, 1 error.
 * In-process through main(), and the same codes from the real program as a child process.
 */

const TWO_CLIENTS = [confidential("billing-web"), publicClient("acme-cli")];

/** Three owned clients, then a desired set that would delete two of them with max_deletes 1. */
async function unsafeWorkspace(emu: Awaited<ReturnType<typeof startTestEmulator>>): Promise<Workspace> {
  const ws = await makeWorkspace(emu, { prune: "owned", safety: { max_deletes: 1 } });
  await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("a"), confidential("b"), confidential("c")]);
  expect((await ws.run("apply")).code).toBe(0);
  await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("a")]);
  return ws;
}

describe("exit codes (in process)", () => {
  it("plan with no changes: 0, with and without --detailed-exitcode; one list call, nothing else", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, TWO_CLIENTS);
    expect((await ws.run("apply")).code).toBe(0);
    const { value: plain, delta } = await measure(emu, () => ws.run("plan"));
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain("No changes.");
    expect(delta).toEqual({ total: 1, by_route: { [LIST_ROUTE]: 1 }, by_method: { GET: 1 } });
    const detailed = await ws.run("plan", ["--detailed-exitcode"]);
    expect(detailed.code).toBe(0);
    expect(detailed.stdout).toContain("Plan: 0 to create, 0 to update, 0 to delete.");
  });

  it("plan with changes: 2 with --detailed-exitcode, 0 without; plan writes nothing", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, TWO_CLIENTS);
    const { value, delta } = await measure(emu, async () => ({
      plain: await ws.run("plan"),
      detailed: await ws.run("plan", ["--detailed-exitcode"]),
    }));
    expect(value.plain.code).toBe(0);
    expect(value.detailed.code).toBe(2);
    expect(value.detailed.stdout).toContain("Plan: 2 to create, 0 to update, 0 to delete.");
    expect(delta.by_method).not.toHaveProperty("POST");
    expect(delta.by_route[CREATE_ROUTE]).toBeUndefined();
    expect(await liveClients(emu, ACCOUNT_A)).toEqual([]);

    // After apply, the same plan has nothing left: 0 even with --detailed-exitcode.
    expect((await ws.run("apply")).code).toBe(0);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
  });

  it("unsafe: plan and apply exit 3 with the numbers; nothing is deleted", async () => {
    const emu = await startTestEmulator();
    const ws = await unsafeWorkspace(emu);
    const plan = await ws.run("plan");
    expect(plan.code).toBe(3);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(3);
    const { value: apply, delta } = await measure(emu, () => ws.run("apply"));
    expect(apply.code).toBe(3);
    expect(apply.stderr).toContain("[E_UNSAFE_PLAN]");
    expect(apply.stderr).toContain("2 clients would be deleted in this run; the limit is 1");
    expect(delta.by_method).toEqual({ GET: 1 });
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(["a", "b", "c"]);
  });

  it("a conflict (a pin no live client has): plan and apply exit 1; the rest is applied; the pin is untouched", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    const wrongPin = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4";
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [
      confidential("billing-web"),
      confidential("acme-cli", { client_id: wrongPin }),
    ]);
    for (const args of [[], ["--detailed-exitcode"]]) {
      const plan = await ws.run("plan", args);
      expect(plan.code).toBe(1);
      expect(plan.stdout).toContain("Plan: 1 to create, 0 to update, 0 to delete.");
      expect(plan.stdout).toContain(wrongPin);
      expect(plan.stderr).toContain("E_PLAN_CONFLICTS: 1 conflict: the desired state cannot be realised");
    }
    const { value: apply, delta } = await measure(emu, () => ws.run("apply"));
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain("E_PLAN_CONFLICTS: 1 conflict");
    expect(delta.by_route[CREATE_ROUTE]).toBe(1);
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(["billing-web"]);
    // Nothing left to do but the conflict: still 1, on every run, until the file is fixed.
    const again = await ws.run("apply");
    expect(again.code).toBe(1);
    expect(again.stdout).toContain("Nothing to apply.");
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("billing-web"), confidential("acme-cli")]);
    expect((await ws.run("apply")).code).toBe(0);
    expect((await ws.run("plan", ["--detailed-exitcode"])).code).toBe(0);
  });

  it("a token the API refuses: exit 1 with the HTTP status and code, nothing written", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, TWO_CLIENTS);
    for (const verb of ["plan", "apply"]) {
      const result = await ws.run(verb, [], { CLOUDFLARE_API_TOKEN: "not-a-real-token" });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /error \[E_API_AUTH\]: GET \/accounts\/0123456789abcdef0123456789abcdef\/oauth_clients: 403/,
      );
      expect(result.stdout).toBe("");
    }
    expect(await liveClients(emu, ACCOUNT_A)).toEqual([]);
  });

  it("a read-only token can plan but apply fails with exit 1 on the first write", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("billing-web")]);
    expect((await ws.run("plan", ["--detailed-exitcode"], { CLOUDFLARE_API_TOKEN: READ_TOKEN })).code).toBe(
      2,
    );
    const apply = await ws.run("apply", [], { CLOUDFLARE_API_TOKEN: READ_TOKEN });
    expect(apply.code).toBe(1);
    expect(apply.stdout).toMatch(
      /✗ create \[0123456789abcdef0123456789abcdef\/billing-web\]: .*403.* \[E_API_AUTH\]/,
    );
    expect(await liveClients(emu, ACCOUNT_A)).toEqual([]);
  });

  it("missing credentials: exit 1 naming the variables, before any API call", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, TWO_CLIENTS);
    const env = { CLOUDFLARE_BASE_URL: emu.url };
    const { value, delta } = await measure(emu, async () => ({
      plan: await runCli(["plan", "-c", ws.config], { cwd: ws.dir, env }),
      apply: await runCli(["apply", "-c", ws.config], { cwd: ws.dir, env }),
      half: await runCli(["apply", "-c", ws.config], {
        cwd: ws.dir,
        env: { ...env, CLOUDFLARE_EMAIL: "ops@example.com" },
      }),
    }));
    for (const result of [value.plan, value.apply]) {
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("error [E_NO_CREDENTIALS]");
      expect(result.stderr).toContain("CLOUDFLARE_API_TOKEN");
      expect(result.stderr).toContain("CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY");
    }
    expect(value.half.code).toBe(1);
    expect(value.half.stderr).toContain("CLOUDFLARE_API_KEY is not set");
    expect(delta.total).toBe(0);
  });

  it("usage errors exit 1: unknown flag, bad --format, unknown verb", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired("apps.yaml", ACCOUNT_A, []);
    const flag = await ws.run("plan", ["--detailed"]);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain("[E_USAGE]");
    const format = await ws.run("plan", ["--format", "yaml"]);
    expect(format.code).toBe(1);
    expect(format.stderr).toContain("--format must be text, markdown or json, not 'yaml'");
    const verb = await runCli(["destroy"], { cwd: ws.dir, env: {} });
    expect(verb.code).toBe(1);
    expect(verb.stderr).toContain("unknown command 'destroy'");
  });
});

describe("exit codes of the real program (child processes)", () => {
  it("0 no changes, 2 changes pending, 3 unsafe, 1 missing credentials", async () => {
    const emu = await startTestEmulator();
    const pending = await makeWorkspace(emu);
    await pending.writeDesired("apps.yaml", ACCOUNT_A, TWO_CLIENTS);
    const [two, zero] = await Promise.all([
      pending.runChild("plan", ["--detailed-exitcode"]),
      pending.runChild("plan"),
    ]);
    expect(two.code).toBe(2);
    expect(two.stdout).toContain('+ create "billing-web"');
    expect(zero.code).toBe(0);

    const unsafe = await unsafeWorkspace(emu);
    const [three, none] = await Promise.all([
      unsafe.runChild("apply"),
      runChild(["plan", "-c", pending.config], { CLOUDFLARE_BASE_URL: emu.url }),
    ]);
    expect(three.code).toBe(3);
    expect(three.stderr).toContain("2 clients would be deleted in this run; the limit is 1");
    expect(names(await liveClients(emu, ACCOUNT_A))).toEqual(["a", "b", "c"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("[E_NO_CREDENTIALS]");
  });
});

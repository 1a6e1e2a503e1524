import { writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ACCOUNT_A, startTestEmulator } from "../helpers/emulator.js";
import { confidential, createDirect, makeWorkspace } from "./support.js";

/**
 * A plan from the state directory with no inventory file (a fresh CI checkout of an account that
 * `run` manages) shows every client the daemon owns as adopted or unmanaged. It still plans, but
 * says so on stderr and in the rendered plan, and stops saying it once an inventory exists
 * (README, "Plans in CI").
 */
describe("plan without any ownership record", () => {
  it("warns (W_OWNERSHIP_UNKNOWN) when live clients would read as not owned, on stderr and in the plan", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu, { prune: "owned" });
    await createDirect(emu, ACCOUNT_A, confidential("made-by-the-daemon"));
    await createDirect(emu, ACCOUNT_A, confidential("removed-in-this-pr"));
    await ws.writeDesired("apps.yaml", ACCOUNT_A, [confidential("made-by-the-daemon")]);

    const text = await ws.run("plan");
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toContain("warning [W_OWNERSHIP_UNKNOWN]: no ownership record:");
    expect(text.stderr).toContain("2 live clients are shown as not owned");
    expect(text.stderr).toContain("configure ownership.git");
    expect(text.stdout).toContain("Warning: no ownership record");
    const markdown = await ws.run("plan", ["--format", "markdown"]);
    expect(markdown.stdout).toContain("> [!WARNING]\n> no ownership record");
    const json = await ws.run("plan", ["--format", "json"]);
    expect(() => JSON.parse(json.stdout) as unknown).not.toThrow();
    expect(json.stderr).toContain("W_OWNERSHIP_UNKNOWN");

    // With an inventory in the state directory, there is a record: nothing to warn about.
    const apply = await ws.run("apply");
    expect(apply.code, apply.stderr).toBe(0);
    const after = await ws.run("plan");
    expect(after.stderr).not.toContain("W_OWNERSHIP_UNKNOWN");
    expect(after.stdout).not.toContain("Warning:");
  });

  it("`run` refuses ownership.git without a git source (E_OWNERSHIP_NEEDS_GIT)", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await writeFile(ws.config, `desired: ./desired\nstate_dir: ./state\nownership:\n  git: {}\n`);
    const result = await ws.run("run", ["--once"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("E_OWNERSHIP_NEEDS_GIT");
  });
});

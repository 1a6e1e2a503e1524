import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Plan } from "../../src/core/plan-types.js";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { ACCOUNT_A, control, READ_TOKEN, startTestEmulator } from "../helpers/emulator.js";
import { program } from "../helpers/program.js";
import { confidential, createDirect } from "../e2e/support.js";
import {
  clientYaml,
  desiredYaml,
  GitRepo,
  liveByName,
  type LogLine,
  postWebhook,
  startDaemon,
  tempDir,
} from "./support.js";

/**
 * The plan a pull request's CI job shows is the plan the daemon makes once the pull request is merged
 * (README, "Plans in CI"). The daemon reads its plan-deciding settings from the repository's own
 * config file (`source.git.config`) and publishes its ownership inventory to a ref of the repository
 * (`ownership.git`); `plan` in a fresh clone, with only a read token and no state directory, reads
 * that ref. Real processes, real git repositories, the emulator.
 */

const REF = "refs/cf-oauth-gitops/ownership";

/** The repository's config: what CI plans with, and what the daemon takes its policy from. */
const REPO_CONFIG = [
  `account_id: ${ACCOUNT_A}`,
  "desired: ./clients",
  "prune: owned",
  "safety:",
  "  max_change_percent: 100",
  "ownership:",
  "  git: {}",
  "",
].join("\n");

/**
 * The daemon's own config (a ConfigMap's): `prune: none` and tight safety here, so a daemon that
 * planned with it instead of the repository's file would never delete anything.
 */
function daemonConfig(url: string): string {
  return [
    "desired: ./unused",
    "state_dir: ./state",
    "prune: none",
    "safety:",
    "  max_deletes: 0",
    "sinks:",
    "  default:",
    "    type: file",
    "    dir: ./secrets",
    "interval: 1h",
    "source:",
    "  git:",
    `    url: ${url}`,
    "    branch: main",
    "    config: cf-oauth-gitops.yaml",
    "    interval: 1h",
    "webhook:",
    "  secret_env: WEBHOOK_SECRET",
    "",
  ].join("\n");
}

const finishedAt = (revision: string) => (l: LogLine) =>
  l.component === "daemon" &&
  typeof l.msg === "string" &&
  l.msg.startsWith("run finished") &&
  l["revision"] === revision;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `cf-oauth-gitops plan` as a CI job runs it: a real process in the checkout, a read-only token. */
function planIn(cwd: string, emu: EmulatorHandle, args: string[]): Promise<Result> {
  const cli = program();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...cli.args, "plan", "-c", "cf-oauth-gitops.yaml", ...args],
      {
        cwd,
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: cwd,
          GIT_CONFIG_NOSYSTEM: "1",
          CLOUDFLARE_BASE_URL: emu.url,
          CLOUDFLARE_API_TOKEN: READ_TOKEN,
          NO_COLOR: "1",
          ...cli.env,
        },
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

async function apiCalls(emu: EmulatorHandle): Promise<number> {
  return (await control<{ total: number }>(emu, "GET", "stats")).total;
}

describe("a pull request's plan shows what the merge will do", () => {
  it("a fresh clone of a branch that removes an owned client plans the delete (exit 2) that the daemon then makes", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("pr-plan");
    const repo = await GitRepo.create(dir);
    const shaA = await repo.commit({
      "cf-oauth-gitops.yaml": REPO_CONFIG,
      "clients/apps.yaml": desiredYaml([clientYaml("alpha"), clientYaml("acme-cli")]),
    });
    await writeFile(join(dir, "cf-oauth-gitops.yaml"), daemonConfig(repo.url));
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    expect((await daemon.waitForLine(finishedAt(shaA)))["result"]).toBe("ok");
    await daemon.waitForLine((l) => l.msg === "ownership record published");
    const live = await liveByName(emu);
    const cliId = live.get("acme-cli")?.["client_id"] as string;
    expect(cliId).toMatch(/^[0-9a-f]{32}$/);

    // The record on the ref: ids and names, never a secret.
    const published = repo.gitBare(["cat-file", "blob", `${REF}:inventory.json`]);
    expect(JSON.parse(published)).toMatchObject({
      version: 1,
      accounts: { [ACCOUNT_A]: expect.arrayContaining([expect.objectContaining({ client_id: cliId })]) },
    });
    expect(published).not.toMatch(/secret/i);

    // A pull request removes acme-cli; CI plans from a fresh clone of its branch.
    await repo.commitOnBranch("remove-cli", { "clients/apps.yaml": desiredYaml([clientYaml("alpha")]) });
    const checkout = join(dir, "ci-checkout");
    repo.cloneTo(checkout, "remove-cli");
    expect(existsSync(join(checkout, ".cf-oauth-gitops"))).toBe(false);
    const ci = await planIn(checkout, emu, ["--detailed-exitcode", "--out", "plan.json"]);
    expect(ci.stderr).not.toContain("W_OWNERSHIP_UNKNOWN");
    expect(ci.code, ci.stderr).toBe(2);
    expect(ci.stdout).toContain("0 to create, 0 to update, 1 to delete");
    expect(ci.stdout).toContain(`delete "acme-cli" (id ${cliId}) [prune-owned]`);
    expect(ci.stdout).not.toContain("never touched");
    expect(ci.stdout).toMatch(new RegExp(`Ownership: ${REF} at [0-9a-f]{12} from `));
    // Plans only read: no state directory appears in the checkout.
    expect(existsSync(join(checkout, ".cf-oauth-gitops"))).toBe(false);
    const ciPlan = JSON.parse(await readFile(join(checkout, "plan.json"), "utf8")) as Plan;

    // The merge: the daemon makes exactly that plan (same checksum) and deletes acme-cli.
    const merged = repo.merge("remove-cli");
    expect((await postWebhook(daemon.url)).status).toBe(202);
    expect((await daemon.waitForLine(finishedAt(merged)))["result"]).toBe("ok");
    expect((await liveByName(emu)).has("acme-cli")).toBe(false);
    const status = await daemon.get<{
      last_run: { plan: { checksum: string; summary: { delete: number } } };
      ownership: { ref: string; commit: string; error: unknown };
      source: { config: string };
    }>("/status");
    expect(status.body.last_run.plan.checksum).toBe(ciPlan.checksum);
    expect(status.body.last_run.plan.summary.delete).toBe(1);
    expect(status.body.source.config).toBe("cf-oauth-gitops.yaml");

    // The ref follows: the record no longer holds acme-cli.
    await daemon.waitForLine(
      (l) =>
        l.msg === "ownership record published" && l["commit"] === repo.gitBare(["rev-parse", REF]).trim(),
    );
    expect(repo.gitBare(["cat-file", "blob", `${REF}:inventory.json`])).not.toContain(cliId);
    expect(status.body.ownership.error).toBeNull();

    // An invalid config file in a commit is an invalid run, located in the repository's file.
    const bad = await repo.commit({ "cf-oauth-gitops.yaml": `${REPO_CONFIG}prnue: all\n` }, "typo");
    expect((await postWebhook(daemon.url)).status).toBe(202);
    const invalid = await daemon.waitForLine(finishedAt(bad));
    expect(invalid["result"]).toBe("invalid");
    const after = await daemon.get<{ last_run: { error: { issues: { file: string; code: string }[] } } }>(
      "/status",
    );
    expect(after.body.last_run.error.issues[0]).toMatchObject({
      file: "cf-oauth-gitops.yaml",
      code: "E_UNKNOWN_KEY",
    });
    expect((await liveByName(emu)).has("alpha")).toBe(true);
  });

  it("a record the daemon cannot push makes the run partial (E_OWNERSHIP_PUBLISH); a later run pushes it", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("pr-plan-push");
    const repo = await GitRepo.create(dir);
    const sha = await repo.commit({
      "cf-oauth-gitops.yaml": REPO_CONFIG,
      "clients/apps.yaml": desiredYaml([clientYaml("alpha")]),
    });
    // The daemon's credentials may fetch but not push (a read-only deploy key, a protected ref).
    const hook = join(repo.bare, "hooks", "pre-receive");
    await writeFile(hook, "#!/bin/sh\necho 'refusing every push' >&2\nexit 1\n");
    await chmod(hook, 0o755);
    await writeFile(join(dir, "cf-oauth-gitops.yaml"), daemonConfig(repo.url));
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    const first = await daemon.waitForLine(finishedAt(sha));
    expect(first["result"]).toBe("partial");
    const status = await daemon.get<{
      last_run: { error: { code: string } };
      ownership: { error: { code: string; message: string } };
    }>("/status");
    expect(status.body.last_run.error.code).toBe("E_OWNERSHIP_PUBLISH");
    expect(status.body.ownership.error.message).toContain("refusing every push");
    expect(() => repo.gitBare(["rev-parse", "--verify", "--quiet", REF])).toThrow();

    await rename(hook, `${hook}.off`);
    expect((await postWebhook(daemon.url)).status).toBe(202);
    await daemon.waitForLine((l) => l.msg === "ownership record published");
    expect(repo.gitBare(["cat-file", "blob", `${REF}:inventory.json`])).toContain("alpha");
  });

  it("an ownership record that cannot be read makes plan exit 1 with E_OWNERSHIP_UNREADABLE, before any API call", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("pr-plan-unreadable");
    const repo = await GitRepo.create(dir);
    await repo.commit({
      "cf-oauth-gitops.yaml": REPO_CONFIG,
      "clients/apps.yaml": desiredYaml([clientYaml("alpha")]),
    });
    const checkout = join(dir, "ci-checkout");
    repo.cloneTo(checkout);
    const calls = await apiCalls(emu);

    // No daemon has published: the ref does not exist.
    const missing = await planIn(checkout, emu, ["--detailed-exitcode"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("E_OWNERSHIP_UNREADABLE");
    expect(missing.stderr).toContain(`cannot read the ownership record ${REF}`);
    expect(missing.stderr).toContain("the ref does not exist");
    expect(missing.stdout).toBe("");

    // A record that is not an inventory.
    repo.gitBare(["update-ref", REF, repo.gitBare(["rev-parse", "main"]).trim()]);
    const corrupt = await planIn(checkout, emu, ["--detailed-exitcode"]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toContain("E_OWNERSHIP_UNREADABLE");
    expect(corrupt.stderr).toContain("holds no inventory.json");

    // The repository cannot be reached.
    await rename(repo.bare, `${repo.bare}.gone`);
    const unreachable = await planIn(checkout, emu, ["--detailed-exitcode"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("E_OWNERSHIP_UNREADABLE");
    expect(unreachable.stdout).toBe("");
    expect(await apiCalls(emu)).toBe(calls);

    // Asked to, it plans from the state directory instead, and says what that cannot show: a live
    // client matching a desired entry would be adopted, though a daemon may own it.
    await createDirect(emu, ACCOUNT_A, confidential("alpha"));
    const state = await planIn(checkout, emu, ["--ownership", "state"]);
    expect(state.code, state.stderr).toBe(0);
    expect(state.stderr).toContain("W_OWNERSHIP_UNKNOWN");
  });
});

import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import type { Inventory } from "../../src/core/model.js";
import {
  localRunner,
  publishOwnership,
  readOwnershipForPlan,
  readPublishedOwnership,
  type GitRunner,
} from "../../src/engine/ownership-ref.js";
import { GitOpsError } from "../../src/errors.js";
import { serializeInventory } from "../../src/state/inventory.js";

/**
 * The ownership record on a git ref (engine/ownership-ref.ts) against real repositories through the
 * system git: publication is idempotent, each record's parent is the one it replaces, a ref moved by
 * someone else meanwhile is never overwritten, and `plan`'s reader names every failure without a
 * credential.
 */

const REF = "refs/cf-oauth-gitops/ownership";
const ACCOUNT = "0123456789abcdef0123456789abcdef";
const CANARY = "ghp_CANARYc4n4ry0123456789abcdefCANARY";

const GIT_ENV = {
  PATH: process.env["PATH"] ?? "",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "test",
  GIT_AUTHOR_EMAIL: "test@example.com",
  GIT_COMMITTER_NAME: "test",
  GIT_COMMITTER_EMAIL: "test@example.com",
};

let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

function git(cwd: string, args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8", env: { ...GIT_ENV, HOME: cwd } });
}

/** A bare origin and a clone of it (the daemon's working copy or a CI checkout). */
async function repository(): Promise<{ root: string; bare: string; clone: string; run: GitRunner }> {
  const root = await mkdtemp(join(tmpdir(), "cfog-ownership-"));
  dirs.push(root);
  const bare = join(root, "origin.git");
  const clone = join(root, "clone");
  git(root, ["init", "--quiet", "--bare", "--initial-branch=main", bare]);
  git(root, ["init", "--quiet", "--initial-branch=main", clone]);
  git(clone, ["remote", "add", "origin", `file://${bare}`]);
  return { root, bare, clone, run: localRunner(clone, { ...GIT_ENV, HOME: root }) };
}

function inventory(...names: string[]): Inventory {
  return {
    accounts: {
      [ACCOUNT]: names.map((name, i) => ({
        client_id: String(i).repeat(32).slice(0, 32),
        client_name: name,
        origin: "created" as const,
        since: "2026-01-02T03:04:05.000Z",
      })),
    },
  };
}

describe("publishOwnership", () => {
  it("publishes once, does nothing while unchanged, and chains each new record on the last", async () => {
    const repo = await repository();
    const scratchDir = join(repo.root, "scratch");
    const now = new Date("2026-03-04T05:06:07Z");
    expect(await readPublishedOwnership(repo.run, REF)).toBeNull();

    const first = await publishOwnership(repo.run, {
      ref: REF,
      inventory: inventory("alpha"),
      scratchDir,
      now,
      revision: "a".repeat(40),
    });
    expect(first.changed).toBe(true);
    expect(git(repo.bare, ["rev-parse", REF]).trim()).toBe(first.commit);
    expect(git(repo.bare, ["cat-file", "blob", `${REF}:inventory.json`])).toBe(
      serializeInventory(inventory("alpha")),
    );
    expect(git(repo.bare, ["ls-tree", "--name-only", REF]).trim()).toBe("inventory.json");

    const again = await publishOwnership(repo.run, {
      ref: REF,
      inventory: inventory("alpha"),
      scratchDir,
      now,
      revision: "b".repeat(40),
    });
    expect(again).toMatchObject({ commit: first.commit, changed: false });

    const second = await publishOwnership(repo.run, {
      ref: REF,
      inventory: inventory("alpha", "beta"),
      scratchDir,
      now,
      revision: "c".repeat(40),
      known: { commit: first.commit, body: first.body },
    });
    expect(second.changed).toBe(true);
    expect(git(repo.bare, ["rev-parse", `${REF}^`]).trim()).toBe(first.commit);
    git(repo.bare, ["fsck", "--strict", "--no-dangling"]);

    const read = await readPublishedOwnership(repo.run, REF);
    expect(read).toMatchObject({
      commit: second.commit,
      inventory: inventory("alpha", "beta"),
      published_at: "2026-03-04T05:06:07.000Z",
      revision: "c".repeat(40),
    });
  });

  it("never overwrites a ref that moved after it was read: the push is refused", async () => {
    const repo = await repository();
    const scratchDir = join(repo.root, "scratch");
    const base = { ref: REF, scratchDir, now: new Date(), revision: null };
    const first = await publishOwnership(repo.run, { ...base, inventory: inventory("alpha") });
    // Someone else publishes between this publisher's read and its push.
    const other = await repository();
    git(other.clone, ["remote", "set-url", "origin", `file://${repo.bare}`]);
    let competing = "";
    const racing: GitRunner = async (args, signal) => {
      if (args[0] === "push") {
        competing = (
          await publishOwnership(other.run, {
            ...base,
            scratchDir: join(other.root, "s"),
            inventory: inventory("x"),
          })
        ).commit;
      }
      return repo.run(args, signal);
    };
    const error = await publishOwnership(racing, { ...base, inventory: inventory("alpha", "beta") }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GitOpsError);
    expect((error as GitOpsError).message).toMatch(/rejected|fetch first|non-fast-forward/);
    expect(git(repo.bare, ["rev-parse", REF]).trim()).toBe(competing);
    expect(git(repo.bare, ["rev-parse", `${REF}^`]).trim()).toBe(first.commit);

    // The next attempt reads the moved ref and goes on top of it.
    const next = await publishOwnership(repo.run, { ...base, inventory: inventory("alpha", "beta") });
    expect(git(repo.bare, ["rev-parse", `${next.commit}^`]).trim()).toBe(competing);
  });
});

describe("readOwnershipForPlan", () => {
  async function configIn(dir: string, extra = ""): Promise<Awaited<ReturnType<typeof loadConfig>>> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "cf-oauth-gitops.yaml"), `desired: ./clients\nownership:\n  git: {}\n${extra}`);
    return loadConfig(join(dir, "cf-oauth-gitops.yaml"));
  }

  it("reads from ownership.git.url when the config file is in no clone", async () => {
    const repo = await repository();
    const published = await publishOwnership(repo.run, {
      ref: REF,
      inventory: inventory("alpha"),
      scratchDir: join(repo.root, "scratch"),
      now: new Date(),
      revision: null,
    });
    const config = await configIn(join(repo.root, "plain"));
    const withUrl = { ...config, ownership: { git: { ref: REF, url: `file://${repo.bare}` } } };
    const record = await readOwnershipForPlan(withUrl, REF, { ...GIT_ENV, HOME: repo.root });
    expect(record).toMatchObject({ commit: published.commit, inventory: inventory("alpha"), ref: REF });
    expect(record.where).toBe(`file://${repo.bare}`);

    const error = await readOwnershipForPlan(config, REF, { ...GIT_ENV, HOME: repo.root }).catch(
      (e: unknown) => e as GitOpsError,
    );
    expect(error).toMatchObject({ code: "E_OWNERSHIP_UNREADABLE" });
    expect((error as GitOpsError).message).toContain("not in a git clone; set ownership.git.url");
  });

  it("an unreachable URL is E_OWNERSHIP_UNREADABLE, and its credentials appear nowhere", async () => {
    const repo = await repository();
    const config = await configIn(join(repo.root, "plain"));
    const url = `http://x-access-token:${CANARY}@127.0.0.1:9/acme/clients.git`;
    const error = (await readOwnershipForPlan({ ...config, ownership: { git: { ref: REF, url } } }, REF, {
      ...GIT_ENV,
      HOME: repo.root,
    }).catch((e: unknown) => e)) as GitOpsError;
    expect(error.code).toBe("E_OWNERSHIP_UNREADABLE");
    expect(error.message).toContain("http://127.0.0.1:9/acme/clients.git");
    expect(error.message).toContain("nothing was planned");
    expect(JSON.stringify({ message: error.message, cause: String(error.cause) })).not.toContain(CANARY);
  });
});

import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_DESIRED_FILES, MAX_DESIRED_TOTAL_BYTES } from "../../src/config/load-desired.js";
import { EXCERPT_MAX_CHARS } from "../../src/config/issues.js";
import { ACCOUNT, clientYaml, configErrorOf, loadAll } from "./support.js";

/**
 * What the desired-state loader reads and what its messages may quote: links that leave the desired
 * directory are refused unread, messages carry at most a short excerpt of the line at fault, and the
 * tree as a whole is bounded. A pull request controls the desired directory; CI checkouts keep
 * credentials in `.git/config` beside it.
 */

const CANARY = "ghp_CANARYc4n4ry0123456789abcdefCANARY";
const GIT_CONFIG = `[core]
\trepositoryformatversion = 0
[remote "origin"]
\turl = https://x-access-token:${CANARY}@github.com/acme/clients
[http "https://github.com/"]
\textraheader = AUTHORIZATION: basic ${Buffer.from(`x-access-token:${CANARY}`).toString("base64")}
`;

const CONFIG = `desired: ./desired\naccount_id: ${ACCOUNT}\n`;
const VALID = `clients:\n${clientYaml("app")}`;

let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  dirs = [];
});

async function workspace(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cfog-confine-"));
  dirs.push(dir);
  await mkdir(join(dir, "repo", "desired"), { recursive: true });
  await mkdir(join(dir, "repo", ".git"), { recursive: true });
  await writeFile(join(dir, "repo", ".git", "config"), GIT_CONFIG);
  await writeFile(join(dir, "repo", "cf-oauth-gitops.yaml"), CONFIG);
  return join(dir, "repo");
}

/** Everything a caller could print of a ConfigError: its message and every issue's fields. */
function printed(error: Error & { issues?: unknown }): string {
  return `${error.message}\n${JSON.stringify(error.issues)}`;
}

function expectNoCanary(text: string): void {
  expect(text).not.toContain(CANARY);
  expect(text).not.toContain(Buffer.from(`x-access-token:${CANARY}`).toString("base64").slice(0, 24));
  expect(text).not.toContain("x-access-token");
}

describe("desired-state links", () => {
  it("refuses a link that resolves outside the desired directory, with its location, without reading it", async () => {
    const repo = await workspace();
    await writeFile(join(repo, "desired", "apps.yaml"), VALID);
    await symlink("../.git/config", join(repo, "desired", "creds.yaml"));
    const error = await configErrorOf(loadAll(repo));
    const link = error.issues.filter((issue) => issue.code === "E_LINK_OUTSIDE");
    expect(link).toEqual([
      expect.objectContaining({ file: "desired/creds.yaml", line: 1, col: 1, code: "E_LINK_OUTSIDE" }),
    ]);
    expect(error.issues).toHaveLength(1);
    expectNoCanary(printed(error));
  });

  it("refuses a link to an absolute path outside, and one through a linked directory", async () => {
    const repo = await workspace();
    const outside = await mkdtemp(join(tmpdir(), "cfog-outside-"));
    dirs.push(outside);
    await writeFile(join(outside, "stolen.yaml"), VALID);
    await symlink(join(outside, "stolen.yaml"), join(repo, "desired", "abs.yaml"));
    await symlink(outside, join(repo, "desired", "sub"));
    await writeFile(join(repo, "desired", "apps.yaml"), VALID.replace("app", "other"));
    const error = await configErrorOf(loadAll(repo));
    expect(error.issues.map((issue) => `${issue.file}:${issue.code}`)).toEqual([
      "desired/abs.yaml:E_LINK_OUTSIDE",
    ]);
  });

  it("loads links that stay inside: a ConfigMap's ..data layout and a linked desired directory", async () => {
    const repo = await workspace();
    // A Kubernetes ConfigMap volume: files are links to ..data/<name>, ..data a link to a timestamped dir.
    const stamped = join(repo, "desired", "..2026_12_02_10_00_00.000000001");
    await mkdir(stamped);
    await writeFile(join(stamped, "apps.yaml"), VALID);
    await symlink("..2026_12_02_10_00_00.000000001", join(repo, "desired", "..data"));
    await symlink("..data/apps.yaml", join(repo, "desired", "apps.yaml"));
    const { state } = await loadAll(repo);
    expect(state.files).toEqual(["desired/apps.yaml"]);

    // The desired path itself a link to a directory elsewhere: its own files are inside it.
    const elsewhere = await mkdtemp(join(tmpdir(), "cfog-linked-desired-"));
    dirs.push(elsewhere);
    await writeFile(join(elsewhere, "apps.yaml"), VALID);
    await writeFile(join(repo, "linked.yaml"), `desired: ./linked-desired\naccount_id: ${ACCOUNT}\n`);
    await symlink(elsewhere, join(repo, "linked-desired"));
    const linked = await loadAll(repo, "linked.yaml");
    expect([...linked.state.accounts.values()].flat().map((c) => c.client_name)).toEqual(["app"]);
  });
});

describe("what a message may quote", () => {
  it("never quotes a non-YAML file's content in a syntax error, beyond a short excerpt", async () => {
    const repo = await workspace();
    await writeFile(join(repo, "desired", "pasted.yaml"), GIT_CONFIG);
    const error = await configErrorOf(loadAll(repo));
    expect(error.issues.length).toBeGreaterThan(0);
    expectNoCanary(printed(error));
  });

  it("cuts a long quoted value to the excerpt bound", async () => {
    const repo = await workspace();
    const long = `https://${"a".repeat(200)}${CANARY}.example.com/cb`;
    await writeFile(
      join(repo, "desired", "apps.yaml"),
      `clients:\n${clientYaml("app")
        .replace("https://app.example.com/callback", long)
        .replace(
          "scopes: [account-settings.read]",
          `scopes: [account-settings.read]\n    colour: "${"b".repeat(300)}${CANARY}"`,
        )}`,
    );
    const error = await configErrorOf(loadAll(repo));
    expect(error.issues.length).toBeGreaterThan(0);
    for (const issue of error.issues) {
      for (const span of issue.message.match(/`[^`]*`|"[^"]*"/g) ?? []) {
        expect(span.length).toBeLessThanOrEqual(EXCERPT_MAX_CHARS + 5);
      }
    }
    expectNoCanary(printed(error));
  });
});

describe("the size of the desired tree", () => {
  it(`refuses a tree over ${MAX_DESIRED_TOTAL_BYTES / 1024 / 1024} MiB before reading it`, async () => {
    const repo = await workspace();
    const filler = `# ${"x".repeat(1024 * 1024 - 3)}\n`.repeat(9);
    const count = Math.ceil(MAX_DESIRED_TOTAL_BYTES / Buffer.byteLength(filler)) + 1;
    for (let i = 0; i < count; i++) await writeFile(join(repo, "desired", `part-${i}.yaml`), filler);
    const error = await configErrorOf(loadAll(repo));
    expect(error.issues).toEqual([
      expect.objectContaining({ file: "cf-oauth-gitops.yaml", line: 1, code: "E_DESIRED_TOO_LARGE" }),
    ]);
    expect(error.issues[0]?.message).toMatch(/MiB altogether, over the 64\.0 MiB limit/);
  });

  it(`refuses more than ${MAX_DESIRED_FILES} files`, async () => {
    const repo = await workspace();
    for (let i = 0; i <= MAX_DESIRED_FILES; i += 500) {
      const batch = Array.from({ length: Math.min(500, MAX_DESIRED_FILES + 1 - i) }, (_, k) => i + k);
      await Promise.all(batch.map((n) => writeFile(join(repo, "desired", `f-${n}.yaml`), "# empty\n")));
    }
    const error = await configErrorOf(loadAll(repo));
    expect(error.issues.map((issue) => issue.code)).toEqual(["E_DESIRED_TOO_LARGE"]);
  }, 120_000);
});

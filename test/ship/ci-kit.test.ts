import { cp, readFile, realpath, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { control, READ_TOKEN, useEmulator } from "../helpers/emulator.js";
import { ROOT } from "../helpers/program.js";
import { commitOfWorkingTree } from "./support/checkout.js";
import { removeScratch, scratch } from "./support/scratch.js";
import { startFakeGitLab, type FakeGitLab } from "./support/fake-forge.js";
import { bash, lintWorkflow, runJob, type Workflow } from "./support/workflow.js";

/**
 * The CI kit runs for real. The GitHub workflow job here (apply-on-merge.yml) is run by
 * test/ship/support/workflow.ts (conditions, env, bash with the runner's variables); the plan
 * workflow and the action it uses run in test/ship/github-action.test.ts. The GitLab job's script
 * and after_script run with bash against a fake GitLab API: the install step clones a commit of this
 * working tree (test/ship/support/checkout.ts) and builds it, `cf-oauth-gitops` then runs from that
 * install against the emulator with a READ-ONLY token; the emulator proves nothing was written. The
 * install runs once; later runs of the same job stand in for that one step only.
 */
const emulator = useEmulator();
const MARKER = "<!-- cf-oauth-gitops-plan -->";
const GOOD = "<!-- cf-oauth-gitops-plan:last-good -->";
const REPOSITORY = "acme/gitops";
const SHA1 = "1111111111111111111111111111111111111111";
const SHA2 = "2222222222222222222222222222222222222222";

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of cleanup) await close();
  await removeScratch();
});

async function workspace(): Promise<string> {
  const dir = await scratch("cfog-ci-kit-");
  await cp(join(ROOT, "config/examples"), dir, { recursive: true });
  return dir;
}

async function npmPrefix(): Promise<string> {
  return scratch("cfog-npm-prefix-");
}

/** What every step starts from: the npm prefix the install writes to on PATH, the emulator as Cloudflare. */
function baseEnv(prefix: string): Record<string, string> {
  return {
    PATH: `${prefix}/bin:${process.env["PATH"] ?? ""}`,
    HOME: process.env["HOME"] ?? "",
    TMPDIR: tmpdir(),
    npm_config_prefix: prefix,
    // The registry's tarballs are in the npm cache after `npm ci` in this checkout.
    npm_config_prefer_offline: "true",
    npm_config_update_notifier: "false",
    CLOUDFLARE_BASE_URL: emulator().url,
  };
}

async function writesTo(fn: () => Promise<void>): Promise<Record<string, number>> {
  const before = await control<{ by_method: Record<string, number> }>(emulator(), "GET", "stats");
  await fn();
  const after = await control<{ by_method: Record<string, number> }>(emulator(), "GET", "stats");
  const writes: Record<string, number> = {};
  for (const m of ["POST", "PATCH", "PUT", "DELETE"])
    writes[m] = (after.by_method[m] ?? 0) - (before.by_method[m] ?? 0);
  return writes;
}

const goodPart = (body: string) => body.slice(body.indexOf(GOOD));

// examples/github-actions/plan.yml and the action it uses (action.yml) run in test/ship/github-action.test.ts.

// --- examples/github-actions/apply-on-merge.yml -------------------------------------------------

describe("examples/github-actions/apply-on-merge.yml", () => {
  it("grants its token nothing, posts the merge commit with the bearer secret, fails when refused, and bounds curl", async () => {
    const text = await readFile(join(ROOT, "examples/github-actions/apply-on-merge.yml"), "utf8");
    expect(await lintWorkflow(text)).toEqual([]);
    const workflow = parse(text) as Workflow;
    expect(workflow.permissions).toEqual({});
    expect(workflow.jobs["notify"]?.permissions).toEqual({});
    const script = workflow.jobs["notify"]?.steps[0]?.run ?? "";
    for (const flag of ["--fail", "--connect-timeout", "--max-time"]) expect(script).toContain(flag);
    expect(Number(/--max-time (\d+)/.exec(script)?.[1])).toBeLessThanOrEqual(60);
    expect(Number(/--connect-timeout (\d+)/.exec(script)?.[1])).toBeLessThanOrEqual(30);
    const { createServer } = await import("node:http");
    const seen: { auth?: string; body: string }[] = [];
    let status = 204;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ auth: req.headers.authorization ?? "", body });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const run = () =>
      runJob(workflow, "notify", {
        workspace: tmpdir(),
        baseEnv: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "" },
        github: { event: {}, repository: REPOSITORY, ref: "refs/heads/main", sha: SHA1 },
        secrets: {
          CF_OAUTH_GITOPS_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks/git`,
          CF_OAUTH_GITOPS_WEBHOOK_SECRET: "canary-webhook-secret-0123456789",
        },
      });
    const ok = await run();
    expect(ok.failed, ok.steps[0]?.out).toBe(false);
    expect(seen).toEqual([
      {
        auth: "Bearer canary-webhook-secret-0123456789",
        body: JSON.stringify({ ref: "refs/heads/main", after: SHA1 }),
      },
    ]);
    status = 401;
    const refused = await run();
    expect(refused.failed).toBe(true);
    expect(refused.steps[0]?.out).toContain("401");
    expect(refused.steps[0]?.out).not.toContain("canary-webhook-secret");
  });
});

// --- examples/gitlab-ci/.gitlab-ci.yml ----------------------------------------------------------

interface GitLabJob {
  image: string;
  timeout: string;
  interruptible?: boolean;
  variables: Record<string, string>;
  script: string[];
  after_script: string[];
  artifacts: { when: string; paths: string[] };
}

const GITLAB_TOKEN = "glpat-fake-note-token";
const BOT = { id: 77, username: "project_42_bot" };

async function gitlabPipeline(): Promise<Record<string, GitLabJob>> {
  return parse(await readFile(join(ROOT, "examples/gitlab-ci/.gitlab-ci.yml"), "utf8")) as Record<
    string,
    GitLabJob
  >;
}

/**
 * GitLab's shell executor with bash: the job's variables (with `$NAME` references expanded), the
 * script entries in one `bash -eo pipefail` shell, then after_script in a fresh shell with
 * CI_JOB_STATUS. `installed` stands in for the install entry (the one that clones) with that prefix.
 */
async function runGitLab(options: {
  fake: FakeGitLab;
  sha: string;
  readToken?: string;
  noteToken?: string | null;
  installed?: string;
}): Promise<{
  code: number;
  out: string;
  after: { code: number; out: string };
  prefix: string;
  workspace: string;
}> {
  const job = (await gitlabPipeline())["plan"] as GitLabJob;
  const commit = await commitOfWorkingTree();
  const prefix = options.installed ?? (await npmPrefix());
  const dir = await workspace();
  const env: Record<string, string> = {
    ...baseEnv(prefix),
    CI: "true",
    GITLAB_CI: "true",
    CI_PIPELINE_SOURCE: "merge_request_event",
    CI_PROJECT_DIR: dir,
    CI_PROJECT_ID: "42",
    CI_MERGE_REQUEST_IID: "9",
    CI_COMMIT_SHA: options.sha,
    CI_JOB_URL: "https://gitlab.example/acme/gitops/-/jobs/31",
    CI_API_V4_URL: options.fake.apiUrl,
    CLOUDFLARE_API_TOKEN_READ: options.readToken ?? READ_TOKEN,
    ...(options.noteToken === null ? {} : { CF_OAUTH_GITOPS_NOTE_TOKEN: options.noteToken ?? GITLAB_TOKEN }),
  };
  // What a user does: point the install at the repository and commit to run.
  const variables = { ...job.variables, CF_OAUTH_GITOPS_GIT: commit.url, CF_OAUTH_GITOPS_COMMIT: commit.sha };
  for (const [key, value] of Object.entries(variables)) {
    env[key] = value.replace(/\$\{?(\w+)\}?/g, (_, name: string) => env[name] ?? "");
  }
  const script = job.script.map((line) => (options.installed && line.includes("git clone") ? "true" : line));
  const main = await bash(script.join("\n"), dir, env);
  const after = await bash(job.after_script.join("\n"), dir, {
    ...env,
    CI_JOB_STATUS: main.code === 0 ? "success" : "failed",
  });
  return { ...main, after, prefix, workspace: dir };
}

async function fakeGitLab(): Promise<FakeGitLab> {
  const fake = await startFakeGitLab({ token: GITLAB_TOKEN, project: "42", iid: 9, user: BOT });
  cleanup.push(() => fake.close());
  return fake;
}

let firstGitLab: Promise<{
  run: Awaited<ReturnType<typeof runGitLab>>;
  fake: FakeGitLab;
  writes: Record<string, number>;
}>;
function gitlabInstalledRun() {
  firstGitLab ??= (async () => {
    const fake = await fakeGitLab();
    fake.seed({ id: 5, username: "mallory" }, `${MARKER}\nfake plan: nothing to delete`);
    let run: Awaited<ReturnType<typeof runGitLab>> | undefined;
    const writes = await writesTo(async () => {
      run = await runGitLab({ fake, sha: SHA1 });
    });
    return { run: run as Awaited<ReturnType<typeof runGitLab>>, fake, writes };
  })();
  return firstGitLab;
}

const myNotes = (fake: FakeGitLab) => fake.notes.filter((n) => n.author.id === BOT.id);

describe("examples/gitlab-ci/.gitlab-ci.yml", () => {
  it("declares a bounded, interruptible plan job on Node 24 that keeps plan.md whatever the exit code", async () => {
    const pipeline = await gitlabPipeline();
    const job = pipeline["plan"] as GitLabJob;
    expect(job.image).toBe("node:24-bookworm");
    expect(job.timeout).toMatch(/^\d+ minutes$/);
    expect(job.interruptible).toBe(true);
    expect(job.artifacts).toMatchObject({ when: "always", paths: ["plan.md"] });
    expect(job.variables).toMatchObject({
      CF_OAUTH_GITOPS_GIT: "https://git.example.invalid/cf-oauth-gitops.git",
      CF_OAUTH_GITOPS_COMMIT: "0".repeat(40),
    });
    for (const entry of [...job.script, ...job.after_script]) {
      const syntax = await bash(entry, tmpdir(), { PATH: process.env["PATH"] ?? "" }, ["-n", "-c"]);
      expect(syntax.code, `${entry}\n${syntax.out}`).toBe(0);
    }
    const notify = pipeline["notify-daemon"] as unknown as { timeout: string; script: string[] };
    expect(notify.timeout).toMatch(/^\d+ minutes$/);
    for (const flag of ["--fail", "--connect-timeout", "--max-time"])
      expect(notify.script.join(" ")).toContain(flag);
  });

  it(
    "installs from a git commit, plans against the emulator, posts one merge-request note and writes nothing",
    { timeout: 300_000 },
    async () => {
      const { run, fake, writes } = await gitlabInstalledRun();
      expect(run.code, run.out).toBe(0);
      expect(run.out).toMatch(/^cf-oauth-gitops \d+\.\d+\.\d+$/m);
      expect(await realpath(join(run.prefix, "bin", "cf-oauth-gitops"))).toMatch(/dist\/cli\/main\.js$/);
      expect(run.out).toContain("**Plan: 4 to create, 0 to update, 0 to delete.**");
      expect(run.after.code, run.after.out).toBe(0);
      expect(run.after.out).toContain("merge-request note posted");
      const markdown = await readFile(join(run.workspace, "plan.md"), "utf8");
      expect(myNotes(fake)).toHaveLength(1);
      expect(myNotes(fake)[0]?.body).toBe(
        `${MARKER}\n${GOOD}\nPlan for \`${SHA1.slice(0, 12)}\` (exit 2):\n\n${markdown}`,
      );
      // Another user's note with the marker is not the one to update.
      expect(fake.notes[0]).toMatchObject({ body: `${MARKER}\nfake plan: nothing to delete`, updated: 0 });
      expect(fake.unexpected).toEqual([]);
      expect(writes).toEqual({ POST: 0, PATCH: 0, PUT: 0, DELETE: 0 });
    },
  );

  it(
    "a failed plan fails the job, keeps plan.md, and the note keeps the last good plan and says it failed",
    { timeout: 300_000 },
    async () => {
      const { run: first } = await gitlabInstalledRun();
      const fake = await fakeGitLab();
      for (let i = 0; i < 120; i++) fake.seed({ id: 6, username: "alice" }, `comment ${i}`);
      await runGitLab({ fake, sha: SHA1, installed: first.prefix });
      const [note] = myNotes(fake);
      const kept = goodPart(note?.body ?? "");
      expect(kept).toContain("4 to create");

      const failed = await runGitLab({
        fake,
        sha: SHA2,
        installed: first.prefix,
        readToken: "not-a-valid-token",
      });
      expect(failed.code).toBe(1);
      expect((await stat(join(failed.workspace, "plan.md"))).isFile()).toBe(true);
      expect(failed.after.out).toContain("merge-request note updated");
      expect(myNotes(fake)).toHaveLength(1);
      const body = myNotes(fake)[0]?.body ?? "";
      expect(body).toContain(`> **The plan for \`${SHA2.slice(0, 12)}\` failed** (plan exited 1;`);
      expect(body).toContain("https://gitlab.example/acme/gitops/-/jobs/31");
      expect(goodPart(body)).toBe(kept);
      // The note sat on the second page of 100 notes.
      expect(fake.requests.filter((r) => r.method === "PUT")).toEqual([
        { method: "PUT", path: `/api/v4/projects/42/merge_requests/9/notes/${note?.id}` },
      ]);
      expect(fake.unexpected).toEqual([]);
    },
  );

  it("without the note token (a fork's pipeline gets no variables) says so and calls no API", async () => {
    const { run: first } = await gitlabInstalledRun();
    const fake = await fakeGitLab();
    const run = await runGitLab({ fake, sha: SHA1, installed: first.prefix, noteToken: null });
    expect(run.code, run.out).toBe(0);
    expect(run.after.code).toBe(0);
    expect(run.after.out).toContain("CF_OAUTH_GITOPS_NOTE_TOKEN is not available to this pipeline");
    expect(fake.requests).toEqual([]);
  });
});

// --- the linter itself --------------------------------------------------------------------------

describe("the workflow lint", () => {
  it("reports unpinned actions, an action by branch, unknown step references, expressions in run: and bash syntax errors", async () => {
    const text = await readFile(join(ROOT, "examples/github-actions/plan.yml"), "utf8");
    const broken = text
      .replace(/actions\/checkout@\S+ # v7\.0\.1/, "actions/checkout@v4")
      .replace(/cf-oauth-gitops@[0-9a-f]{40}/, "cf-oauth-gitops@main")
      .replace("if: steps.origin.outputs.fork != 'true'", "if: steps.orign.outputs.fork != 'true'")
      .replace('echo "fork=true"', 'echo "fork=${{ github.head_ref }}"')
      .replace("          fi\n", "          fi fi\n")
      .replace("    timeout-minutes: 15\n", "");
    const problems = (await lintWorkflow(broken)).join("\n");
    expect(problems).toContain(
      "actions/checkout@v4, want @3d3c42e5aac5ba805825da76410c181273ba90b1 (v7.0.1)",
    );
    expect(problems).toContain("your-org/cf-oauth-gitops@main, want a full commit SHA");
    expect(problems).toContain("steps.orign is not an earlier step");
    expect(problems).toContain("expression inside run:");
    expect(problems).toMatch(/\(Skip pull requests from forks\): bash -n/);
    expect(problems).toContain("jobs.plan: timeout-minutes undefined");
    const oldNode = (
      await lintWorkflow(
        text.replace(
          "      - name: Plan\n",
          "      - uses: actions/setup-node@820762786026740c76f36085b0efc47a31fe5020 # v7.0.0\n        with:\n          node-version: 20\n      - name: Plan\n",
        ),
      )
    ).join("\n");
    expect(oldNode).toContain("node-version 20, want 24");
  });
});

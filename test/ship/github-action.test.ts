import { execFile } from "node:child_process";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { control, useEmulator } from "../helpers/emulator.js";
import { ROOT } from "../helpers/program.js";
import { commitOfWorkingTree } from "./support/checkout.js";
import { interpolate } from "./support/expressions.js";
import { startFakeGitHub, type FakeGitHub } from "./support/fake-forge.js";
import { removeScratch, scratch } from "./support/scratch.js";
import {
  ACTION_PINS,
  bash,
  lintWorkflow,
  loadWorkflow,
  runJob,
  type ActionHandler,
  type JobResult,
  type Step,
  type Workflow,
} from "./support/workflow.js";

/**
 * The GitHub Action (action.yml) runs for real: its composite steps go through the same runner as
 * the CI kit's workflows (test/ship/support/workflow.ts, with the `inputs` context), so each
 * scripts/action/*.sh runs in bash with the runner's variables. GITHUB_ACTION_PATH is a clone of a
 * commit of this working tree (test/ship/support/checkout.ts), which the install step builds; the
 * installed cf-oauth-gitops plans against the emulator, whose only token is a canary; the comment
 * step talks to a fake GitHub REST API (test/ship/support/fake-forge.ts) that requires the canary
 * github token (401 without it), keeps the comments in memory and answers 404 for an unknown id.
 * Every external command the scripts start goes through a shim that records its argv, so a token in
 * any process's command line would be seen.
 */
const run = promisify(execFile);
const CF_CANARY = "cfcanary-5f0c9e2a71d84b36a0e4";
const GH_CANARY = "ghs_canary7c1e5a90b24d6f38";
/** What plan.sh gives git for the ownership fetch: the github token in a basic auth header. */
const GIT_HEADER = Buffer.from(`x-access-token:${GH_CANARY}`).toString("base64");
const emulator = useEmulator({ readOnlyTokens: [CF_CANARY] });
const MARKER = "<!-- cf-oauth-gitops-plan -->";
const GOOD = "<!-- cf-oauth-gitops-plan:last-good -->";
const REPOSITORY = "acme/gitops";
const PR = 7;
const SHA1 = "1111111111111111111111111111111111111111";
const SHA2 = "2222222222222222222222222222222222222222";
const SHA3 = "3333333333333333333333333333333333333333";
const INSTALL = "Install cf-oauth-gitops";
const SHIMMED = [
  "curl",
  "jq",
  "git",
  "node",
  "npm",
  "cf-oauth-gitops",
  "base64",
  "mktemp",
  "head",
  "wc",
  "sed",
  "tr",
  "grep",
  "cat",
  "rm",
  "mkdir",
];

interface ActionYml {
  name: string;
  inputs: Record<string, { required?: boolean; default?: string; description: string }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: Step[] };
}

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of cleanup) await close();
  await removeScratch();
});

async function loadAction(): Promise<ActionYml> {
  return parse(await readFile(join(ROOT, "action.yml"), "utf8")) as ActionYml;
}

interface Machine {
  /** GITHUB_ACTION_PATH: what the runner checks out for `uses: <owner>/cf-oauth-gitops@<sha>`. */
  actionPath: string;
  prefix: string;
  shims: string;
  argvLog: string;
}

let machine: Promise<Machine> | undefined;
/** One clone of the action, one npm prefix and one shim directory for the whole file. */
function theMachine(): Promise<Machine> {
  machine ??= (async () => {
    const commit = await commitOfWorkingTree();
    const actionPath = join(await scratch("cfog-action-"), "cf-oauth-gitops");
    await run("git", ["clone", "--quiet", "--no-checkout", commit.url, actionPath]);
    await run("git", ["-C", actionPath, "checkout", "--quiet", "--detach", commit.sha]);
    const prefix = await scratch("cfog-npm-prefix-");
    const shims = await scratch("cfog-shims-");
    const argvLog = join(await scratch("cfog-argv-"), "argv.log");
    await writeFile(argvLog, "");
    for (const name of SHIMMED) {
      // Records the command line (NUL-separated, one record a line), then runs the real command
      // with the shims off PATH.
      const shim = join(shims, name);
      await writeFile(
        shim,
        `#!/usr/bin/env bash\nprintf '%s\\0' "\${0##*/}" "$@" >> "$ARGV_LOG"\nprintf '\\n' >> "$ARGV_LOG"\nPATH="\${PATH#"${shims}:"}" exec "\${0##*/}" "$@"\n`,
      );
      await chmod(shim, 0o755);
    }
    return { actionPath, prefix, shims, argvLog };
  })();
  return machine;
}

/** The inputs as the runner gives them to the steps: what `with:` sets, else each input's default. */
function inputsOf(action: ActionYml, given: Record<string, string>, github: Record<string, string>) {
  const inputs: Record<string, string> = {};
  for (const [name, spec] of Object.entries(action.inputs)) {
    inputs[name] =
      given[name] ?? interpolate(spec.default ?? "", { github }, { failed: false, cancelled: false });
  }
  return inputs;
}

interface ActionRun {
  fake: FakeGitHub;
  head: string;
  with?: Record<string, string>;
  githubToken?: string;
  /** Stand in for the install step (the first run of the file proved it). */
  installed?: boolean;
  workspace?: string;
}

const installed = { done: false };

async function workspaceDir(): Promise<string> {
  const dir = await scratch("cfog-action-ws-");
  await run("cp", ["-R", join(ROOT, "config/examples") + "/.", dir]);
  return dir;
}

function githubContext(fake: FakeGitHub, head: string, token: string) {
  return {
    event: { number: PR, pull_request: { number: PR, head: { sha: head, repo: { full_name: REPOSITORY } } } },
    event_name: "pull_request",
    repository: REPOSITORY,
    sha: "9999999999999999999999999999999999999999",
    ref: `refs/pull/${PR}/merge`,
    server_url: "https://github.example",
    api_url: fake.url,
    run_id: 4242,
    actor: "alice",
    token,
  };
}

async function runAction(options: ActionRun): Promise<JobResult & { workspace: string }> {
  const action = await loadAction();
  const m = await theMachine();
  const token = options.githubToken ?? GH_CANARY;
  const github = githubContext(options.fake, options.head, token);
  const inputs = inputsOf(
    action,
    { token: CF_CANARY, "base-url": emulator().url, ...options.with },
    { token },
  );
  const workspace = options.workspace ?? (await workspaceDir());
  const standIn = installed.done || options.installed;
  const result = await runJob({ jobs: { action: { steps: action.runs.steps } } } as Workflow, "action", {
    workspace,
    baseEnv: {
      PATH: `${m.shims}:${m.prefix}/bin:${process.env["PATH"] ?? ""}`,
      HOME: process.env["HOME"] ?? "",
      TMPDIR: tmpdir(),
      GITHUB_ACTION_PATH: m.actionPath,
      ARGV_LOG: m.argvLog,
      npm_config_prefix: m.prefix,
      // The registry's tarballs are in the npm cache after `npm ci` in this checkout.
      npm_config_prefer_offline: "true",
      npm_config_update_notifier: "false",
    },
    github,
    inputs,
    actions: { "actions/setup-node": async () => ({ code: 0, out: "" }) },
    standIn: (step) => (standIn && step.name === INSTALL ? "installed by the first run" : undefined),
  });
  if (!installed.done && result.step(INSTALL).outcome === "success") installed.done = true;
  return { ...result, workspace };
}

async function fakeGitHub(token = GH_CANARY): Promise<FakeGitHub> {
  const fake = await startFakeGitHub({ token, repository: REPOSITORY, issue: PR });
  cleanup.push(() => fake.close());
  return fake;
}

const mine = (fake: FakeGitHub) => fake.comments.filter((c) => c.user.login === "github-actions[bot]");
const goodPart = (body: string) => body.slice(body.indexOf(GOOD));
const log = (result: JobResult) =>
  result.steps.map((s) => `--- ${s.name}: ${s.outcome}\n${s.out}`).join("\n");

/** Everything a token could leak into: step output, outputs, the job summary, comments, argv. */
async function leaks(results: JobResult[], fakes: FakeGitHub[]): Promise<string[]> {
  const m = await theMachine();
  const places: [string, string][] = [
    ...results.flatMap((r) => r.steps.map((s): [string, string] => [`${s.name} output`, s.out])),
    ...results.flatMap((r) =>
      r.steps.map((s): [string, string] => [`${s.name} outputs`, JSON.stringify(s.outputs)]),
    ),
    ...results.map((r): [string, string] => ["job summary", r.summary]),
    ...fakes.flatMap((f) => f.comments.map((c): [string, string] => [`comment ${c.id}`, c.body])),
    ["argv", await readFile(m.argvLog, "utf8")],
  ];
  const found: string[] = [];
  for (const [where, text] of places)
    for (const canary of [CF_CANARY, GH_CANARY, GIT_HEADER]) if (text.includes(canary)) found.push(where);
  return found;
}

async function writesTo(fn: () => Promise<void>): Promise<number> {
  type Stats = { by_method: Record<string, number> };
  const count = (s: Stats) =>
    ["POST", "PATCH", "PUT", "DELETE"].reduce((n, m) => n + (s.by_method[m] ?? 0), 0);
  const before = await control<Stats>(emulator(), "GET", "stats");
  await fn();
  return count(await control<Stats>(emulator(), "GET", "stats")) - count(before);
}

describe("action.yml", () => {
  it("is a composite action with the documented inputs and outputs, each step a script of scripts/action/", async () => {
    const action = await loadAction();
    expect(action.runs.using).toBe("composite");
    expect(Object.keys(action.inputs)).toEqual([
      "config",
      "format",
      "token",
      "github-token",
      "base-url",
      "version",
    ]);
    expect(action.inputs["config"]?.default).toBe("cf-oauth-gitops.yaml");
    expect(action.inputs["format"]?.default).toBe("markdown");
    expect(action.inputs["token"]?.required).toBe(true);
    expect(action.inputs["token"]?.default).toBeUndefined();
    expect(action.inputs["github-token"]?.default).toBe("${{ github.token }}");
    expect(action.outputs["exit-code"]?.value).toBe("${{ steps.plan.outputs.exit-code }}");
    expect(action.outputs["has-changes"]?.value).toBe("${{ steps.plan.outputs.has-changes }}");
    const [setup, ...steps] = action.runs.steps;
    const pin = ACTION_PINS["actions/setup-node"];
    expect(setup?.uses).toBe(`actions/setup-node@${pin?.sha}`);
    expect(setup?.with).toEqual({ "node-version": 24 });
    expect(steps.map((s) => s.name)).toEqual([
      INSTALL,
      "Validate and plan",
      "Comment the plan on the pull request",
      "Pass or fail on the plan's exit code",
    ]);
    for (const step of steps) {
      expect((step as Step & { shell?: string }).shell).toBe("bash");
      expect(step.run).not.toContain("${{");
      const script = /^bash "\$GITHUB_ACTION_PATH\/(scripts\/action\/[\w-]+\.sh)"$/.exec(step.run ?? "")?.[1];
      expect(script, step.run).toBeDefined();
      const syntax = await bash(`bash -n ${join(ROOT, script as string)}`, tmpdir(), {
        PATH: process.env["PATH"] ?? "",
      });
      expect(syntax.code, syntax.out).toBe(0);
    }
    // The Cloudflare token reaches one step, as CLOUDFLARE_API_TOKEN, and nothing else.
    const uses = steps.flatMap((s) =>
      Object.entries(s.env ?? {})
        .filter(([, v]) => String(v).includes("inputs.token"))
        .map(([k]) => `${s.id}:${k}`),
    );
    expect(uses).toEqual(["plan:CLOUDFLARE_API_TOKEN"]);
  });
});

describe("the action, run", () => {
  it(
    "installs from its commit, posts one comment with the plan, then updates that same comment; no token leaks",
    { timeout: 300_000 },
    async () => {
      const fake = await fakeGitHub();
      // A look-alike by someone else and enough comments that the bot's own is on page two.
      const forged = fake.seed(
        "mallory",
        `${MARKER}\n${GOOD}\nPlan for \`000000000000\` (exit 0):\n\nNo changes.`,
      );
      for (let i = 0; i < 120; i++) fake.seed("alice", `comment ${i}`);
      let first: Awaited<ReturnType<typeof runAction>> | undefined;
      const writes = await writesTo(async () => {
        first = await runAction({ fake, head: SHA1 });
      });
      const one = first as Awaited<ReturnType<typeof runAction>>;
      expect(one.failed, log(one)).toBe(false);
      expect(one.step(INSTALL).out).toMatch(/^cf-oauth-gitops \d+\.\d+\.\d+$/m);
      expect(one.step("plan").outputs).toMatchObject({
        "exit-code": "2",
        "has-changes": "true",
        stage: "plan",
      });
      const planFile = one.step("plan").outputs["plan-file"] as string;
      const markdown = await readFile(planFile, "utf8");
      expect(markdown).toMatch(/4 to create/);
      expect(one.summary).toBe(markdown);
      expect(mine(fake)).toHaveLength(1);
      const comment = mine(fake)[0];
      expect(comment?.body).toBe(
        `${MARKER}\n${GOOD}\nPlan for \`${SHA1.slice(0, 12)}\` (exit 2):\n\n${markdown}`,
      );
      expect(one.step("Comment the plan on the pull request").out).toContain(
        `pull-request comment ${comment?.id} posted`,
      );
      expect(one.step("Pass or fail on the plan's exit code").out).toContain("changes pending");
      expect(writes).toBe(0);

      const two = await runAction({ fake, head: SHA2 });
      expect(two.failed, log(two)).toBe(false);
      expect(mine(fake)).toHaveLength(1);
      expect(mine(fake)[0]?.id).toBe(comment?.id);
      expect(comment?.updated).toBe(1);
      expect(
        comment?.body.startsWith(`${MARKER}\n${GOOD}\nPlan for \`${SHA2.slice(0, 12)}\` (exit 2):`),
      ).toBe(true);
      expect(forged.updated).toBe(0);
      expect(fake.comments).toHaveLength(122);
      // Second run: two pages listed, then one PATCH of the bot's comment; the first run POSTed.
      const second = fake.requests.slice(-3);
      expect(second).toEqual([
        { method: "GET", path: `/repos/${REPOSITORY}/issues/${PR}/comments` },
        { method: "GET", path: `/repos/${REPOSITORY}/issues/${PR}/comments` },
        { method: "PATCH", path: `/repos/${REPOSITORY}/issues/comments/${comment?.id}` },
      ]);
      expect(fake.requests.filter((r) => r.method === "POST")).toHaveLength(1);
      expect(fake.unexpected).toEqual([]);

      // The tokens were used (the emulator and the fake accept nothing else) and seen nowhere.
      expect(await leaks([one, two], [fake])).toEqual([]);
      const argv = await readFile((await theMachine()).argvLog, "utf8");
      expect(argv).toMatch(/^curl\0--config\0-\0/m);
      expect(argv).toMatch(/^cf-oauth-gitops\0plan\0/m);
    },
  );

  it(
    "a failed plan fails the action with a non-zero exit; the comment keeps the last good plan and says so",
    { timeout: 300_000 },
    async () => {
      const fake = await fakeGitHub();
      const good = await runAction({ fake, head: SHA1, with: { format: "text" } });
      expect(good.failed, log(good)).toBe(false);
      const [comment] = mine(fake);
      const text = await readFile(good.step("plan").outputs["plan-file"] as string, "utf8");
      expect(comment?.body).toBe(
        `${MARKER}\n${GOOD}\nPlan for \`${SHA1.slice(0, 12)}\` (exit 2):\n\n\`\`\`\n${text.trimEnd()}\n\`\`\`\n`,
      );
      const kept = goodPart(comment?.body ?? "");

      const failed = await runAction({ fake, head: SHA2, with: { token: "not-a-valid-token" } });
      expect(failed.failed).toBe(true);
      expect(failed.step("plan").outputs).toMatchObject({ "exit-code": "1", "has-changes": "false" });
      const finish = failed.step("Pass or fail on the plan's exit code");
      expect(finish.outcome).toBe("failure");
      expect(finish.code).toBe(1);
      expect(finish.out).toContain("::error title=cf-oauth-gitops failed::plan exited 1");
      expect(mine(fake)).toHaveLength(1);
      expect(mine(fake)[0]?.id).toBe(comment?.id);
      const body = mine(fake)[0]?.body ?? "";
      expect(body).toContain(`> **The plan for \`${SHA2.slice(0, 12)}\` failed** (plan exited 1;`);
      expect(body).toContain("https://github.example/acme/gitops/actions/runs/4242");
      expect(body).toContain("The plan below is the last one that succeeded, for an earlier commit");
      expect(goodPart(body)).toBe(kept);

      // A config that does not validate: the same, from validate; the plan never runs.
      const invalid = await runAction({ fake, head: SHA3, with: { config: "missing.yaml" } });
      expect(invalid.failed).toBe(true);
      expect(invalid.step("plan").outputs).toMatchObject({ "exit-code": "1", stage: "validate" });
      expect(invalid.step("Pass or fail on the plan's exit code").code).toBe(1);
      expect(mine(fake)[0]?.body).toContain(
        `The plan for \`${SHA3.slice(0, 12)}\` failed** (validate exited 1;`,
      );
      expect(goodPart(mine(fake)[0]?.body ?? "")).toBe(kept);
      expect(await leaks([good, failed, invalid], [fake])).toEqual([]);
    },
  );

  it(
    "the comments API refuses a wrong github token (401) and an unknown comment id (404): the step fails, printing no token",
    {
      timeout: 300_000,
    },
    async () => {
      const fake = await fakeGitHub();
      const wrong = "ghs_wrongcanary0d9c8b7a6";
      const refused = await runAction({ fake, head: SHA1, githubToken: wrong });
      const step = refused.step("Comment the plan on the pull request");
      expect(step.outcome).toBe("failure");
      expect(step.out).toContain("HTTP 401 Bad credentials");
      expect(refused.failed).toBe(true);
      expect(fake.comments).toEqual([]);
      expect(log(refused)).not.toContain(wrong);
      // The fake's PATCH of an id it does not hold, with the right token.
      const res = await fetch(`${fake.url}/repos/${REPOSITORY}/issues/comments/999999`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${GH_CANARY}` },
        body: JSON.stringify({ body: "x" }),
      });
      expect(res.status).toBe(404);
      const unauthenticated = await fetch(`${fake.url}/repos/${REPOSITORY}/issues/${PR}/comments`);
      expect(unauthenticated.status).toBe(401);
    },
  );
});

describe("examples/github-actions/plan.yml", () => {
  /** `uses: <owner>/cf-oauth-gitops@<sha>` in the workflow: action.yml with the step's `with:`. */
  function ownAction(fake: FakeGitHub, head: string, record: JobResult[]): ActionHandler {
    return async ({ inputs, cwd }) => {
      const result = await runAction({ fake, head, workspace: cwd, with: inputs });
      record.push(result);
      return { code: result.failed ? 1 : 0, out: log(result) };
    };
  }

  async function runWorkflow(fake: FakeGitHub, head: string, headRepo: string | null, record: JobResult[]) {
    const workflow = await loadWorkflow(join(ROOT, "examples/github-actions/plan.yml"));
    const uses = workflow.jobs["plan"]?.steps.find((s) => s.uses?.includes("/cf-oauth-gitops@"))?.uses ?? "";
    return runJob(workflow, "plan", {
      workspace: await workspaceDir(),
      baseEnv: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", TMPDIR: tmpdir() },
      github: {
        ...githubContext(fake, head, GH_CANARY),
        event: {
          number: PR,
          pull_request: {
            number: PR,
            head: { sha: head, repo: headRepo === null ? null : { full_name: headRepo } },
          },
        },
      },
      secrets: { CLOUDFLARE_API_TOKEN_READ: CF_CANARY },
      actions: {
        "actions/checkout": async () => ({ code: 0, out: "" }),
        [uses.split("@")[0] as string]: ownAction(fake, head, record),
      },
    });
  }

  it("passes the workflow lint and uses the action by full commit SHA with the read token", async () => {
    const text = await readFile(join(ROOT, "examples/github-actions/plan.yml"), "utf8");
    expect(await lintWorkflow(text)).toEqual([]);
    const workflow = parse(text) as Workflow;
    expect(workflow.permissions).toEqual({ contents: "read", "pull-requests": "write" });
    const step = workflow.jobs["plan"]?.steps.find((s) => s.id === "plan");
    expect(step?.uses).toMatch(/^[\w.-]+\/cf-oauth-gitops@[0-9a-f]{40}$/);
    expect(step?.with).toMatchObject({
      token: "${{ secrets.CLOUDFLARE_API_TOKEN_READ }}",
      "github-token": "${{ github.token }}",
    });
    const broken = text.replace(/cf-oauth-gitops@[0-9a-f]{40}/, "cf-oauth-gitops@main");
    expect((await lintWorkflow(broken)).join("\n")).toContain(
      "your-org/cf-oauth-gitops@main, want a full commit SHA",
    );
  });

  it(
    "runs the action on a pull request from this repository and skips one from a fork",
    { timeout: 300_000 },
    async () => {
      const fake = await fakeGitHub();
      const record: JobResult[] = [];
      const result = await runWorkflow(fake, SHA1, REPOSITORY, record);
      expect(result.failed, log(result)).toBe(false);
      expect(record).toHaveLength(1);
      expect(mine(fake)).toHaveLength(1);
      expect(mine(fake)[0]?.body).toContain("4 to create");
      for (const headRepo of ["eve/gitops", null]) {
        const forkFake = await fakeGitHub();
        const fork = await runWorkflow(forkFake, SHA1, headRepo, record);
        expect(fork.step("origin").out).toContain(headRepo ?? "a deleted fork");
        expect(fork.step("origin").outputs).toEqual({ fork: "true" });
        expect(fork.steps.slice(1).map((s) => s.outcome)).toEqual(["skipped", "skipped"]);
        expect(fork.failed).toBe(false);
        expect(forkFake.requests).toEqual([]);
      }
      expect(record).toHaveLength(1);
      expect(await leaks([result, ...record], [fake])).toEqual([]);
    },
  );
});

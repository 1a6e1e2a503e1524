import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import {
  evaluateCondition,
  expressionsIn,
  interpolate,
  parseExpression,
  references,
  type JobStatus,
  type Value,
} from "./expressions.js";
import { scratch } from "./scratch.js";

/**
 * A GitHub Actions job run on this machine, step by step, as the runner does it: each step's `if:`
 * is evaluated (test/ship/support/expressions.ts), `env:` is interpolated, `run:` goes to
 * `bash --noprofile --norc -eo pipefail` (GitHub's default shell on Linux) with GITHUB_OUTPUT,
 * GITHUB_STEP_SUMMARY and the usual GITHUB_* variables, and `uses:` goes to a handler the test gives
 * for that action (an action without one fails the run). And a linter for the workflows' structure.
 */

export interface Step {
  name?: string;
  id?: string;
  if?: string | boolean;
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}

export interface Job {
  "runs-on"?: string;
  "timeout-minutes"?: number;
  permissions?: Record<string, string>;
  needs?: string | string[];
  env?: Record<string, unknown>;
  steps: Step[];
}

export interface Workflow {
  name?: string;
  on?: unknown;
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress": boolean };
  env?: Record<string, unknown>;
  jobs: Record<string, Job>;
}

export interface StepResult {
  name: string;
  id?: string;
  outcome: "success" | "failure" | "skipped";
  /** Set when the test stood in for the step (see {@link RunOptions.standIn}). */
  standIn?: string;
  code?: number;
  out: string;
  outputs: Record<string, string>;
}

export interface ActionRun {
  inputs: Record<string, string>;
  env: Record<string, string>;
  cwd: string;
}

export type ActionHandler = (run: ActionRun) => Promise<{ code: number; out: string }>;

export interface RunOptions {
  workspace: string;
  /** The environment every step starts from (PATH, HOME, ...). */
  baseEnv: Record<string, string>;
  /** The `github` context; `event` is also written to GITHUB_EVENT_PATH. */
  github: Record<string, Value> & { event: Record<string, unknown>; repository: string };
  secrets?: Record<string, string>;
  /** The `inputs` context: set when the steps are a composite action's (action.yml `runs.steps`). */
  inputs?: Record<string, string>;
  /** Handlers for `uses:` steps, by action name (`actions/github-script`). */
  actions?: Record<string, ActionHandler>;
  /**
   * A step the test stands in for: when its `if:` holds, it is recorded as a success with this
   * reason instead of being run (a step already proven by an earlier run in the same file).
   */
  standIn?: (step: Step) => string | undefined;
}

export interface JobResult {
  failed: boolean;
  steps: StepResult[];
  summary: string;
  step(name: string): StepResult;
}

export async function loadWorkflow(path: string): Promise<Workflow> {
  return parse(await readFile(path, "utf8")) as Workflow;
}

export function stepName(step: Step): string {
  return step.name ?? step.uses ?? step.run?.split("\n")[0] ?? "(unnamed)";
}

function stringMap(
  map: Record<string, unknown> | undefined,
  contexts: Record<string, Value>,
  status: JobStatus,
) {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(map ?? {})) {
    out[key] = interpolate(
      String(value),
      { ...contexts, env: { ...(contexts["env"] as object), ...out } },
      status,
    );
  }
  return out;
}

async function readOutputs(path: string): Promise<Record<string, string>> {
  const outputs: Record<string, string> = {};
  const lines = (await readFile(path, "utf8")).split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2] as string, i + 1);
      outputs[heredoc[1] as string] = lines.slice(i + 1, end).join("\n");
      i = end;
    } else if (line.includes("=")) {
      outputs[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
    }
  }
  return outputs;
}

export function bash(
  script: string,
  cwd: string,
  env: Record<string, string>,
  flags: string[] = ["--noprofile", "--norc", "-eo", "pipefail", "-c"],
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile("bash", [...flags, script], { cwd, env, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, out: stdout + stderr });
    });
  });
}

export async function runJob(workflow: Workflow, jobId: string, options: RunOptions): Promise<JobResult> {
  const job = workflow.jobs[jobId];
  if (!job) throw new Error(`no job ${jobId}`);
  const temp = await scratch("cfog-runner-");
  const eventPath = join(temp, "event.json");
  await writeFile(eventPath, JSON.stringify(options.github.event));
  const summaryPath = join(temp, "step-summary");
  await writeFile(summaryPath, "");
  const runnerTemp = join(temp, "runner-temp");
  await bash(`mkdir -p "${runnerTemp}"`, temp, options.baseEnv);
  const githubEnv: Record<string, string> = {
    CI: "true",
    GITHUB_ACTIONS: "true",
    GITHUB_WORKSPACE: options.workspace,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_STEP_SUMMARY: summaryPath,
    RUNNER_TEMP: runnerTemp,
  };
  for (const [key, value] of Object.entries(options.github)) {
    // As the runner does, every scalar of the context but the token is exported as GITHUB_<NAME>.
    if (key !== "token" && (typeof value === "string" || typeof value === "number")) {
      githubEnv[`GITHUB_${key.toUpperCase()}`] = String(value);
    }
  }
  const steps: Record<string, Value> = {};
  const status: JobStatus = { failed: false, cancelled: false };
  const results: StepResult[] = [];
  for (const [index, step] of job.steps.entries()) {
    const contexts: Record<string, Value> = {
      github: options.github as Value,
      secrets: options.secrets ?? {},
      steps,
      runner: { temp: runnerTemp, os: "Linux" },
      inputs: options.inputs ?? {},
      env: {},
    };
    contexts["env"] = { ...stringMap(workflow.env, contexts, status) };
    contexts["env"] = { ...(contexts["env"] as object), ...stringMap(job.env, contexts, status) };
    const name = stepName(step);
    const record = (result: Omit<StepResult, "name" | "id">): void => {
      const full: StepResult = { name, ...(step.id ? { id: step.id } : {}), ...result };
      results.push(full);
      if (step.id)
        steps[step.id] = { outcome: full.outcome, conclusion: full.outcome, outputs: full.outputs };
      if (full.outcome === "failure") status.failed = true;
    };
    if (!evaluateCondition(step.if, contexts, status)) {
      record({ outcome: "skipped", out: "", outputs: {} });
      continue;
    }
    const env = {
      ...options.baseEnv,
      ...githubEnv,
      ...(contexts["env"] as Record<string, string>),
      ...stringMap(step.env, contexts, status),
    };
    const standIn = options.standIn?.(step);
    if (standIn !== undefined) {
      record({ outcome: "success", standIn, out: "", outputs: {} });
      continue;
    }
    const outputPath = join(temp, `output-${index}`);
    await writeFile(outputPath, "");
    env["GITHUB_OUTPUT"] = outputPath;
    let result: { code: number; out: string };
    if (step.run !== undefined) {
      if (step.run.includes("${{"))
        throw new Error(`${name}: an expression inside run: (pass it through env:)`);
      result = await bash(step.run, options.workspace, env);
    } else {
      const action = (step.uses ?? "").split("@")[0] as string;
      const handler = options.actions?.[action];
      if (!handler) throw new Error(`${name}: no handler for ${action} in this test`);
      result = await handler({ inputs: stringMap(step.with, contexts, status), env, cwd: options.workspace });
    }
    record({
      outcome: result.code === 0 ? "success" : "failure",
      code: result.code,
      out: result.out,
      outputs: await readOutputs(outputPath),
    });
  }
  return {
    failed: status.failed,
    steps: results,
    summary: await readFile(summaryPath, "utf8"),
    step(name: string): StepResult {
      const found = results.find((s) => s.name === name || s.id === name);
      if (!found) throw new Error(`no step ${name} (have: ${results.map((s) => s.name).join(", ")})`);
      return found;
    },
  };
}

/** The action pins the workflows must use: the current major of each, by full commit SHA. */
export const ACTION_PINS: Record<string, { sha: string; version: string }> = {
  "actions/checkout": { sha: "3d3c42e5aac5ba805825da76410c181273ba90b1", version: "v7.0.1" },
  "actions/setup-node": { sha: "820762786026740c76f36085b0efc47a31fe5020", version: "v7.0.0" },
  "actions/github-script": { sha: "3a2844b7e9c422d3c10d287c895573f7108da1b3", version: "v9.0.0" },
};

/** `./` (the checked-out cf-oauth-gitops repository) or `<owner>/cf-oauth-gitops`: action.yml. */
export function isOwnAction(action: string): boolean {
  return action === "./" || /^[\w.-]+\/cf-oauth-gitops$/.test(action);
}

/** The Node line the workflows and the image use (24, "Krypton", the active LTS line). */
export const NODE_LINE = 24;

const WORKFLOW_KEYS = ["name", "run-name", "on", "permissions", "env", "concurrency", "jobs", "defaults"];
const JOB_KEYS = [
  "name",
  "runs-on",
  "needs",
  "if",
  "permissions",
  "steps",
  "timeout-minutes",
  "env",
  "concurrency",
  "outputs",
  "environment",
  "defaults",
];
const STEP_KEYS = ["name", "id", "if", "run", "uses", "with", "env", "shell", "working-directory"];
const GITHUB_SCRIPT_ARGS = "{require, github, context, core, glob, io, exec, getOctokit}";

/**
 * Structural lint of a workflow file: known keys; top-level `permissions`; every job with `runs-on`,
 * a `timeout-minutes` and known `needs`; every step either `run` or `uses`, with unique ids; every
 * `uses:` pinned by full commit SHA to {@link ACTION_PINS} with its version in a comment; every
 * expression parses and every `steps.<id>` it names is an earlier step of the same job; no
 * expression inside `run:` (values reach scripts through `env:`); every `run:` passes `bash -n`;
 * every github-script `script:` compiles; `node-version` is {@link NODE_LINE}.
 */
export async function lintWorkflow(text: string): Promise<string[]> {
  const problems: string[] = [];
  const workflow = parse(text) as Workflow & Record<string, unknown>;
  const lines = text.split("\n");
  for (const key of Object.keys(workflow))
    if (!WORKFLOW_KEYS.includes(key)) problems.push(`unknown key ${key}`);
  if (workflow.permissions === undefined) problems.push("no top-level permissions");
  if (!workflow.on) problems.push("no on:");
  const checkExpressions = (where: string, text: string, earlier: Set<string>): void => {
    for (const expr of expressionsIn(text)) {
      try {
        for (const ref of references(parseExpression(expr))) {
          if (ref[0] === "steps" && !earlier.has(ref[1] ?? ""))
            problems.push(`${where}: steps.${ref[1]} is not an earlier step`);
        }
      } catch (error) {
        problems.push(`${where}: ${(error as Error).message}`);
      }
    }
  };
  if (workflow.concurrency) checkExpressions("concurrency", workflow.concurrency.group, new Set());
  const jobs = Object.entries(workflow.jobs ?? {});
  if (jobs.length === 0) problems.push("no jobs");
  for (const [jobId, job] of jobs) {
    const where = `jobs.${jobId}`;
    for (const key of Object.keys(job))
      if (!JOB_KEYS.includes(key)) problems.push(`${where}: unknown key ${key}`);
    if (!job["runs-on"]) problems.push(`${where}: no runs-on`);
    const timeout = job["timeout-minutes"];
    if (typeof timeout !== "number" || timeout <= 0 || timeout > 60)
      problems.push(`${where}: timeout-minutes ${timeout}`);
    for (const need of [job.needs ?? []].flat())
      if (!workflow.jobs[need]) problems.push(`${where}: needs unknown job ${need}`);
    if (!Array.isArray(job.steps) || job.steps.length === 0) {
      problems.push(`${where}: no steps`);
      continue;
    }
    const earlier = new Set<string>();
    for (const [index, step] of job.steps.entries()) {
      const at = `${where}.steps[${index}] (${stepName(step)})`;
      for (const key of Object.keys(step))
        if (!STEP_KEYS.includes(key)) problems.push(`${at}: unknown key ${key}`);
      if ((step.run === undefined) === (step.uses === undefined))
        problems.push(`${at}: needs exactly one of run and uses`);
      if (step.id) {
        if (earlier.has(step.id)) problems.push(`${at}: duplicate id ${step.id}`);
      }
      if (typeof step.if === "string")
        checkExpressions(`${at} if`, `\${{ ${step.if.replace(/^\s*\$\{\{|\}\}\s*$/g, "")} }}`, earlier);
      for (const value of [...Object.values(step.env ?? {}), ...Object.values(step.with ?? {})]) {
        checkExpressions(at, String(value), earlier);
      }
      if (step.run !== undefined) {
        if (step.run.includes("${{")) problems.push(`${at}: expression inside run: (use env:)`);
        const syntax = await bash(step.run, tmpdir(), { PATH: process.env["PATH"] ?? "" }, ["-n", "-c"]);
        if (syntax.code !== 0) problems.push(`${at}: bash -n: ${syntax.out.trim()}`);
      }
      if (step.uses !== undefined) {
        const [action, ref] = step.uses.split("@") as [string, string | undefined];
        const pin = ACTION_PINS[action];
        if (isOwnAction(action)) {
          // cf-oauth-gitops's own action (action.yml): the user's repository or mirror, by full SHA.
          if (action !== "./" && !/^[0-9a-f]{40}$/.test(ref ?? ""))
            problems.push(`${at}: ${action}@${ref}, want a full commit SHA`);
        } else if (!pin) problems.push(`${at}: ${action} is not an approved action`);
        else if (ref !== pin.sha) problems.push(`${at}: ${action}@${ref}, want @${pin.sha} (${pin.version})`);
        const line = lines.find((l) => l.includes(`uses: ${step.uses}`)) ?? "";
        if (pin && !line.trimEnd().endsWith(`# ${pin.version}`))
          problems.push(`${at}: no '# ${pin?.version}' after the pin`);
        if (action === "actions/setup-node" && step.with?.["node-version"] !== NODE_LINE) {
          problems.push(`${at}: node-version ${String(step.with?.["node-version"])}, want ${NODE_LINE}`);
        }
        if (action === "actions/github-script") {
          const script = String(step.with?.["script"] ?? "");
          try {
            const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
              ...a: string[]
            ) => unknown;
            new AsyncFunction(GITHUB_SCRIPT_ARGS, script);
          } catch (error) {
            problems.push(`${at}: script does not compile: ${(error as Error).message}`);
          }
        }
      }
      if (step.id) earlier.add(step.id);
    }
  }
  return problems;
}

export { GITHUB_SCRIPT_ARGS };

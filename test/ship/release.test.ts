import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, cp, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { ROOT } from "../helpers/program.js";
import { removeScratch, scratch } from "./support/scratch.js";
import { lintWorkflow, loadWorkflow, runJob, type Workflow } from "./support/workflow.js";

/**
 * The release workflow (.github/workflows/release.yml) is linted, and its steps run here as far as
 * this machine allows: there is no Docker engine and no registry, so `docker` and `gh` are stand-ins
 * on PATH that record what they are asked and answer as the real ones do (a pushed image's
 * RepoDigests); every shell line around them (version check, image name, labels, digest check, the
 * summary and release notes) runs for real. The build itself is the one scripts/container-smoke.sh
 * runs with buildah (same Dockerfile, context and base), which is asserted, not repeated. The
 * recorded digest is then deployed: the summary's `images:` entry in an overlay over
 * deploy/kubernetes renders with `kubectl kustomize` to that digest, as does the overlay
 * docs/CONTAINER.md shows.
 */

afterAll(removeScratch);

const RELEASE = join(ROOT, ".github/workflows/release.yml");
const DIGEST = `sha256:${"ab12".repeat(16)}`;
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const PLACEHOLDER = "registry.example.invalid/cf-oauth-gitops";

async function shims(): Promise<{ bin: string; log: string }> {
  const dir = await scratch("cfog-release-");
  const bin = join(dir, "bin");
  await mkdir(bin);
  const log = join(dir, "calls.jsonl");
  await writeFile(log, "");
  const docker = `#!${process.execPath}
const fs = require("fs");
const args = process.argv.slice(2);
const entry = { tool: "docker", args };
if (args[0] === "login") entry.stdin = fs.readFileSync(0, "utf8");
fs.appendFileSync(process.env.SHIM_LOG, JSON.stringify(entry) + "\\n");
if (args[0] === "build" && !fs.existsSync(args[args.indexOf("-f") + 1])) process.exit(1);
if (args[0] === "push") console.log(\`\${args[1].split(":").pop()}: digest: \${process.env.FAKE_DIGEST} size: 1570\`);
if (args[0] === "image" && args[1] === "inspect") console.log(\`\${args.at(-1).split(":")[0]}@\${process.env.FAKE_DIGEST}\`);
`;
  const gh = `#!${process.execPath}
const fs = require("fs");
const args = process.argv.slice(2);
const notes = args[args.indexOf("--notes-file") + 1];
const assets = args.slice(args.indexOf("--notes-file") + 2);
fs.appendFileSync(process.env.SHIM_LOG, JSON.stringify({
  tool: "gh", args, notes: fs.readFileSync(notes, "utf8"),
  assets: Object.fromEntries(assets.map((a) => [a, fs.readFileSync(a, "utf8")])),
  token: process.env.GH_TOKEN, repo: process.env.GH_REPO,
}) + "\\n");
`;
  await writeFile(join(bin, "docker"), docker);
  await writeFile(join(bin, "gh"), gh);
  await chmod(join(bin, "docker"), 0o755);
  await chmod(join(bin, "gh"), 0o755);
  return { bin, log };
}

interface Call {
  tool: string;
  args: string[];
  stdin?: string;
  notes?: string;
  assets?: Record<string, string>;
  token?: string;
  repo?: string;
}

async function calls(log: string): Promise<Call[]> {
  return (await readFile(log, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Call);
}

const noop = async () => ({ code: 0, out: "" });

async function release(job: "test" | "image", tag: string, digest = DIGEST) {
  const workflow = await loadWorkflow(RELEASE);
  const { bin, log } = await shims();
  const workspace = await scratch("cfog-release-ws-");
  for (const file of ["Dockerfile", ".dockerignore", "package.json"])
    await cp(join(ROOT, file), join(workspace, file));
  const result = await runJob(workflow, job, {
    workspace,
    baseEnv: {
      PATH: `${bin}:${process.env["PATH"] ?? ""}`,
      HOME: process.env["HOME"] ?? "",
      SHIM_LOG: log,
      FAKE_DIGEST: digest,
    },
    github: {
      event: {},
      event_name: "push",
      repository: "Example-Org/CF-OAuth-GitOps",
      ref: `refs/tags/${tag}`,
      ref_name: tag,
      sha: "4444444444444444444444444444444444444444",
      server_url: "https://github.example",
      actor: "release-bot",
      token: "ghs_canary-release-token",
    },
    actions: { "actions/checkout": noop, "actions/setup-node": noop },
    // `bash .ci/run` is this test suite itself.
    standIn: (step) => (step.name === "Test" ? "the test suite (this run)" : undefined),
  });
  return { result, calls: await calls(log), workspace };
}

function render(
  dir: string,
): { kind: string; spec?: { template: { spec: { containers: { image: string }[] } } } }[] {
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  return parseAllDocuments(out).map((d) => d.toJS() as never);
}

function deploymentImage(dir: string): string | undefined {
  return render(dir).find((d) => d.kind === "Deployment")?.spec?.template.spec.containers[0]?.image;
}

/** A copy of deploy/kubernetes and an overlay beside it (kustomize loads bases by relative path). */
async function overlay(kustomization: string): Promise<string> {
  const dir = await scratch("cfog-overlay-");
  await cp(join(ROOT, "deploy/kubernetes"), join(dir, "base"), { recursive: true });
  await mkdir(join(dir, "overlay"));
  await writeFile(join(dir, "overlay", "kustomization.yaml"), kustomization);
  return join(dir, "overlay");
}

describe(".github/workflows/release.yml", () => {
  it("passes the workflow lint and runs on version tags with the least permissions per job", async () => {
    const text = await readFile(RELEASE, "utf8");
    expect(await lintWorkflow(text)).toEqual([]);
    const workflow = parse(text) as Workflow & { on: { push: { tags: string[] } } };
    expect(workflow.on.push.tags).toEqual(["v*.*.*"]);
    expect(workflow.permissions).toEqual({});
    expect(workflow.jobs["test"]?.permissions).toEqual({ contents: "read" });
    expect(workflow.jobs["image"]?.permissions).toEqual({ contents: "write", packages: "write" });
    expect(workflow.jobs["image"]?.needs).toBe("test");
    expect(workflow.jobs["test"]?.steps.find((s) => s.name === "Test")?.run).toBe("bash .ci/run");
  });

  it("refuses a tag that is not package.json's version", async () => {
    const ok = await release("test", `v${VERSION}`);
    expect(ok.result.failed, ok.result.steps.map((s) => s.out).join("\n")).toBe(false);
    const wrong = await release("test", "v9.9.9");
    expect(wrong.result.failed).toBe(true);
    expect(wrong.result.step("The tag is the package version").out).toContain(
      `::error::tag v9.9.9 does not match package.json version ${VERSION}`,
    );
  });

  it("builds the Dockerfile the smoke check builds, pushes, and records the digest in the summary and the release", async () => {
    const { result, calls: seen } = await release("image", `v${VERSION}`);
    expect(result.failed, result.steps.map((s) => `${s.name}: ${s.out}`).join("\n")).toBe(false);
    const image = "ghcr.io/example-org/cf-oauth-gitops";
    const build = seen.find((c) => c.tool === "docker" && c.args[0] === "build");
    expect(build?.args.slice(-3)).toEqual(["-f", "Dockerfile", "."]);
    expect(build?.args).toContain(`${image}:${VERSION}`);
    expect(build?.args).toContain(
      "org.opencontainers.image.revision=4444444444444444444444444444444444444444",
    );
    expect(build?.args).toContain(`org.opencontainers.image.version=${VERSION}`);
    // The image's own base: no BASE override (the smoke check's only difference is its stand-in base).
    expect(build?.args.join(" ")).not.toContain("--build-arg");
    const smoke = await readFile(join(ROOT, "scripts/container-smoke.sh"), "utf8");
    const bud = /bud [^\n]*\\\n\s*(.*)>"\$build_log"/.exec(smoke)?.[1] ?? "";
    expect(bud).toBe('--build-arg BASE="$BASE_IMAGE" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" ');

    const login = seen.find((c) => c.args[0] === "login");
    expect(login?.args).toEqual(["login", "ghcr.io", "--username", "release-bot", "--password-stdin"]);
    expect(login?.stdin).toBe("ghs_canary-release-token");
    expect(seen.map((c) => `${c.tool} ${c.args[0]}`)).toEqual([
      "docker build",
      "docker login",
      "docker push",
      "docker image",
      "gh release",
    ]);
    expect(result.step("push").outputs).toEqual({ digest: DIGEST });
    const gh = seen.find((c) => c.tool === "gh");
    expect(gh?.args.slice(0, 4)).toEqual(["release", "create", `v${VERSION}`, "--verify-tag"]);
    expect(gh?.repo).toBe("Example-Org/CF-OAuth-GitOps");
    expect(gh?.assets).toEqual({ "image-digest.txt": `${image}@${DIGEST}\n` });
    expect(gh?.notes).toBe(result.summary);
    expect(result.summary).toContain(`Image: \`${image}@${DIGEST}\``);
    // The recorded entry, dropped into an overlay, deploys exactly that digest.
    const entry = /```yaml\n([\s\S]*?)```/.exec(result.summary)?.[1] ?? "";
    const dir = await overlay(`resources:\n  - ../base\n${entry}`);
    expect(deploymentImage(dir)).toBe(`${image}@${DIGEST}`);
  });

  it("fails without recording anything when the push yields no digest", async () => {
    const { result, calls: seen } = await release("image", `v${VERSION}`, "sha256:not-a-digest");
    expect(result.failed).toBe(true);
    expect(result.step("push").out).toContain("::error::no digest for ghcr.io/example-org/cf-oauth-gitops");
    expect(result.step("push").outputs).toEqual({});
    expect(seen.some((c) => c.tool === "gh")).toBe(false);
  });
});

describe("deploy/kubernetes image", () => {
  it("is an obvious placeholder that no registry serves", () => {
    expect(deploymentImage(join(ROOT, "deploy/kubernetes"))).toBe(
      `${PLACEHOLDER}:placeholder-set-the-image-by-digest-in-an-overlay`,
    );
  });

  it("is set by digest with the overlay docs/CONTAINER.md shows", async () => {
    const doc = await readFile(join(ROOT, "docs/CONTAINER.md"), "utf8");
    const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1] as string)
      .find((b) => b.includes("kind: Kustomization") && b.includes("digest:"));
    expect(block).toBeDefined();
    const text = (block ?? "")
      .replace(/resources:\n(\s+- .*\n)+/, "resources:\n  - ../base\n")
      .replace("<owner>", "example-org")
      .replace("sha256:<the digest the release recorded>", DIGEST);
    const dir = await overlay(text);
    expect(deploymentImage(dir)).toBe(`ghcr.io/example-org/cf-oauth-gitops@${DIGEST}`);
  });
});

/** `npm install`/`npx` commands in a text that name a registry package (other than this checkout's own tools). */
function registryInstalls(text: string, own: string[]): string[] {
  const offenders: string[] = [];
  for (const match of text.matchAll(/\b(?:npm\s+(?:install|i|add)|npx)\s[^\n;&|)#`]*/g)) {
    const [command, ...args] = match[0].trim().split(/\s+/);
    const operands = args.filter((a) => !a.startsWith("-") && !["install", "i", "add"].includes(a));
    const ok =
      command === "npx"
        ? own.includes(operands[0] ?? "")
        : operands.every((a) => /^["']?(\$|\.|\/|git\+|file:)/.test(a));
    if (!ok) offenders.push(match[0].trim());
  }
  return offenders;
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path)));
    else out.push(path);
  }
  return out;
}

describe("install instructions", () => {
  it("never install a package by a registry name: only a checkout, a git URL, or this checkout's own tools", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { devDependencies: object };
    const own = Object.keys(pkg.devDependencies);
    const paths = [
      "README.md",
      "Dockerfile",
      ...(await files("docs")),
      ...(await files("examples")),
      ...(await files("deploy")),
      ...(await files(".github")),
    ];
    const offenders: string[] = [];
    for (const path of paths) {
      for (const found of registryInstalls(await readFile(join(ROOT, path), "utf8"), own)) {
        offenders.push(`${path}: ${found}`);
      }
    }
    expect(offenders).toEqual([]);
    // What it reports: the instruction the examples used to give, and a fetch-and-run by name.
    expect(registryInstalls("run: npm install --global cf-oauth-gitops@0.1\n", own)).toEqual([
      "npm install --global cf-oauth-gitops@0.1",
    ]);
    expect(registryInstalls("npx cf-oauth-gitops plan\n", own)).toEqual(["npx cf-oauth-gitops plan"]);
    expect(
      registryInstalls('npm install --global --ignore-scripts "$dir"\nnpx tsx src/cli/main.ts\n', own),
    ).toEqual([]);
  });
});

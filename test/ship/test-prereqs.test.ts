import { execFile, execFileSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { ROOT } from "../helpers/program.js";

/**
 * scripts/test-prereqs.sh, the first step of `npm test`, run for real by bash with a PATH that holds
 * only the programs each case gives it (stand-ins: the script only asks whether they are there), so
 * the "missing" paths are taken without uninstalling anything. The root path's `apt-get` is a
 * stand-in too: it records its arguments and provides the programs of the packages it is asked for.
 */

const SCRIPT = join(ROOT, "scripts", "test-prereqs.sh");
const ALL = ["pass", "gpg", "age", "age-keygen", "git", "curl", "jq", "promtool", "prometheus"];
const which = (name: string) =>
  execFileSync("bash", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
const BASH = which("bash");
const CHMOD = which("chmod");

interface Bin {
  dir: string;
  /** What the stand-in apt-get was called with, one call a line. */
  aptCalls(): Promise<string[]>;
}

/** A directory holding stand-ins for `programs`, and an apt-get unless `apt` is false. */
async function bin(
  programs: string[],
  apt: "installs" | "installs-nothing" | false = "installs",
): Promise<Bin> {
  const dir = await mkdtemp(join(tmpdir(), "cf-prereqs-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const tool = async (name: string, body = "exit 0") => {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  };
  for (const name of programs) await tool(name);
  const log = join(dir, "apt-calls");
  if (apt) {
    const provide = (pkg: string, names: string[]) =>
      `    ${pkg}) for t in ${names.join(" ")}; do printf '#!/bin/sh\\n' >"${dir}/$t"; ${CHMOD} 755 "${dir}/$t"; done ;;`;
    await tool(
      "apt-get",
      [
        `echo "$*" >>"${log}"`,
        `[ "$1" = install ] || exit 0`,
        ...(apt === "installs"
          ? [
              `for arg in "$@"; do`,
              `  case "$arg" in`,
              provide("pass", ["pass"]),
              provide("gnupg", ["gpg"]),
              provide("age", ["age", "age-keygen"]),
              provide("git", ["git"]),
              provide("curl", ["curl"]),
              provide("jq", ["jq"]),
              provide("prometheus", ["prometheus", "promtool"]),
              `  esac`,
              `done`,
            ]
          : []),
      ].join("\n"),
    );
  }
  return {
    dir,
    aptCalls: async () => (await readFile(log, "utf8").catch(() => "")).split("\n").filter((l) => l !== ""),
  };
}

function prereqs(path: string, uid?: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { PATH: path };
  if (uid !== undefined) env["CF_OAUTH_GITOPS_PREREQS_UID"] = String(uid);
  return new Promise((resolve) => {
    execFile(BASH, [SCRIPT], { env }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe("scripts/test-prereqs.sh", () => {
  it("says nothing and exits 0 when every program is there", async () => {
    const b = await bin(ALL);
    expect(await prereqs(b.dir, 0)).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await b.aptCalls()).toEqual([]);
  });

  it("not root: stops at once, naming the missing programs and the packages, and installs nothing", async () => {
    const b = await bin(["pass", "gpg", "git", "curl", "jq", "promtool", "prometheus"]);
    const result = await prereqs(b.dir, 1000);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the tests need age age-keygen, not found on PATH (not running as root)");
    expect(result.stderr).toContain("install the Debian packages: apt-get install age\n");
    expect(await b.aptCalls()).toEqual([]);
  });

  it("root: runs apt-get update, then installs each missing package once, then checks again", async () => {
    const b = await bin(["git"]);
    const result = await prereqs(b.dir, 0);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(
      "installing pass gnupg age curl jq prometheus (for pass gpg age age-keygen curl jq promtool prometheus)",
    );
    expect(await b.aptCalls()).toEqual([
      "update -qq",
      "install -y -qq --no-install-recommends pass gnupg age curl jq prometheus",
    ]);
    // Now everything is there: nothing more to do.
    expect(await prereqs(b.dir, 0)).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await b.aptCalls()).toHaveLength(2);
  });

  it("root: exits 1 when the packages installed do not provide the programs", async () => {
    const b = await bin(["pass", "gpg", "git", "curl", "jq", "promtool", "prometheus"], "installs-nothing");
    const result = await prereqs(b.dir, 0);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("still not found after installing: age age-keygen");
  });

  it("root without apt-get: stops, naming the packages", async () => {
    const b = await bin(["pass", "gpg", "age", "age-keygen", "curl", "jq", "promtool", "prometheus"], false);
    const result = await prereqs(b.dir, 0);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the tests need git, not found on PATH (apt-get not found)");
    expect(result.stderr).toContain("apt-get install git\n");
  });
});

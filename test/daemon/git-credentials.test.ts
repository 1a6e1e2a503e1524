import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmod, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { displayGitUrl, sshCommand } from "../../src/engine/git-source.js";
import { startTestEmulator } from "../helpers/emulator.js";
import { serveGitOverHttp } from "../reliability/daemon-support.js";
import {
  clientYaml,
  desiredYaml,
  GitRepo,
  liveByName,
  type LogLine,
  postWebhook,
  startDaemon,
  tempDir,
  WEBHOOK_SECRET,
  writeConfig,
} from "./support.js";

/**
 * Git credentials come from the environment or a file (https token) or from a key and known hosts
 * (ssh), never from the config (a ConfigMap). They reach git through its environment only: a `git`
 * on PATH that records its argv and environment shows what every local user could see with `ps`
 * (argv) and what git was handed (env). The host is real: serveGitOverHttp refuses requests without
 * the token, and for ssh a stand-in `ssh` on PATH (no sshd here) checks what a real one would and
 * runs the remote `git-upload-pack` locally, so git's own ssh transport carries the fetch.
 */

const runFinished = (revision: string) => (l: LogLine) =>
  l.component === "daemon" &&
  typeof l.msg === "string" &&
  l.msg.startsWith("run finished") &&
  l["revision"] === revision;

/** A directory with a recording `git` wrapper; returns the PATH to use and how to read the records. */
async function recordingGit(dir: string): Promise<{ path: string; records: () => Promise<string> }> {
  const bin = join(dir, "bin");
  await mkdir(bin, { recursive: true });
  const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
  const log = join(dir, "git-calls.log");
  await writeFile(
    join(bin, "git"),
    [
      "#!/bin/sh",
      `{ printf 'ARGV'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'; env | sed 's/^/ENV /'; } >> '${log}'`,
      `exec '${realGit}' "$@"`,
      "",
    ].join("\n"),
  );
  await chmod(join(bin, "git"), 0o755);
  return {
    path: `${bin}:${process.env["PATH"] ?? ""}`,
    records: () => readFile(log, "utf8").catch(() => ""),
  };
}

function gitBlock(url: string, extra: string[]): string {
  return [
    "interval: 1h",
    "source:",
    "  git:",
    `    url: ${url}`,
    "    branch: main",
    "    path: clients",
    "    interval: 1h",
    ...extra.map((l) => `    ${l}`),
    "webhook:",
    "  secret_env: WEBHOOK_SECRET",
  ].join("\n");
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe("git credentials (real process, real git)", () => {
  it("fetches with a token from an environment variable; the token is in no argv, log, answer or state file, and git gets no other secret", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("git-token-env");
    const repo = await GitRepo.create(dir);
    const token = `ghs_${randomUUID().replace(/-/g, "")}`;
    const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
    const http = await serveGitOverHttp(repo.bare, "x-access-token", token);
    onTestFinished(() => http.close());
    const sha = await repo.commit({ "clients/a.yaml": desiredYaml([clientYaml("alpha")]) });
    const url = displayGitUrl(http.url);
    expect(url).not.toContain(token);
    await writeConfig(dir, gitBlock(url, ["token_env: GIT_TOKEN"]));
    const git = await recordingGit(dir);
    const daemon = await startDaemon({
      cwd: dir,
      emulator: emu,
      env: { GIT_TOKEN: token, PATH: git.path, LOG_LEVEL: "trace" },
    });
    expect((await daemon.waitForLine(runFinished(sha), 30_000))["result"]).toBe("ok");
    expect((await liveByName(emu)).has("alpha")).toBe(true);
    expect(http.authorized).toBeGreaterThan(0);

    const answers = await Promise.all(
      ["/status", "/metrics", "/readyz"].map(async (p) => (await daemon.get(p)).text),
    );
    expect(await daemon.stop()).toBe(0);
    for (const text of [daemon.output(), ...answers]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(basic);
    }
    for (const path of await filesUnder(join(dir, "state"))) {
      const text = await readFile(path, "latin1");
      expect(text.includes(token) || text.includes(basic), path).toBe(false);
    }
    const records = await git.records();
    const argv = records.split("\n").filter((l) => l.startsWith("ARGV "));
    const env = records.split("\n").filter((l) => l.startsWith("ENV "));
    expect(argv.some((l) => l.includes(" fetch "))).toBe(true);
    for (const line of argv) {
      expect(line).not.toContain(token);
      expect(line).not.toContain(basic);
    }
    // The token goes as a header through git's environment config, for this URL only.
    expect(env).toContain(`ENV GIT_CONFIG_KEY_0=http.${url}.extraHeader`);
    expect(env).toContain(`ENV GIT_CONFIG_VALUE_0=Authorization: Basic ${basic}`);
    // Nothing else of the daemon's environment: not the variable itself, not its other secrets.
    for (const name of ["GIT_TOKEN", "CLOUDFLARE_API_TOKEN", "WEBHOOK_SECRET", "LOG_LEVEL"]) {
      expect(env.filter((l) => l.startsWith(`ENV ${name}=`))).toEqual([]);
    }
    expect(records).not.toContain(WEBHOOK_SECRET);
  });

  it("reads a token file before each command: a wrong token fails the run without showing it, the rotated file then works", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("git-token-file");
    const repo = await GitRepo.create(dir);
    const token = `glpat-${randomUUID().replace(/-/g, "")}`;
    const wrong = `glpat-${randomUUID().replace(/-/g, "")}`;
    const http = await serveGitOverHttp(repo.bare, "oauth2", token);
    onTestFinished(() => http.close());
    const sha = await repo.commit({ "clients/a.yaml": desiredYaml([clientYaml("alpha")]) });
    await writeFile(join(dir, "git-token"), `${wrong}\n`, { mode: 0o600 });
    await writeConfig(
      dir,
      gitBlock(displayGitUrl(http.url), ["token_file: ./git-token", "username: oauth2"]),
    );
    const daemon = await startDaemon({ cwd: dir, emulator: emu, env: { LOG_LEVEL: "trace" } });
    const failed = await daemon.waitForLine(
      (l) => l.component === "daemon" && l.msg === "run finished: error",
      30_000,
    );
    expect(failed["error"]).toMatchObject({ code: "E_GIT" });
    const status = await daemon.get<{ run_health: { healthy: boolean } }>("/status");
    expect(status.body.run_health.healthy).toBe(false);
    expect(http.authorized).toBe(0);

    // The Secret behind the file is rotated (kubelet rewrites the file): the next run uses it.
    await writeFile(join(dir, "git-token"), `${token}\n`);
    expect((await postWebhook(daemon.url)).status).toBe(202);
    expect((await daemon.waitForLine(runFinished(sha), 30_000))["result"]).toBe("ok");
    expect(http.authorized).toBeGreaterThan(0);
    expect((await liveByName(emu)).has("alpha")).toBe(true);
    const statusText = (await daemon.get("/status")).text;
    expect(await daemon.stop()).toBe(0);
    for (const secret of [token, wrong]) {
      expect(daemon.output()).not.toContain(secret);
      expect(statusText).not.toContain(secret);
    }
  });

  it("fetches over ssh with only the given key and known hosts, copying a group-readable key to a private file", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("git-ssh");
    const repo = await GitRepo.create(dir);
    const sha = await repo.commit({ "clients/a.yaml": desiredYaml([clientYaml("alpha")]) });
    // As a Secret volume with fsGroup mounts it: root-or-owner, group-readable (0440 in a pod).
    await writeFile(join(dir, "deploy-key"), "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n", {
      mode: 0o640,
    });
    await chmod(join(dir, "deploy-key"), 0o640);
    await writeFile(join(dir, "known_hosts"), "git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey\n");
    const bin = join(dir, "bin");
    await mkdir(bin);
    const sshLog = join(dir, "ssh-calls.log");
    // What OpenSSH would refuse, this refuses: a key others can read, a missing or unchecked known hosts.
    await writeFile(
      join(bin, "ssh"),
      [
        "#!/bin/sh",
        `printf '%s\\n' "$*" >> '${sshLog}'`,
        'key=""; kh=""; strict=""; for last; do :; done',
        'while [ $# -gt 1 ]; do case "$1" in',
        '  -i) key="$2"; shift;;',
        '  -o) case "$2" in UserKnownHostsFile=*) kh="${2#UserKnownHostsFile=}";; StrictHostKeyChecking=yes) strict=1;; esac; shift;;',
        "esac; shift; done",
        '[ -n "$key" ] && [ "$(stat -c %a "$key")" = 600 ] || { echo "UNPROTECTED PRIVATE KEY FILE: $key" >&2; exit 255; }',
        '[ -s "$kh" ] && [ -n "$strict" ] || { echo "Host key verification failed." >&2; exit 255; }',
        'exec sh -c "$last"',
        "",
      ].join("\n"),
    );
    await chmod(join(bin, "ssh"), 0o755);
    await writeConfig(
      dir,
      gitBlock(`ssh://git@git.example${repo.bare}`, [
        "ssh_key_file: ./deploy-key",
        "known_hosts_file: ./known_hosts",
      ]),
    );
    const daemon = await startDaemon({
      cwd: dir,
      emulator: emu,
      env: { PATH: `${bin}:${process.env["PATH"] ?? ""}` },
    });
    expect((await daemon.waitForLine(runFinished(sha), 30_000))["result"]).toBe("ok");
    expect((await liveByName(emu)).has("alpha")).toBe(true);
    const calls = (await readFile(sshLog, "utf8")).trim().split("\n");
    expect(calls.length).toBeGreaterThan(0);
    const keyCopy = /-i '?([^' ]+)'? /.exec(calls[0] ?? "")?.[1] ?? "";
    expect(keyCopy).not.toBe(join(dir, "deploy-key"));
    expect(await readFile(keyCopy, "utf8")).toContain("not-a-real-key");
    for (const call of calls) {
      expect(call).toContain(`-o UserKnownHostsFile=${join(dir, "known_hosts")}`);
      expect(call).toContain("-o StrictHostKeyChecking=yes");
      expect(call).toContain("-o IdentitiesOnly=yes");
      expect(call).toContain("-o BatchMode=yes");
      expect(call).toContain("git@git.example");
    }
    expect(await daemon.stop()).toBe(0);
    // The private copy goes with the process.
    expect(existsSync(keyCopy)).toBe(false);
  });

  it("builds an ssh command that OpenSSH itself reads as: this key only, these host keys only, strict, no prompt", async () => {
    const dir = await tempDir("ssh-command");
    // Quotes and spaces survive the shell git runs the command with.
    const key = join(dir, "it's a key");
    const knownHosts = join(dir, "known hosts");
    await writeFile(key, "k", { mode: 0o600 });
    await writeFile(knownHosts, "git.example ssh-ed25519 AAAA\n");
    const command = sshCommand(knownHosts, key);
    // `ssh -G` prints the configuration ssh would use, without connecting.
    const effective = execFileSync("sh", ["-c", `${command} -G git@git.example`], {
      encoding: "utf8",
      env: { PATH: process.env["PATH"] ?? "", HOME: "/nonexistent" },
    });
    const settings = new Map<string, string[]>();
    for (const line of effective.split("\n")) {
      const [name, ...rest] = line.split(" ");
      if (name) settings.set(name, [...(settings.get(name) ?? []), rest.join(" ")]);
    }
    expect(settings.get("identityfile")).toEqual([key]);
    expect(settings.get("identitiesonly")).toEqual(["yes"]);
    expect(settings.get("userknownhostsfile")).toEqual([knownHosts]);
    expect(settings.get("globalknownhostsfile")).toEqual(["/dev/null"]);
    expect(settings.get("stricthostkeychecking")).toEqual(["true"]);
    expect(settings.get("batchmode")).toEqual(["yes"]);
    expect(settings.get("updatehostkeys")).toEqual(["false"]);
    expect(settings.get("hostname")).toEqual(["git.example"]);
  });

  it("refuses to start without the credentials it is configured with, naming what is missing", async () => {
    const emu = await startTestEmulator();
    const cases: { extra: string[]; url: string; code: string; message: string }[] = [
      {
        url: "https://git.example/acme/oauth-clients.git",
        extra: ["token_env: GIT_TOKEN_NOT_SET"],
        code: "E_GIT_CREDENTIALS",
        message: "environment variable GIT_TOKEN_NOT_SET is empty or not set",
      },
      {
        url: "https://git.example/acme/oauth-clients.git",
        extra: ["token_file: ./no-such-token"],
        code: "E_GIT_CREDENTIALS",
        message: "source.git.token_file: cannot read",
      },
      {
        url: "git@git.example:acme/oauth-clients.git",
        extra: ["ssh_key_file: ./key", "known_hosts_file: ./no-such-known-hosts"],
        code: "E_GIT_CREDENTIALS",
        message: "source.git.known_hosts_file: cannot read",
      },
      {
        url: "git@git.example:acme/oauth-clients.git",
        extra: ["ssh_key_file: ./key", "known_hosts_file: ./empty-known-hosts"],
        code: "E_GIT_KNOWN_HOSTS",
        message: "is empty: no host would be trusted",
      },
    ];
    for (const c of cases) {
      const dir = await tempDir("git-creds-missing");
      await writeFile(join(dir, "key"), "k", { mode: 0o600 });
      await writeFile(join(dir, "empty-known-hosts"), "");
      await writeConfig(dir, gitBlock(c.url, c.extra));
      const daemon = await startDaemon({ cwd: dir, emulator: emu, listening: false });
      expect(await daemon.exited, c.message).not.toBe(0);
      expect(daemon.output()).toContain(c.message);
      expect(daemon.output()).toContain(c.code);
      expect(daemon.lines.some((l) => l.msg === "listening")).toBe(false);
    }
  });
});

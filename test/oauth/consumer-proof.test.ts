import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as oidc from "openid-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { stringify } from "yaml";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { eventually, runFinished, startDaemon } from "../daemon/support.js";
import { cliEnv, ROOT, type RunResult } from "../e2e/support.js";
import { KillProxy } from "../helpers/crash-harness.js";
import { Consumer, windowAfterDeletion, secretEvents } from "../helpers/consumer.js";
import { startTestEmulator } from "../helpers/emulator.js";
import { program } from "../helpers/program.js";
import { KubernetesFake } from "../helpers/kubernetes-fake.js";
import { ROOT_POLICY, VaultFake } from "../helpers/vault-fake.js";
import { dumpClients, runProgram } from "../reliability/support.js";
import { makeRotationWorkspace, type RotationWorkspace } from "../rotation/support.js";
import { clientAuth, REDIRECT_URI } from "./support.js";

/**
 * The proof that no consumer is locked out by a rotation, measured with a real OAuth client library:
 * two copies of examples/consumer/consumer.mjs (openid-client, real processes) log in once and then
 * run refresh-token grants in a loop against the emulator's token endpoint, one reading its
 * credentials from the sink before every exchange, the other only at start and on SIGHUP (a replica
 * whose copy lags, so it uses the old secret through each grace period), while the reconciler (real
 * processes, clocks moved ahead with test/helpers/program.ts `clockOffset`) runs a scheduled rotation
 * and its deletion after the grace, `rotate --now` and `rotate --finish`, and the daemon's rotation
 * schedule. The figure is the consumers' failed exchanges, and it must be 0. Then
 * `rotate --compromised`: the old secret must stop at once (checked with openid-client, and seen by
 * the lagging consumer). Last, a rotation SIGKILLed between Cloudflare's answer and the journal
 * (its new secret lost): no consumer fails until the operator's `rotate --recover`, which deletes
 * the old secret on purpose. For both deletions the fresh consumer's window, from the moment the
 * emulator deleted the old secret (`GET /__emulator/secret-events`) to its first success with the
 * new one, and its failed exchanges in it are printed, not asserted (wall time is the machine's,
 * not the product's). docs/BENCHMARKS.md records the figures.
 */

const PASS_SINK = join(ROOT, "examples", "sinks", "pass-sink.sh");
const NAME = "app";
const INTERVAL_MS = 100;
const VAULT_TOKEN = "consumer-proof-root-token";
const KUBE_TOKEN = "consumer-proof-kube-token";
const run = promisify(execFile);

/** One kind of sink: its config, how the reconciler and the consumer reach it, how to read it here. */
interface SinkSetup {
  sink: Record<string, unknown>;
  /** Extra environment for the reconciler's runs. */
  env: Record<string, string>;
  /** The consumer's environment for reading the record of `NAME`. */
  consumerEnv: Record<string, string>;
  /** The record of `NAME` as the sink holds it now, read here without the consumer. */
  read: () => Promise<SinkRecord>;
}

interface SinkRecord {
  client_id: string;
  client_secret: string;
  issued_at: string;
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const SINKS: Record<string, (ws: RotationWorkspace) => Promise<SinkSetup>> = {
  async file(ws) {
    return {
      sink: { type: "file", dir: "./secrets" },
      env: {},
      consumerEnv: { SINK: "file", SECRET_FILE: join(ws.secretsDir, ws.accountId, `${NAME}.json`) },
      read: async () => {
        const record = await ws.sinkRecord(NAME);
        if (record === null) throw new Error("no record in the file sink");
        return record;
      },
    };
  },
  /** KV version 2 in the Vault fake the sink tests run (test/helpers/vault-fake.ts). */
  async vault(ws) {
    const fake = await VaultFake.start({ tokens: { [VAULT_TOKEN]: ROOT_POLICY }, mounts: ["secret"] });
    onTestFinished(() => fake.close());
    const path = `secret/data/cf/${ws.accountId}/${NAME}`;
    return {
      sink: { type: "vault", address: fake.address, mount: "secret", path_prefix: "cf" },
      env: { VAULT_TOKEN },
      consumerEnv: { SINK: "vault", VAULT_ADDR: fake.address, VAULT_TOKEN, VAULT_PATH: path },
      read: async () => {
        const res = await fetch(`${fake.address}/v1/${path}`, { headers: { "X-Vault-Token": VAULT_TOKEN } });
        return ((await res.json()) as { data: { data: SinkRecord } }).data.data;
      },
    };
  },
  /** Secrets in the Kubernetes fake the sink tests run (test/helpers/kubernetes-fake.ts). */
  async kubernetes(ws) {
    const fake = await KubernetesFake.start({ tokens: { [KUBE_TOKEN]: "all" }, namespaces: ["apps"] });
    onTestFinished(() => fake.close());
    const tokenFile = join(ws.dir, "kube-token");
    await writeFile(tokenFile, KUBE_TOKEN);
    const path = `/api/v1/namespaces/apps/secrets/${NAME}`;
    return {
      sink: { type: "kubernetes", namespace: "apps", api_server: fake.url, token_file: tokenFile },
      env: {},
      consumerEnv: {
        SINK: "kubernetes",
        KUBE_API: fake.url,
        KUBE_TOKEN,
        KUBE_NAMESPACE: "apps",
        KUBE_SECRET: NAME,
      },
      read: async () => {
        const res = await fetch(`${fake.url}${path}`, { headers: { authorization: `Bearer ${KUBE_TOKEN}` } });
        const data = ((await res.json()) as { data: Record<string, string> }).data;
        const field = (k: string) => Buffer.from(data[k] ?? "", "base64").toString("utf8");
        return {
          client_id: field("client_id"),
          client_secret: field("client_secret"),
          issued_at: field("issued_at"),
        };
      },
    };
  },
  /** `pass` with a real gpg key, through the repository's own examples/sinks/pass-sink.sh. */
  async exec(ws) {
    const gnupgHome = await tempDir("cfog-gpg-");
    const store = await tempDir("cfog-pass-");
    const env = { GNUPGHOME: gnupgHome, PASSWORD_STORE_DIR: store };
    const withEnv = { env: { ...process.env, ...env } };
    await run(
      "gpg",
      [
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "consumer <c@example.invalid>",
        "future-default",
        "default",
        "never",
      ],
      withEnv,
    );
    onTestFinished(async () => {
      await run("gpgconf", ["--kill", "gpg-agent"], withEnv).catch(() => undefined);
    });
    const colons = (await run("gpg", ["--list-keys", "--with-colons"], withEnv)).stdout;
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1] ?? "";
    await run("pass", ["init", fingerprint], withEnv);
    return {
      sink: {
        type: "exec",
        command: [PASS_SINK],
        read_command: [PASS_SINK],
        check_command: [PASS_SINK],
        timeout: "30s",
        pass_env: ["GNUPGHOME", "PASSWORD_STORE_DIR"],
      },
      env,
      consumerEnv: {
        SINK: "exec",
        SINK_COMMAND: JSON.stringify([PASS_SINK]),
        ACCOUNT_ID: ws.accountId,
        KEY: NAME,
        ...env,
      },
      read: () =>
        new Promise((resolve, reject) => {
          const child = execFile(PASS_SINK, [], withEnv, (error, stdout) => {
            if (error) reject(error);
            else resolve(JSON.parse(stdout) as SinkRecord);
          });
          child.stdin?.end(JSON.stringify({ action: "read", account_id: ws.accountId, key: NAME }));
        }),
    };
  },
};

/** The client the consumer uses: code + refresh, confidential, at the redirect the consumer names. */
const APP = {
  client_name: NAME,
  token_endpoint_auth_method: "client_secret_basic",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  redirect_uris: [REDIRECT_URI],
  scopes: ["account-settings.read"],
};

/**
 * Runs the reconciler through `proxy`, which SIGKILLs it when Cloudflare has minted a new secret and
 * before the answer reaches it (the first `rotate_secret` call, "hold"); true when that point was
 * reached. `env.clockOffset` moves its clock.
 */
async function killedRun(
  proxy: KillProxy,
  proxyUrl: string,
  args: string[],
  env: NodeJS.ProcessEnv & { clockOffset: string },
): Promise<boolean> {
  const { clockOffset, ...rest } = env;
  const cli = program({ clockOffset });
  const child = spawn(process.execPath, [...cli.args, ...args], {
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "",
      ...rest,
      CLOUDFLARE_BASE_URL: proxyUrl,
      ...cli.env,
    },
    stdio: "ignore",
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  proxy.arm(child, { k: 1, mode: "hold", delayMs: 0, on: "rotate-secret" });
  await exited;
  await proxy.settle();
  return proxy.killed;
}

/** Whether `secret` still gets a token: a fresh login with openid-client, as any application would. */
async function secretWorks(emu: EmulatorHandle, clientId: string, secret: string): Promise<boolean> {
  const config = await oidc.discovery(
    new URL(emu.issuer),
    clientId,
    undefined,
    clientAuth("client_secret_basic", secret),
    { execute: [oidc.allowInsecureRequests] },
  );
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: "account-settings.read",
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  const answer = await fetch(url, { redirect: "manual" });
  const location = answer.headers.get("location") ?? "";
  try {
    await oidc.authorizationCodeGrant(config, new URL(location), { pkceCodeVerifier: verifier });
    return true;
  } catch (error) {
    // A refused client authentication is 401 (RFC 6749 §5.2); with Basic it carries a challenge,
    // which openid-client reports as a WWWAuthenticateChallengeError.
    if ((error as { status?: number }).status === 401) return false;
    throw error;
  }
}

describe.each(Object.keys(SINKS))("a consumer reading the %s sink", (kind) => {
  it("is never refused through scheduled rotation, rotate --now, --finish and the daemon's schedule; after --compromised the old secret stops at once; a rotation whose answer a SIGKILL lost fails no one until --recover", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu, { every: "10d", grace: "1d" });
    const setup = await (SINKS[kind] as (ws: RotationWorkspace) => Promise<SinkSetup>)(ws);
    await ws.writeConfig({ every: "10d", grace: "1d", sinks: { default: setup.sink } });
    await ws.writeClients([APP]);
    const env = cliEnv(emu, setup.env);
    const reconcile = async (args: string[], days: number): Promise<RunResult> => {
      const result = await runProgram([args[0] as string, "-c", ws.config, ...args.slice(1)], env, ws.dir, {
        clockOffset: `${days}d`,
      });
      expect(result.code, `${args.join(" ")} at +${days}d\n${result.stdout}\n${result.stderr}`).toBe(0);
      return result;
    };
    const rotatedSecret = async (): Promise<boolean> =>
      (await dumpClients(emu, ws.accountId)).some((c) => c.client_name === NAME && c.has_rotated_secret);
    const issuedAt = async (): Promise<string> => (await readRecord()).issued_at;
    const readRecord = setup.read;

    await reconcile(["apply"], 0);
    const created = await readRecord();
    const consumerEnv = {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "",
      ISSUER: emu.issuer,
      INTERVAL_MS: String(INTERVAL_MS),
      ...setup.consumerEnv,
    };
    // `fresh` reads the sink before every exchange; `lagging` keeps what it read until SIGHUP, so it
    // goes on with the old secret after each rotation: only the grace period keeps it working.
    const fresh = new Consumer(consumerEnv);
    const lagging = new Consumer({ ...consumerEnv, CREDENTIALS: "cached" });
    const both = async (n: number, issued: string) => {
      await Promise.all([fresh.successes(n, issued), lagging.successes(n, issued)]);
    };
    /** After a rotation: the lagging consumer still works on the old secret, then re-reads. */
    const graceHolds = async (old: string, current: string) => {
      await Promise.all([fresh.successes(3, current), lagging.successes(3, old)]);
      lagging.hup();
      await lagging.successes(3, current);
    };
    await both(3, created.issued_at);

    // The scheduled rotation (due at 10d), then its deletion once the grace (1d) has passed.
    await reconcile(["rotate"], 11);
    expect(await rotatedSecret()).toBe(true);
    const scheduled = await issuedAt();
    expect(scheduled).not.toBe(created.issued_at);
    await graceHolds(created.issued_at, scheduled);
    await reconcile(["rotate"], 13);
    expect(await rotatedSecret()).toBe(false);
    expect(await secretWorks(emu, created.client_id, created.client_secret)).toBe(false);
    await both(3, scheduled);

    // rotate --now, and rotate --finish after its grace.
    await reconcile(["rotate", "--now"], 13);
    const now = await issuedAt();
    expect(now).not.toBe(scheduled);
    await graceHolds(scheduled, now);
    await reconcile(["rotate", "--finish"], 15);
    expect(await rotatedSecret()).toBe(false);
    await both(3, now);

    // The daemon's rotation schedule: at +30d the secret is due and a tick rotates it; a daemon at
    // +32d, past the grace, deletes the old secret.
    await writeFile(
      ws.config,
      stringify({
        account_id: ws.accountId,
        desired: "./desired",
        state_dir: "./state",
        interval: "1h",
        sinks: { default: setup.sink },
        rotation: { every: "10d", grace: "1d", schedule: "*/1 * * * * *" },
      }),
    );
    const daemonAt = async (offset: string, until: () => Promise<boolean>) => {
      const daemon = await startDaemon({ cwd: ws.dir, emulator: emu, clockOffset: offset, env: setup.env });
      await eventually(async () => ((await until()) ? true : undefined), 60_000, `the daemon at +${offset}`);
      // Positive evidence that the daemon's own rotation run did it.
      await daemon.waitForLine(
        (l) => runFinished(l) && l["result"] === "ok" && (l["reasons"] as string[]).includes("rotation"),
      );
      const code = await daemon.stop("SIGTERM");
      expect(code, daemon.output()).toBe(0);
    };
    await daemonAt("30d", async () => (await issuedAt()) !== now && (await rotatedSecret()));
    const byDaemon = await issuedAt();
    await graceHolds(now, byDaemon);
    await daemonAt("32d", async () => !(await rotatedSecret()));
    await both(3, byDaemon);

    const calm = {
      exchanges: fresh.exchanges.length + lagging.exchanges.length,
      failures: fresh.failures.length + lagging.failures.length,
    };
    expect(fresh.failures).toEqual([]);
    expect(lagging.failures).toEqual([]);
    expect([...fresh.readErrors, ...lagging.readErrors]).toEqual([]);

    // Break-glass: the old secret stops at once, for the lagging consumer too; the fresh one finds
    // the new secret at its next read.
    const before = await readRecord();
    let fromFresh = fresh.exchanges.length;
    let fromLagging = lagging.exchanges.length;
    const eventsBefore = (await secretEvents(emu, before.client_id)).length;
    await reconcile(["rotate", "--compromised", "--client", NAME], 32);
    expect(await secretWorks(emu, before.client_id, before.client_secret)).toBe(false);
    const after = await issuedAt();
    expect(after).not.toBe(byDaemon);
    const compromised = await windowAfterDeletion(
      fresh,
      fromFresh,
      emu,
      before.client_id,
      eventsBefore,
      after,
    );
    const refused = await lagging.waitFor(fromLagging, (e) => !e.ok);
    expect(refused).toMatchObject({ issued_at: byDaemon, status: 401 });
    lagging.hup();
    await Promise.all([fresh.successes(2, after, false), lagging.successes(2, after, false)]);

    // The crash case no retry can repair: the reconciler is SIGKILLed after Cloudflare minted the new
    // secret and before its answer arrived (test/helpers/crash-harness.ts "hold"), so the new secret is
    // lost. Until an operator acts, both consumers go on with the old one, now the rotated secret;
    // `rotate --recover` deletes it, rotates again and publishes, and the fresh reader's window is
    // measured from that deletion, as after --compromised.
    const proxy = new KillProxy(emu);
    onTestFinished(() => proxy.close());
    const proxyUrl = await proxy.listen();
    const killed = await killedRun(proxy, proxyUrl, ["rotate", "-c", ws.config, "--now", "--client", NAME], {
      ...env,
      clockOffset: "32d",
    });
    expect(killed, "the kill point was reached").toBe(true);
    expect(await rotatedSecret()).toBe(true);
    expect(await issuedAt()).toBe(after);
    await both(3, after);
    const lost = await runProgram(["rotate", "-c", ws.config], env, ws.dir, { clockOffset: "32d" });
    expect(lost.code).toBe(1);
    expect(lost.stdout).toContain("E_ROTATION_SECRET_LOST");
    await both(3, after);
    fromFresh = fresh.exchanges.length;
    fromLagging = lagging.exchanges.length;
    const eventsBeforeRecover = (await secretEvents(emu, before.client_id)).length;
    await reconcile(["rotate", "--recover", "--client", NAME], 32);
    const recovered = await issuedAt();
    expect(recovered).not.toBe(after);
    const recover = await windowAfterDeletion(
      fresh,
      fromFresh,
      emu,
      before.client_id,
      eventsBeforeRecover,
      recovered,
    );
    expect(await lagging.waitFor(fromLagging, (e) => !e.ok)).toMatchObject({ issued_at: after, status: 401 });
    lagging.hup();
    await Promise.all([fresh.successes(2, recovered, false), lagging.successes(2, recovered, false)]);

    for (const consumer of [fresh, lagging]) {
      const { code, summary } = await consumer.stop();
      expect(code).toBe(0);
      expect(summary).toMatchObject({ exchanges: consumer.exchanges.length, read_errors: 0 });
      expect(consumer.stderr).toBe("");
      // One login, then only refresh-token grants.
      expect(consumer.exchanges.slice(1).every((e) => e.grant === "refresh_token")).toBe(true);
      for (const secret of [created, before, await readRecord()].map((r) => r.client_secret)) {
        expect(consumer.raw).not.toContain(secret);
      }
    }
    console.log(
      `consumer proof (${kind} sink): ${calm.failures} failed of ${calm.exchanges} exchanges (two consumers, one re-reading only on SIGHUP) ` +
        `through a scheduled rotation and its deletion, rotate --now and --finish, and the daemon's schedule; ` +
        `rotate --compromised: ${compromised.failures} failed exchanges, ${compromised.windowMs} ms from the old secret's deletion to the first success ` +
        `with the new secret; a rotation killed after Cloudflare's answer: 0 failed until rotate --recover, then ${recover.failures} failed, ` +
        `${recover.windowMs} ms from its deletion of the old secret to the first success with the new one (interval ${INTERVAL_MS} ms)`,
    );
  }, 180_000);
});

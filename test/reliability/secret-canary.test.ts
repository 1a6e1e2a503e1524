import { readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseEnv } from "../../src/sinks/envfile.js";
import {
  checkSecret,
  cliEnv,
  confidential,
  filesUnder,
  makeWorkspace,
  publicClient,
  stats,
  type RunResult,
  type Workspace,
} from "../e2e/support.js";
import { ACCOUNT_A, ACCOUNT_B, control, startTestEmulator, WRITE_TOKEN } from "../helpers/emulator.js";
import { leaks } from "../rotation/support.js";
import { eventually, startDaemon } from "../daemon/support.js";
import { clearFaults, dumpClients, expectConverged, runProgram } from "./support.js";

/**
 * Secret canaries across a whole lifecycle, every verb run as a real child process at LOG_LEVEL=debug
 * or trace: validate, plan in every format and saved with --out, apply of the saved plan (creates),
 * rotate --status, scheduled rotations, rotate --now, rotate --compromised, an apply of new clients
 * under injected faults (lost answers, 5xx, resets: the recovery paths log the most), rotate --finish,
 * `run --once`, the long-running daemon (its /healthz, /readyz, /status and /metrics captured while it
 * applies a change from the file watch), export. Every secret the tool ever held (read from both sinks, a JSON file sink and an env file sink,
 * and from journal entries not yet published) and the API token are then looked for, raw and base64,
 * in every run's stdout and stderr, both saved plans, and every file of the state directory
 * (inventory, journal) as it was after each run, except a journal entry while it legitimately holds
 * its own not-yet-published secret.
 */

/** Where a text was captured, and the text. */
interface Capture {
  where: string;
  text: string;
}

class Lifecycle {
  readonly captures: Capture[] = [];
  readonly secrets = new Set<string>();
  readonly results: { step: string; result: RunResult }[] = [];
  step = 0;

  constructor(readonly ws: Workspace) {}

  /** One verb as a child process; captures its output, then every secret and state file now on disk. */
  async run(args: string[], options: { days?: number; level?: "debug" | "trace" } = {}): Promise<RunResult> {
    this.step += 1;
    const level = options.level ?? (this.step % 2 === 0 ? "trace" : "debug");
    const env = cliEnv(this.ws.emu, { LOG_LEVEL: level });
    const result = await runProgram(
      [args[0] as string, "-c", this.ws.config, ...args.slice(1)],
      env,
      this.ws.dir,
      options.days ? { clockOffset: `${options.days}d` } : {},
    );
    const label = `step ${this.step} (${args.join(" ")}, LOG_LEVEL=${level})`;
    this.results.push({ step: label, result });
    this.captures.push({ where: `${label} stdout`, text: result.stdout });
    this.captures.push({ where: `${label} stderr`, text: result.stderr });
    await this.collect(label);
    return result;
  }

  /** Reads every sink record and journal entry; snapshots the state directory's files. */
  async collect(label: string): Promise<void> {
    for (const path of await filesUnder(join(this.ws.dir, "secrets"))) {
      const record = JSON.parse(await readFile(path, "utf8")) as { client_secret: string };
      this.secrets.add(record.client_secret);
    }
    for (const path of await filesUnder(join(this.ws.dir, "env-secrets"))) {
      const secret = parseEnv(await readFile(path, "utf8"))?.["CLIENT_SECRET"];
      if (secret) this.secrets.add(secret);
    }
    for (const path of await filesUnder(this.ws.stateDir)) {
      const text = await readFile(path, "utf8");
      const entry = path.includes(`${join("state", "journal")}`)
        ? (JSON.parse(text) as Record<string, unknown>)
        : null;
      if (entry && typeof entry["secret"] === "string") {
        // Minted, not yet published: the one place a secret may wait. Only its own.
        this.secrets.add(entry["secret"]);
        expect(entry["step"], `${path} holds a secret at step ${String(entry["step"])}`).toBe("minted");
        continue;
      }
      this.captures.push({ where: `${label}: ${relative(this.ws.dir, path)}`, text });
    }
  }

  /**
   * The long-running daemon at trace level, 26 days on (rotations due on the next schedule tick):
   * /healthz, /readyz, /status and /metrics captured after its first run, while `during` runs, and
   * after; its whole log captured once it has stopped on SIGTERM.
   */
  async daemon(during: (get: (path: string) => Promise<void>) => Promise<void>): Promise<void> {
    this.step += 1;
    const daemon = await startDaemon({
      cwd: this.ws.dir,
      emulator: this.ws.emu,
      args: ["--listen", "127.0.0.1:0", "--log-level", "trace"],
      clockOffset: "26d",
    });
    const label = `step ${this.step} (daemon)`;
    const get = async (path: string) => {
      const res = await daemon.get(path);
      this.captures.push({ where: `${label} GET ${path}`, text: res.text });
    };
    const all = async () => {
      for (const path of ["/healthz", "/readyz", "/status", "/metrics"]) await get(path);
    };
    await daemon.waitForLine((l) => l.component === "daemon" && String(l.msg).startsWith("run finished"));
    await all();
    await during(get);
    await all();
    expect(await daemon.stop("SIGTERM")).toBe(0);
    this.captures.push({ where: `${label} log`, text: daemon.output() });
    expect(daemon.output()).toMatch(/"level":20/); // debug lines (nothing logs below) were captured
    await this.collect(label);
  }

  async capturePlanFile(name: string): Promise<void> {
    this.captures.push({ where: name, text: await readFile(join(this.ws.dir, name), "utf8") });
  }

  /** Every capture that contains a secret or the API token, in any form. */
  findLeaks(): string[] {
    const canaries = [...this.secrets, WRITE_TOKEN];
    return this.captures.flatMap((c) => leaks(c.text, canaries).map((s) => `${c.where}: ${s}...`));
  }
}

async function writeLifecycleConfig(ws: Workspace): Promise<void> {
  await ws.writeRaw(
    "cf-oauth-gitops.yaml",
    stringify({
      account_id: ACCOUNT_A,
      desired: "./desired",
      state_dir: "./state",
      prune: "owned",
      safety: { max_deletes: 100, max_change_percent: 100 },
      sinks: {
        default: { type: "file", dir: "./secrets" },
        envs: { type: "file", dir: "./env-secrets", format: "env" },
      },
      rotation: { every: "10d", grace: "1d" },
    }),
  );
}

describe("secret canary: a whole lifecycle at LOG_LEVEL=debug and trace", () => {
  it("no secret or token in any output, plan, status, export, inventory or published journal entry", async () => {
    const emu = await startTestEmulator({ seed: 4242 });
    const ws = await makeWorkspace(emu);
    await writeLifecycleConfig(ws);
    const life = new Lifecycle(ws);
    const envSink = { secret: { sink: "envs" } };
    const first = [
      confidential("alpha"),
      confidential("beta", envSink),
      confidential("gamma", { token_endpoint_auth_method: "client_secret_post" }),
      publicClient("pkce"),
    ];
    await ws.writeDesired("a.yaml", ACCOUNT_A, first);
    await ws.writeDesired("b.yaml", ACCOUNT_B, [confidential("bravo")]);

    expect((await life.run(["validate"])).code).toBe(0);
    for (const format of ["text", "json"]) await life.run(["plan", "--format", format]);
    expect((await life.run(["plan", "--format", "markdown", "--out", "reviewed.json"])).code).toBe(0);
    const created = await life.run(["apply", "--plan", "reviewed.json"]);
    expect(created.code, created.stdout + created.stderr).toBe(0);

    for (const format of ["text", "json", "markdown"])
      await life.run(["plan", "--format", format], { days: 11 });
    await life.run(["rotate", "--status"], { days: 11 });
    await life.run(["rotate", "--status", "--format", "json"], { days: 11 });
    const scheduled = await life.run(["rotate"], { days: 11 });
    expect(scheduled.code, scheduled.stdout + scheduled.stderr).toBe(0);
    expect((await life.run(["rotate", "--now", "--client", "gamma"], { days: 13 })).code).toBe(0);
    const breakGlass = await life.run(["rotate", "--compromised", "--client", "alpha"], { days: 13 });
    expect(breakGlass.code, breakGlass.stdout + breakGlass.stderr).toBe(0);

    // New clients applied while the API loses answers, fails and resets: the recovery paths log most.
    const second = [
      ...first,
      ...["delta", "epsilon", "zeta"].map((n) => confidential(n)),
      confidential("eta", envSink),
    ];
    await ws.writeDesired("a.yaml", ACCOUNT_A, second);
    // First every answer to a write is lost (the run fails, all recovery paths run), then some are.
    await control(emu, "POST", "faults", { faultDropAfterCommitRate: 1 });
    const lost = await life.run(["apply"], { days: 13, level: "trace" });
    expect(lost.code, lost.stdout + lost.stderr).toBe(1);
    expect((await stats(emu)).faults.drop_after_commit).toBeGreaterThanOrEqual(4);
    await control(emu, "POST", "faults", {
      faultDropAfterCommitRate: 0.2,
      fault5xxRate: 0.15,
      faultResetRate: 0.1,
    });
    let faulted: RunResult = lost;
    for (let i = 0; i < 5 && faulted.code !== 0; i++) {
      faulted = await life.run(["apply"], { days: 13, level: "trace" });
    }
    await clearFaults(emu);
    expect(faulted.code, `${faulted.stdout}${faulted.stderr}`).toBe(0);

    expect((await life.run(["rotate", "--finish"], { days: 15 })).code).toBe(0);

    // The daemon: one run with its wiring (reconcile, then due rotations), then the long-running
    // process, which applies a new client from the file watch; its /status and /metrics are captured.
    await ws.writeDesired("a.yaml", ACCOUNT_A, [...second, confidential("theta")]);
    expect((await life.run(["run", "--once"], { days: 25 })).code).toBe(0);
    await life.daemon(async (get) => {
      await ws.writeDesired("a.yaml", ACCOUNT_A, [...second, confidential("theta"), confidential("iota")]);
      await eventually(async () =>
        (await dumpClients(emu, ACCOUNT_A)).some((c) => c.client_name === "iota") ? true : undefined,
      );
      await get("/readyz");
    });
    await life.run(["rotate", "--status", "--format", "json"], { days: 15 });
    const exported = await life.run(["export", "--account", ACCOUNT_A]);
    expect(exported.code, exported.stderr).toBe(0);
    for (const format of ["text", "json"]) await life.run(["plan", "--format", format], { days: 15 });
    expect((await life.run(["plan", "--format", "markdown", "--out", "final.json"], { days: 15 })).code).toBe(
      0,
    );
    await life.capturePlanFile("reviewed.json");
    await life.capturePlanFile("final.json");

    await expectConverged(
      ws,
      [
        {
          accountId: ACCOUNT_A,
          names: ["alpha", "beta", "gamma", "pkce", "delta", "epsilon", "zeta", "eta", "theta", "iota"],
          confidential: ["alpha", "gamma", "delta", "epsilon", "zeta", "theta", "iota"],
        },
        { accountId: ACCOUNT_B, names: ["bravo"], confidential: ["bravo"] },
      ],
      "canary lifecycle",
    );
    for (const name of ["beta", "eta"]) {
      const record = parseEnv(await readFile(join(ws.dir, "env-secrets", ACCOUNT_A, `${name}.env`), "utf8"));
      const verdict = await checkSecret(
        emu,
        ACCOUNT_A,
        record?.["CLIENT_ID"] ?? "",
        record?.["CLIENT_SECRET"] ?? "",
      );
      expect(verdict.valid, `${name}: the env sink's secret is not accepted`).toBe(true);
    }
    // 8 confidential creates, 4 scheduled rotations, --now, --compromised: 14 secrets at least.
    expect(life.secrets.size).toBeGreaterThanOrEqual(14);
    const printed = life.captures
      .filter((c) => c.where.endsWith("stderr"))
      .map((c) => c.text)
      .join("");
    expect(printed).toMatch(/"level":20/); // debug lines were captured
    expect(printed.length).toBeGreaterThan(20_000);
    // The detector finds a planted secret in each form, so an empty result means something.
    const probe = [...life.secrets][0] ?? "";
    for (const form of [
      probe,
      Buffer.from(probe).toString("base64"),
      Buffer.from(probe).toString("base64url"),
    ]) {
      expect(leaks(`x${form}x`, [probe])).toHaveLength(1);
    }
    expect(life.findLeaks()).toEqual([]);
  }, 180_000);
});

import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { Plan } from "../../src/core/plan-types.js";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import { api, filesUnder, type RunResult } from "../e2e/support.js";
import { program } from "./program.js";
import { checkSecret, confidentialClient, ROOT, type RotationWorkspace } from "../rotation/support.js";

/**
 * The SIGKILL crash harness shared by the rotation crash test (test/rotation/crash.test.ts) and the
 * reliability crash loop (test/reliability/crash-loop.test.ts): the real program as a child process,
 * a proxy between it and the emulator that kills it at a seeded point, and a lane that drives one
 * account through runs, observes every secret the sink ever held and checks the grace invariant.
 *
 * Kill points: request k of the run, killed either before the request is forwarded, after the
 * emulator has committed it but before the answer reaches the child (the answer is lost with the
 * process), or a few milliseconds after the answer (inside the journal and sink writes that follow).
 * Time moves forward between runs (the children run on a moved clock, test/helpers/program.ts) so
 * rotations fall due and grace periods end.
 */

export const DAY = 86_400;

export type KillMode = "before" | "hold" | "after";

/**
 * What a kill point's `k` counts: every request; writes only (POST, PATCH, DELETE); or secret
 * operations only (`POST .../rotate_secret`, a new secret minted, and `DELETE .../rotate_secret`, an
 * old one deleted after its grace).
 */
export type KillOn = "request" | "write" | "rotate-secret";

/** Where the proxy kills the child: request `k` of the run as {@link KillOn} counts, in `mode`, `delayMs` after the answer. */
export interface KillPlan {
  k: number;
  mode: KillMode;
  delayMs: number;
  on?: KillOn;
}

/** Forwards the child's API calls to the emulator and kills the child at the planned point. */
export class KillProxy {
  readonly #server: Server;
  readonly #upstream: string;
  #count = 0;
  #writes = 0;
  #secretOps = 0;
  #plan: KillPlan | null = null;
  #child: ChildProcess | null = null;
  #inflight = new Set<Promise<void>>();
  /** Method of every request this run forwarded to the emulator (a read-only run sends only GET). */
  forwarded: string[] = [];
  killed = false;

  constructor(emu: EmulatorHandle) {
    this.#upstream = emu.origin;
    this.#server = createServer((req, res) => {
      const work = this.#handle(req, res).catch(() => {
        res.destroy();
      });
      this.#inflight.add(work);
      void work.finally(() => this.#inflight.delete(work));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/client/v4`;
  }

  arm(child: ChildProcess, plan: KillPlan | null): void {
    this.#count = 0;
    this.#writes = 0;
    this.#secretOps = 0;
    this.#plan = plan;
    this.#child = child;
    this.killed = false;
    this.forwarded = [];
  }

  get requests(): number {
    return this.#count;
  }

  /**
   * Writes (POST, PATCH, DELETE) the child sent this run, counted as they arrive: those the kill
   * stopped before the emulator included, so a life killed at its first write counts as one that wrote.
   */
  get writes(): number {
    return this.#writes;
  }

  /** Secret operations (`.../rotate_secret`, POST or DELETE) the child sent this run. */
  get secretOps(): number {
    return this.#secretOps;
  }

  /** Waits until every forwarded request has settled at the emulator: the state is quiescent. */
  async settle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const n = ++this.#count;
    const write = (req.method ?? "GET") !== "GET";
    const w = write ? ++this.#writes : 0;
    const secret = write && /\/rotate_secret(\?|$)/.test(req.url ?? "");
    const o = secret ? ++this.#secretOps : 0;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const plan = this.#plan;
    const counted = { request: n, write: w, "rotate-secret": o }[plan?.on ?? "request"];
    const hit = plan !== null && !this.killed && counted === plan.k;
    if (this.killed) return void res.destroy();
    if (hit && plan.mode === "before") return this.#kill(res);
    const headers: Record<string, string> = {};
    for (const name of ["authorization", "content-type", "user-agent"]) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const body = Buffer.concat(chunks);
    this.forwarded.push(req.method ?? "GET");
    const upstream = await fetch(`${this.#upstream}${req.url ?? "/"}`, {
      method: req.method ?? "GET",
      headers,
      ...(body.length > 0 ? { body } : {}),
    });
    const answer = Buffer.from(await upstream.arrayBuffer());
    if (hit && plan.mode === "hold") return this.#kill(res);
    if (this.killed) return void res.destroy();
    const out: Record<string, string> = { "content-length": String(answer.length) };
    for (const name of ["content-type", "ratelimit", "ratelimit-policy", "retry-after"]) {
      const value = upstream.headers.get(name);
      if (value !== null) out[name] = value;
    }
    res.writeHead(upstream.status, out);
    res.end(answer);
    if (hit && plan.mode === "after") setTimeout(() => void this.#kill(null), plan.delayMs);
  }

  /** SIGKILLs the armed child now, wherever it is (no-op once killed). */
  kill(): Promise<void> {
    return this.#kill(null);
  }

  async #kill(res: ServerResponse | null): Promise<void> {
    const child = this.#child;
    if (!child || this.killed) return;
    this.killed = true;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    res?.destroy();
  }
}

/** Everything the sink ever held for one client, in order, and what protects it. */
export interface SeenSecret {
  secret: string;
  client_id: string;
  issued_at: string;
  /** Fake time of the observation before the one that first saw it: its publish is not earlier. */
  seenAfter: number;
  /** Set when an operator's --recover for this client came after it: invalidation was accepted. */
  exempt: boolean;
}

export type CrashVerb = "plan" | "apply" | "rotate" | "run";

/** One crash run: the verb and its arguments (after `-c CONFIG`). */
export interface CrashRunSpec {
  kind: CrashVerb;
  args: string[];
  /** What the run is counted as in `tally` and `kmax` (e.g. `rotate --now`); default: the verb. */
  label?: string;
  /**
   * For a process that does not exit by itself (the daemon): SIGKILL it after this long if the proxy
   * has not. Such a kill lands wherever the process is (often idle between runs); it is counted.
   */
  guardMs?: number;
  /** What the proxy's kill point `k` counts: every request (default) or writes only. */
  killOn?: KillOn;
  /** The kill point `k` itself, instead of one drawn up to `kmax` (mode and delay are still drawn). */
  killK?: number;
  /** No kill at a request at all this run: only {@link killAtLine} (or the guard) ends it. */
  noProxyKill?: boolean;
  /**
   * For the daemon: its JSON log lines (stdout) are read, and the first one this accepts SIGKILLs it
   * unless the proxy has already: a kill at a point the process reports reaching (a run finished),
   * rather than at a time. Counted in `lineKills`.
   */
  killAtLine?: (line: Record<string, unknown>) => boolean;
}

/**
 * Picks the next crash run for a lane and makes the change of world that goes with it (desired
 * files, clock). Called with `lane.runs` already counting the new run. Draws only from `lane.random`,
 * so a seed replays the same sequence.
 */
export type RunChooser = (lane: CrashLane) => Promise<CrashRunSpec>;

/**
 * The rotation crash test's sequence: every third run an apply that adds two clients, otherwise a
 * rotate after 0.3 to 2.5 days, a third of them `--now` for two random clients.
 */
export const classicChooser: RunChooser = async (lane) => {
  const apply = lane.runs % 3 === 1;
  const args: string[] = [];
  if (apply) {
    lane.names.push(`c${lane.runs}a`, `c${lane.runs}b`);
    await lane.writeDesired();
  } else {
    lane.advanceClock(0.3, 2.5);
    if (lane.random() < 0.3 && lane.names.length >= 2) {
      args.push("--now", "--client", lane.pick(), "--client", lane.pick());
    }
  }
  return { kind: apply ? "apply" : "rotate", args };
};

export interface LaneOptions {
  /** The rotation grace of the lane's config, in seconds (the workspace's `grace`). Default 1 day. */
  graceSeconds?: number;
  chooser?: RunChooser;
}

/** An operator's `rotate --recover` in a completion: which clients, and when it ran (wall clock, ms). */
export interface RecoverRun {
  names: string[];
  startedAt: number;
  endedAt: number;
}

/** One account driven through crash runs and completions, with everything it has observed. */
export class CrashLane {
  readonly history = new Map<string, SeenSecret[]>();
  /** The desired clients, in order. */
  readonly names: string[] = [];
  /** Per client, the version of its redirect URI (0: the default body). Bumping one makes a PATCH. */
  readonly versions = new Map<string, number>();
  /**
   * Clients whose desired body is fixed (a consumer's, test/helpers/consumer.ts): kept in `names`,
   * written as given, never dropped by {@link removeName} nor edited through `versions`.
   */
  readonly pinned = new Map<string, Record<string, unknown>>();
  /** Every `rotate --recover` the lane ran as the operator, in order. */
  readonly recoverRuns: RecoverRun[] = [];
  offset = 0;
  lastObservation = 0;
  /** True right after a completion, until the next crash run: nothing is half done. */
  clean = true;
  kills = 0;
  /** Kills by the guard timer rather than the proxy (a daemon past its kill point). */
  guardKills = 0;
  /** Kills at a log line (`CrashRunSpec.killAtLine`) rather than at a request. */
  lineKills = 0;
  runs = 0;
  recovers = 0;
  /** Runs and kills per label (the verb unless the chooser names the run otherwise). */
  readonly tally = new Map<string, { runs: number; kills: number }>();
  /** Upper bound of the kill point per label: grows after a kill, shrinks to the request count after a run. */
  readonly kmax = new Map<string, number>([
    ["plan", 2],
    ["apply", 4],
    ["rotate", 6],
  ]);
  /** What happened, for the failure message: runs, kill points, exit codes. */
  readonly events: string[] = [];
  readonly #graceMs: number;
  readonly #chooser: RunChooser;

  constructor(
    readonly ws: RotationWorkspace,
    readonly emu: EmulatorHandle,
    readonly proxy: KillProxy,
    readonly proxyUrl: string,
    readonly random: () => number,
    options: LaneOptions = {},
  ) {
    this.#graceMs = (options.graceSeconds ?? DAY) * 1000;
    this.#chooser = options.chooser ?? classicChooser;
  }

  /** Fake "now" as the program sees it: a lower bound taken after every run has ended. */
  fakeNow(): number {
    return Date.now() + this.offset * 1000;
  }

  /** Moves the program's clock forward by a random span between `minDays` and `maxDays`. */
  advanceClock(minDays: number, maxDays: number): void {
    this.offset += Math.round((minDays + this.random() * (maxDays - minDays)) * DAY);
  }

  /** Adds a client with a fixed body (see {@link pinned}) to the desired state. */
  async pin(body: Record<string, unknown> & { client_name: string }): Promise<void> {
    this.pinned.set(body.client_name, body);
    if (!this.names.includes(body.client_name)) this.names.push(body.client_name);
    await this.writeDesired();
  }

  /** Writes the desired file from `names`, `versions` and `pinned`. */
  async writeDesired(): Promise<void> {
    await this.ws.writeClients(
      this.names.map((name) => {
        const body = this.pinned.get(name);
        if (body !== undefined) return body;
        const version = this.versions.get(name) ?? 0;
        if (version === 0) return name;
        return confidentialClient(name, { redirect_uris: [`https://${name}.example.com/v${version}`] });
      }),
    );
  }

  /** Drops a client from the desired state and forgets its secrets (a deleted client accepts none); a pinned one stays. */
  removeName(name: string): void {
    if (this.pinned.has(name)) return;
    const index = this.names.indexOf(name);
    if (index >= 0) this.names.splice(index, 1);
    this.history.delete(name);
  }

  pick(): string {
    return this.names[Math.floor(this.random() * this.names.length)] as string;
  }

  async observe(): Promise<void> {
    const now = this.fakeNow();
    for (const name of this.names) {
      const record = await this.ws.sinkRecord(name);
      if (!record) continue;
      const seen = this.history.get(name) ?? [];
      if (seen.at(-1)?.secret !== record.client_secret) {
        seen.push({
          secret: record.client_secret,
          client_id: record.client_id,
          issued_at: record.issued_at,
          seenAfter: this.lastObservation,
          exempt: false,
        });
        this.history.set(name, seen);
      }
    }
    this.lastObservation = now;
    await this.verifyGrace(now);
  }

  /** No secret the sink has held is invalid while it is current or within its successor's grace. */
  async verifyGrace(now: number): Promise<void> {
    for (const [name, seen] of this.history) {
      for (let j = 0; j < seen.length; j++) {
        const s = seen[j] as SeenSecret;
        if (s.exempt) continue;
        const next = seen[j + 1];
        if (next && now >= Math.max(Date.parse(next.issued_at), next.seenAfter) + this.#graceMs) continue;
        const verdict = await checkSecret(this.emu, this.ws.accountId, s.client_id, s.secret);
        if (!verdict.valid) {
          const journal = (await this.ws.journalFiles()).map((f) => f.text).join("\n");
          expect.fail(
            `${this.ws.accountId}/${name}: secret #${j + 1} of ${seen.length} invalid too early\n` +
              `events:\n  ${this.events.join("\n  ")}\nseen: ${JSON.stringify(seen.map((x) => ({ ...x, secret: `sha256:${createHash("sha256").update(x.secret).digest("hex").slice(0, 12)}` })))}\njournal:\n${journal}`,
          );
        }
      }
    }
  }

  /**
   * One crash run: change the world, start the child, kill it at the planned point, observe. A `plan`
   * run must stay read-only whether killed or not: only GETs reach the emulator, and the state and
   * secrets directories are byte for byte what they were.
   */
  async crashRun(): Promise<void> {
    this.runs += 1;
    this.clean = false;
    const spec = await this.#chooser(this);
    const { kind, args, label = kind, guardMs, killAtLine } = spec;
    const on = spec.killOn ?? "request";
    const plan: KillPlan | null = spec.noProxyKill
      ? null
      : {
          k: spec.killK ?? 1 + Math.floor(this.random() * (this.kmax.get(label) ?? 6)),
          mode: (["before", "hold", "after"] as const)[Math.floor(this.random() * 3)] ?? "hold",
          delayMs: Math.floor(this.random() * 15),
          ...(on !== "request" ? { on } : {}),
        };
    const before = kind === "plan" ? await this.#fingerprintFiles() : null;
    const cli = program({ clockOffset: this.offset });
    const child = spawn(process.execPath, [...cli.args, kind, "-c", this.ws.config, ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env["PATH"] ?? "",
        ...this.ws.env({ baseUrl: this.proxyUrl }),
        ...cli.env,
      },
      stdio: ["ignore", killAtLine ? "pipe" : "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    this.proxy.arm(child, plan);
    let lined = false;
    const recent: string[] = [];
    if (killAtLine) {
      let pending = "";
      child.stdout?.setEncoding("utf8");
      child.stdout?.on("data", (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const text = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          let line: Record<string, unknown>;
          try {
            line = JSON.parse(text) as Record<string, unknown>;
          } catch {
            continue;
          }
          // Kept for the report of a life the failsafe had to end: what the daemon last said.
          recent.push(summarizeLine(line));
          if (recent.length > 25) recent.shift();
          if (this.proxy.killed || lined || !killAtLine(line)) continue;
          lined = true;
          void this.proxy.kill();
        }
      });
    }
    let guarded = false;
    const guard =
      guardMs === undefined
        ? undefined
        : setTimeout(() => {
            guarded = !this.proxy.killed;
            void this.proxy.kill();
          }, guardMs);
    const code = await exited;
    clearTimeout(guard);
    await this.proxy.settle();
    this.events.push(
      `run ${this.runs} ${kind} ${args.join(" ")} offset=${this.offset} plan=${JSON.stringify(plan)} ` +
        `requests=${this.proxy.requests} writes=${this.proxy.writes} killed=${this.proxy.killed}` +
        `${guarded ? " (guard)" : ""}${lined ? " (at line)" : ""} code=${code}` +
        (guarded
          ? `\n  last log lines:\n    ${recent.join("\n    ")}\n  stderr: ${stderr.slice(-2000)}`
          : ""),
    );
    const counts = this.tally.get(label) ?? { runs: 0, kills: 0 };
    this.tally.set(label, counts);
    counts.runs += 1;
    const counted = {
      request: this.proxy.requests,
      write: this.proxy.writes,
      "rotate-secret": this.proxy.secretOps,
    }[on];
    if (this.proxy.killed) {
      this.kills += 1;
      counts.kills += 1;
      if (guarded) this.guardKills += 1;
      if (lined) this.lineKills += 1;
      // After a guard or line kill the process had made all its requests: aim within them next time.
      // (A kill point the chooser set itself leaves the range alone.)
      if (plan !== null && spec.killK === undefined)
        this.kmax.set(label, guarded || lined ? Math.max(1, counted) : (this.kmax.get(label) ?? 6) + 1);
    } else {
      expect(stderr.includes("Error:") && code !== 0 && code !== 1, stderr).toBe(false);
      if (spec.killK === undefined) this.kmax.set(label, Math.max(1, counted));
    }
    if (before) {
      expect(
        this.proxy.forwarded.filter((m) => m !== "GET"),
        `plan wrote: ${this.events.at(-1)}`,
      ).toEqual([]);
      expect(await this.#fingerprintFiles(), `plan changed a file: ${this.events.at(-1)}`).toEqual(before);
    }
    await this.observe();
  }

  /** Runs again to completion (in-process); acts as the operator for a reported lost secret. */
  async complete(): Promise<void> {
    const first = await this.ws.run("apply", [], { offset: this.offset });
    this.events.push(
      `complete apply ${first.code}: ${first.stdout
        .split("\n")
        .filter((l) => /^[✓✗!…]/.test(l))
        .join(" | ")}`,
    );
    let rotate = await this.ws.run("rotate", [], { offset: this.offset });
    this.events.push(`complete rotate ${rotate.code}: ${rotate.stdout.trim().split("\n").join(" | ")}`);
    const lost = [
      ...rotate.stdout.matchAll(/\[[0-9a-f]{32}\/([^\]]+)\][^\n]*\[E_ROTATION_SECRET_LOST\]/g),
    ].map((m) => m[1] as string);
    if (lost.length > 0) {
      await this.observe();
      const names = [...new Set(lost)];
      for (const name of names) for (const s of this.history.get(name) ?? []) s.exempt = true;
      const startedAt = Date.now();
      const recovered = await this.ws.run("rotate", ["--recover", ...names.flatMap((n) => ["--client", n])], {
        offset: this.offset,
      });
      this.recoverRuns.push({ names, startedAt, endedAt: Date.now() });
      expect(recovered.code, recovered.stdout + recovered.stderr).toBe(0);
      this.recovers += names.length;
      rotate = await this.ws.run("rotate", [], { offset: this.offset });
    }
    expect(rotate.code, rotate.stdout + rotate.stderr).toBe(0);
    const applied = await this.ws.run("apply", [], { offset: this.offset });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    await this.observe();
    this.clean = true;
  }

  /**
   * The convergence checks of the reliability suites: no duplicate name and exactly the desired
   * clients live, every sink secret accepted, and a fresh plan with nothing to do.
   */
  async checkConverged(): Promise<void> {
    await this.finalChecks();
    const result: RunResult = await this.ws.run("plan", ["--format", "json"], { offset: this.offset });
    expect(result.code, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as Plan;
    const context = `plan not empty after completion\nevents:\n  ${this.events.join("\n  ")}`;
    expect(plan.changes, context).toEqual([]);
    expect(plan.adoptions, context).toEqual([]);
    expect(plan.stale_inventory, context).toEqual([]);
    expect(plan.conflicts, context).toEqual([]);
  }

  async finalChecks(): Promise<void> {
    const live = await api<LiveClient[]>(this.emu, "GET", `/accounts/${this.ws.accountId}/oauth_clients`);
    const names = live.map((c) => c.client_name ?? "");
    expect(new Set(names).size, `duplicate clients in ${this.ws.accountId}`).toBe(names.length);
    expect([...names].sort()).toEqual([...this.names].sort());
    for (const name of this.names) {
      const record = await this.ws.sinkRecord(name);
      const client = live.find((c) => c.client_name === name);
      expect(record?.client_id).toBe(client?.client_id);
      const verdict = await checkSecret(
        this.emu,
        this.ws.accountId,
        record?.client_id ?? "",
        record?.client_secret ?? "",
      );
      expect(verdict, `${name}: the sink's secret is not accepted`).toMatchObject({ valid: true });
    }
    for (const file of await this.ws.journalFiles()) {
      expect(file.mode).toBe(0o600);
      expect(file.json["secret"], `${file.name} still holds a secret`).toBeNull();
      expect(["done", "published"]).toContain(file.json["step"]);
    }
  }

  /** Path and sha256 of every file under the state and secrets directories. */
  async #fingerprintFiles(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const dir of [this.ws.stateDir, this.ws.secretsDir]) {
      for (const path of await filesUnder(dir)) {
        out[path] = createHash("sha256")
          .update(await readFile(path))
          .digest("hex");
      }
    }
    return out;
  }
}

/** One log line of a life, short: time, level, component, message and the fields that say why. */
function summarizeLine(line: Record<string, unknown>): string {
  const keep = ["reasons", "result", "code", "held_by", "phase", "next_run_at", "error"];
  const extra = keep
    .filter((k) => line[k] !== undefined)
    .map((k) => `${k}=${JSON.stringify(line[k])}`)
    .join(" ");
  return `${String(line["time"] ?? "")} ${String(line["level"] ?? "")} ${String(line["component"] ?? "")}: ${String(line["msg"] ?? "")} ${extra}`.trim();
}

import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import type { EmulatorHandle } from "../../src/emulator/index.js";
import type { SecretEvent } from "../../src/emulator/store.js";
import { ROOT } from "../e2e/support.js";
import { control } from "./emulator.js";

/**
 * examples/consumer/consumer.mjs as a child process, the way an application uses the secrets the
 * reconciler publishes: it logs in once with openid-client and then runs refresh-token grants in a
 * loop, reading its credentials from the sink (each time, or with `CREDENTIALS=cached` only at start
 * and on SIGHUP). Shared by the consumer proof (test/oauth/consumer-proof.test.ts) and the crash loop
 * (test/reliability/crash-loop.test.ts), which count its failed exchanges.
 */

export const CONSUMER = join(ROOT, "examples", "consumer", "consumer.mjs");

export interface Exchange {
  event: "exchange";
  ok: boolean;
  grant: string;
  at: string;
  ms: number;
  issued_at: string | null;
  error?: string;
  status?: number | null;
}

export interface Summary {
  event: "summary";
  exchanges: number;
  successes: number;
  failures: number;
  read_errors: number;
}

/** The consumer as a child process; its stdout lines parsed as they arrive. */
export class Consumer {
  readonly exchanges: Exchange[] = [];
  readonly readErrors: unknown[] = [];
  summary: Summary | undefined;
  raw = "";
  stderr = "";
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #waiters: (() => void)[] = [];

  constructor(env: NodeJS.ProcessEnv) {
    this.#child = spawn(process.execPath, [CONSUMER], { env, stdio: ["ignore", "pipe", "pipe"] });
    let pending = "";
    this.#child.stdout?.setEncoding("utf8");
    this.#child.stdout?.on("data", (chunk: string) => {
      this.raw += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = JSON.parse(pending.slice(0, nl)) as { event: string };
        pending = pending.slice(nl + 1);
        if (line.event === "exchange") this.exchanges.push(line as Exchange);
        else if (line.event === "summary") this.summary = line as Summary;
        else this.readErrors.push(line);
        for (const wake of this.#waiters) wake();
      }
    });
    this.#child.stderr?.setEncoding("utf8");
    this.#child.stderr?.on("data", (chunk: string) => (this.stderr += chunk));
    this.#exited = new Promise((resolve) => this.#child.on("exit", (code) => resolve(code)));
    onTestFinished(() => {
      if (this.#child.exitCode === null) this.#child.kill("SIGKILL");
    });
  }

  get failures(): Exchange[] {
    return this.exchanges.filter((e) => !e.ok);
  }

  /** Resolves with the first exchange from index `from` on that matches (fails if the consumer exits first). */
  async waitFor(from: number, predicate: (e: Exchange) => boolean): Promise<Exchange> {
    for (;;) {
      const found = this.exchanges.slice(from).find(predicate);
      if (found) return found;
      if (this.#child.exitCode !== null) throw new Error(`the consumer exited: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.#waiters = [];
    }
  }

  /**
   * `n` more successful exchanges after this point, all with the secret issued at `issuedAt`; with
   * `strict`, a refused exchange in the meantime fails at once (the figure that must be 0).
   */
  async successes(n: number, issuedAt: string, strict = true): Promise<void> {
    const from = this.exchanges.length;
    await this.waitFor(from, () => {
      const since = this.exchanges.slice(from);
      const refused = since.find((e) => !e.ok);
      if (strict && refused) throw new Error(`the consumer was refused: ${JSON.stringify(refused)}`);
      return since.filter((e) => e.ok && e.issued_at === issuedAt).length >= n;
    });
  }

  /** Tells a `CREDENTIALS=cached` consumer to read its sink again. */
  hup(): void {
    this.#child.kill("SIGHUP");
  }

  async stop(): Promise<{ code: number | null; summary: Summary | undefined }> {
    this.#child.kill("SIGTERM");
    const code = await this.#exited;
    return { code, summary: this.summary };
  }
}

/** The emulator's secret events of one client, oldest first (src/emulator/store.ts `SecretEvent`). */
export function secretEvents(emu: EmulatorHandle, clientId: string): Promise<SecretEvent[]> {
  return control<SecretEvent[]>(emu, "GET", `secret-events?client_id=${clientId}`);
}

/**
 * A consumer's window after its secret was deleted: from the emulator's `rotated_secret_deleted`
 * event (the first after the `skip` events already seen) to the end of the consumer's first
 * successful exchange with the record issued at `issuedAt`, 0 when that came first (the sink held
 * the new secret before the old one went). `failures`: its refused exchanges from `from` until then.
 */
export async function windowAfterDeletion(
  consumer: Consumer,
  from: number,
  emu: EmulatorHandle,
  clientId: string,
  skip: number,
  issuedAt: string,
): Promise<{ windowMs: number; failures: number }> {
  const deletion = (await secretEvents(emu, clientId))
    .slice(skip)
    .find((e) => e.event === "rotated_secret_deleted");
  if (deletion === undefined) throw new Error(`no deletion of a rotated secret of ${clientId} was recorded`);
  const first = await consumer.waitFor(from, (e) => e.ok && e.issued_at === issuedAt);
  const index = consumer.exchanges.indexOf(first);
  return {
    windowMs: Math.max(0, Date.parse(first.at) + first.ms - Date.parse(deletion.at)),
    failures: consumer.exchanges.slice(from, index).filter((e) => !e.ok).length,
  };
}

import { Writable } from "node:stream";
import { onTestFinished } from "vitest";
import { sinkResolver } from "../../src/cli/common.js";
import { createClient } from "../../src/cloudflare/index.js";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import { rotateOnce, type RotateMode, type RotateReport } from "../../src/engine/rotate.js";
import { createLogger } from "../../src/log.js";
import { Secret } from "../../src/secret.js";
import { FileInventoryStore } from "../../src/state/inventory.js";
import { FileJournalStore } from "../../src/state/journal.js";
import { WRITE_TOKEN } from "../helpers/emulator.js";
import type { RotationWorkspace } from "./support.js";

/**
 * The rotation engine driven directly (not through the CLI) over a workspace: real config and
 * desired-state files, the emulator over HTTP, real sinks, the journal and inventory on disk. The
 * clock is a value the test sets (`clock.now`), so grace can be checked to the second; waits between
 * publish attempts are counted, never slept.
 */
export interface EngineHarness {
  clock: { now: Date };
  /** Every log line at debug level. */
  logs: string[];
  /** Backoff waits requested (ms). */
  sleeps: number[];
  run(mode?: RotateMode, clients?: string[]): Promise<RotateReport>;
}

export async function engineHarness(ws: RotationWorkspace, start: Date): Promise<EngineHarness> {
  const config = await loadConfig(ws.config, { cwd: ws.dir });
  const desired = await loadDesiredState(config);
  const logs: string[] = [];
  const sleeps: number[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString("utf8"));
      done();
    },
  });
  const logger = createLogger({ level: "debug", destination: destination as never });
  const api = createClient({
    baseUrl: ws.emu.url,
    credentials: { kind: "token", token: new Secret(WRITE_TOKEN) },
    logger,
  });
  onTestFinished(() => api.close());
  const clock = { now: start };
  const deps = {
    reader: api,
    writer: api,
    sinks: sinkResolver(config, logger, {}),
    journal: new FileJournalStore(config.state_dir),
    inventoryStore: new FileInventoryStore(config.state_dir),
    logger,
    now: () => clock.now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
  };
  return {
    clock,
    logs,
    sleeps,
    run: (mode = "auto", clients = []) =>
      rotateOnce(deps, {
        desired,
        defaults: { every: config.rotation.every, grace: config.rotation.grace },
        mode,
        clients,
      }),
  };
}

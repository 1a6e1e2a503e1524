import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, createReader } from "../cloudflare/index.js";
import { policyFromConfig } from "../config/index.js";
import type { ReconcilerConfig } from "../config/types.js";
import {
  Daemon,
  type DaemonTriggerOptions,
  directorySource,
  engineRotationRunner,
  gitDesiredSource,
  type RunRecord,
} from "../engine/daemon.js";
import { GitSource } from "../engine/git-source.js";
import { GitOpsError } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import { startServer, type RunningServer } from "../server/http.js";
import { DaemonMetrics } from "../server/metrics.js";
import { createWebhookHandler, loadWebhookSecret } from "../server/webhook.js";
import { sinkRegistry } from "../sinks/registry.js";
import { FileInventoryStore } from "../state/inventory.js";
import { FileJournalStore } from "../state/journal.js";
import { apiClientOptions } from "./api.js";
import { loadCliConfig, sinkResolver } from "./common.js";
import type { VerbRun } from "./frame.js";
import { type CliContext, type Clock, ExitCode } from "./io.js";
import type { RUN } from "./verbs.js";

/** `run`: the daemon. See its options and description in src/cli/verbs.ts, and engine/daemon.ts. */
export const runDaemon: VerbRun<typeof RUN> = async (ctx, values) => {
  const dryRun = values["dry-run"];
  const shutdownMs = values["shutdown-timeout"] * 1000;
  const logger = await daemonLogger(ctx, values["log-format"], values["log-level"]);
  const config = await loadCliConfig(ctx, values);
  if (config.ownership && !config.source) {
    // The record is published to a ref of the source repository; a directory has none.
    throw new GitOpsError(
      "E_OWNERSHIP_NEEDS_GIT",
      `${config.config_file}: ownership.git needs source.git: run publishes the ownership record to a ref of the repository it reads`,
    );
  }

  const clock = ctx.clock;
  const metrics = new DaemonMetrics({
    version: await packageVersion(),
    mode: dryRun ? "dry-run" : "apply",
    now: () => clock().getTime(),
    budget: { snapshot: () => client.budget.snapshot() },
  });
  const clientOptions = apiClientOptions(ctx, { logger, onResponse: metrics.onApiResponse });
  // Dry-run is decided here, once: without a writer nothing can be written
  // (docs/DESIGN.md, "Dry-run decided once").
  const writer = dryRun ? null : createClient(clientOptions);
  const client = writer ?? createReader(clientOptions);
  const git = config.source
    ? new GitSource({
        ...config.source.git,
        checkoutDir: join(config.state_dir, "git", "checkout"),
        logger,
        env: ctx.env,
      })
    : null;
  let abandoned = false;
  try {
    const daemon = buildDaemon(ctx, config, {
      logger,
      metrics,
      concurrency: values.concurrency,
      client,
      writer,
      git,
      clock,
    });
    if (values.once) return exitCodeOf(await daemon.runOnce(!dryRun));
    const server = await startServer(values.listen ?? config.server.address, {
      readiness: () => daemon.readiness(),
      status: () => daemon.status(),
      metrics: () => {
        metrics.setReady(daemon.readiness().ready);
        metrics.setLoopState(daemon.loopState().state);
        return metrics.render();
      },
      webhook: await webhookHandler(ctx, config, daemon, metrics, logger),
      logger: logger.child({ component: "server" }),
    });
    logger.child({ component: "server" }).info({ url: server.url, port: server.port }, "listening");
    await daemon.start(triggerOptions(config, dryRun, git));
    await aborted(ctx.signal);
    abandoned = !(await shutDown(daemon, server, shutdownMs, logger));
    return abandoned ? ExitCode.error : ExitCode.ok;
  } finally {
    // Past the deadline a request may still be on the wire: closing would wait for it.
    if (!abandoned) await client.close();
  }
};

interface Wiring {
  logger: Logger;
  metrics: DaemonMetrics;
  concurrency: number;
  client: ReturnType<typeof createReader>;
  writer: ReturnType<typeof createClient> | null;
  git: GitSource | null;
  clock: Clock;
}

/** Everything a run needs; the mutating client only exists when not in dry-run. */
function buildDaemon(ctx: CliContext, config: ReconcilerConfig, w: Wiring): Daemon {
  const writer = w.writer;
  const sinks = sinkResolver(config, w.logger, ctx.env);
  const inventoryStore = new FileInventoryStore(config.state_dir);
  const journal = new FileJournalStore(config.state_dir);
  const now = w.clock;
  return new Daemon({
    config,
    policy: policyFromConfig(config),
    source: w.git
      ? gitDesiredSource(config, w.git, { now, scratchDir: join(config.state_dir, "git", "ownership") })
      : directorySource(config),
    reconcile: { reader: w.client, writer, inventoryStore, journal, sinks, logger: w.logger, now },
    rotation: engineRotationRunner(
      {
        reader: w.client,
        writer,
        sinks,
        journal,
        inventoryStore,
        logger: w.logger,
        now,
      },
      config,
    ),
    concurrency: w.concurrency,
    observer: w.metrics,
    logger: w.logger,
  });
}

function triggerOptions(
  config: ReconcilerConfig,
  dryRun: boolean,
  git: GitSource | null,
): DaemonTriggerOptions {
  const options: DaemonTriggerOptions = { intervalSeconds: config.interval };
  if (!dryRun) options.rotation = { schedule: config.rotation.schedule, timezone: config.rotation.timezone };
  if (git && config.source) {
    options.gitPoll = { git, seconds: config.source.git.interval };
  } else {
    // Secrets and state written under the desired directory must not trigger runs of their own.
    const sinkDirs = Object.values(config.sinks).flatMap((s) => sinkRegistry.localDirs(s));
    options.watch = { paths: [config.desired], ignore: [config.state_dir, ...sinkDirs] };
  }
  return options;
}

async function webhookHandler(
  ctx: CliContext,
  config: ReconcilerConfig,
  daemon: Daemon,
  metrics: DaemonMetrics,
  logger: Logger,
) {
  if (!config.webhook) return null;
  const secret = await loadWebhookSecret(config.webhook, ctx.env);
  return createWebhookHandler({
    secret,
    branch: config.source?.git.branch ?? null,
    onAccepted: () => daemon.request("webhook"),
    count: (result) => metrics.webhook(result),
    logger: logger.child({ component: "webhook" }),
  });
}

/**
 * Stops triggers and the server, lets the run in flight finish the changes it started, and waits at
 * most `deadlineMs`. False when the deadline passed with work still running.
 */
async function shutDown(
  daemon: Daemon,
  server: RunningServer,
  deadlineMs: number,
  logger: Logger,
): Promise<boolean> {
  const log = logger.child({ component: "daemon" });
  log.info(
    { deadline_ms: deadlineMs },
    "shutting down: no new triggers or changes; finishing changes in flight",
  );
  const timeout = new AbortController();
  const stopped = Promise.all([daemon.stop(), server.close()]).then(() => true);
  const expired = sleep(deadlineMs, false, { signal: timeout.signal }).catch(() => false);
  const clean = await Promise.race([stopped, expired]);
  timeout.abort();
  if (clean) log.info("stopped");
  else
    log.error(
      { deadline_ms: deadlineMs },
      "shutdown deadline passed with a run still in flight; exiting anyway",
    );
  return clean;
}

/** 0 ok, 3 unsafe, 1 anything else, conflicts included (the plan/apply exit codes). */
export function exitCodeOf(record: RunRecord): number {
  if (record.result === "ok") return (record.plan?.summary.conflicts ?? 0) > 0 ? ExitCode.error : ExitCode.ok;
  if (record.result === "unsafe") return ExitCode.unsafe;
  return ExitCode.error;
}

/** JSON lines on stdout (info by default), or pino-pretty for people. */
async function daemonLogger(
  ctx: CliContext,
  format: "json" | "pretty",
  level: string | undefined,
): Promise<Logger> {
  const chosenLevel = level ?? ctx.env["LOG_LEVEL"] ?? "info";
  if (format === "json") return createLogger({ level: chosenLevel, destination: ctx.stdout as never });
  const pretty = (await import("pino-pretty")).build;
  const colorize = (ctx.stdout as { isTTY?: boolean }).isTTY === true && ctx.env["NO_COLOR"] === undefined;
  return createLogger({
    level: chosenLevel,
    destination: pretty({ colorize, destination: ctx.stdout, sync: true }),
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolvePromise) => {
    if (signal.aborted) return resolvePromise();
    signal.addEventListener("abort", () => resolvePromise(), { once: true });
  });
}

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

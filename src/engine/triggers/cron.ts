import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "../../log.js";
import type { Trigger } from "./types.js";

export interface CronTriggerOptions {
  /** The config's `rotation.schedule` (validated at load time with node-cron). */
  schedule: string;
  /** The config's `rotation.timezone` (IANA). */
  timezone: string;
  onTick: () => void;
  logger: Logger;
}

/**
 * The rotation schedule: node-cron with the config's expression and time zone. `noOverlap` keeps a
 * tick from starting while the previous one is still running; the tick itself only requests a run
 * (rotation shares the run queue with reconciles, so the two never write at the same time).
 */
export class CronTrigger implements Trigger {
  readonly name = "rotation";
  readonly #options: CronTriggerOptions;
  #task: ScheduledTask | null = null;

  constructor(options: CronTriggerOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    const log = this.#options.logger;
    this.#task = cron.createTask(this.#options.schedule, () => this.#options.onTick(), {
      name: "rotation",
      timezone: this.#options.timezone,
      noOverlap: true,
      logger: {
        info: (message) => log.debug({ cron: true }, message),
        warn: (message) => log.warn({ cron: true }, message),
        error: (message) => log.error({ cron: true }, String(message)),
        debug: (message) => log.debug({ cron: true }, String(message)),
      },
    });
    await this.#task.start();
    log.info(
      {
        schedule: this.#options.schedule,
        timezone: this.#options.timezone,
        next: this.nextRun()?.toISOString(),
      },
      "rotation schedule started",
    );
  }

  /** The next time the schedule fires, for status. */
  nextRun(): Date | null {
    return this.#task?.getNextRun() ?? null;
  }

  async stop(): Promise<void> {
    const task = this.#task;
    this.#task = null;
    await task?.destroy();
  }
}

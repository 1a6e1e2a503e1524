import type { ScheduledTask } from "node-cron";
import { cronLib } from "../../cron-lib.js";
import type { Logger } from "../../log.js";
import { realScheduler, type Cancel, type Scheduler } from "../scheduler.js";
import type { Trigger } from "./types.js";

/**
 * How far back a late tick still looks for a matching second: 5 minutes. A stall of the event loop
 * (a long synchronous parse, a GC pause, a throttled container) that spans a matching second fires
 * once when it ends, up to this late; a longer gap (a suspended process or VM, the wall clock stepped
 * forward) is not caught up, so a `0 3 * * *` maintenance window is never answered at noon: the
 * trigger logs the fire it skipped and waits for the next one.
 */
export const CATCH_UP_SECONDS = 300;

/**
 * How far ahead {@link CronSchedule.nextAfter} looks: ten years, which takes in every schedule that
 * fires at least once in a leap cycle (`0 3 29 2 *` is eight years apart across 2100). Rarer ones
 * (29 February on a Monday) report no next run; the trigger still fires on them, since every tick
 * asks node-cron itself.
 */
export const NEXT_RUN_HORIZON_MS = 3_653 * 86_400_000;

/** Wall-clock fields of an instant in the schedule's zone, and the zone's offset then (ms). */
interface LocalTime {
  month: number;
  hour: number;
  minute: number;
  second: number;
  offsetMs: number;
}

/**
 * A cron expression in an IANA time zone, read by node-cron: {@link matches} is node-cron's own
 * `match` (on a task that is created but never started, so node-cron runs no timer of its own), and
 * the field values {@link nextAfter} skips by come from node-cron's `parse`, the same expansion its
 * matcher uses.
 *
 * {@link nextAfter} walks forward from the given instant in whole seconds, jumping over every second
 * whose month, hour, minute or second field cannot match (to the next allowed value, or to the next
 * local day), and asks node-cron only at an instant whose time of day is allowed: a "no" there is the
 * day-of-month or weekday field, so the walk moves to the next local day. A day costs a few
 * `Intl.DateTimeFormat` calls and at most one node-cron match (tens of microseconds), so a yearly
 * schedule takes about ten milliseconds and the whole horizon under a tenth of a second. A jump computed in wall-clock
 * time is only exact while the zone's offset holds: when it changes between the start and the end of
 * a jump (a DST change), the walk lands on the first second of the new offset instead, so a local
 * time after a spring-forward gap is never jumped over.
 */
export class CronSchedule {
  readonly #task: ScheduledTask;
  readonly #months: ReadonlySet<number>;
  readonly #hours: readonly number[];
  readonly #minutes: readonly number[];
  readonly #seconds: readonly number[];
  readonly #format: Intl.DateTimeFormat;

  constructor(expression: string, timezone: string) {
    const cron = cronLib();
    const fields = cron.parse(expression);
    this.#task = cron.createTask(expression, () => undefined, { timezone });
    this.#months = new Set(fields.month);
    this.#hours = [...fields.hour].sort((a, b) => a - b);
    this.#minutes = [...fields.minute].sort((a, b) => a - b);
    this.#seconds = [...fields.second].sort((a, b) => a - b);
    this.#format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  }

  /** Whether the schedule fires in the epoch second `second`. */
  matches(second: number): boolean {
    return this.#task.match(new Date(second * 1000));
  }

  /**
   * The first second after the one holding `afterMs` at which the schedule fires (epoch ms), or null
   * when there is none within `horizonMs`.
   */
  nextAfter(afterMs: number, horizonMs = NEXT_RUN_HORIZON_MS): number | null {
    const end = afterMs + horizonMs;
    let at = (Math.floor(afterMs / 1000) + 1) * 1000;
    let here = this.#local(at);
    while (at <= end) {
      let skip = this.#skip(here);
      if (skip === 0) {
        if (this.#task.match(new Date(at))) return at;
        skip = toNextDay(here); // the time of day is allowed: the day is not
      }
      let next = at + skip * 1000;
      let there = this.#local(next);
      if (there.offsetMs !== here.offsetMs) {
        next = this.#offsetChange(at, next, here.offsetMs);
        there = this.#local(next);
      }
      at = next;
      here = there;
    }
    return null;
  }

  /** Releases the node-cron task (it sits in node-cron's registry of tasks until destroyed). */
  async dispose(): Promise<void> {
    await this.#task.destroy();
  }

  /** Seconds from `here` to the next instant every time field allows; 0 when `here` is one. */
  #skip(here: LocalTime): number {
    if (!this.#months.has(here.month)) return toNextDay(here);
    if (!this.#hours.includes(here.hour)) {
      const hour = this.#hours.find((h) => h > here.hour);
      return hour === undefined
        ? toNextDay(here)
        : (hour - here.hour) * 3600 - here.minute * 60 - here.second;
    }
    if (!this.#minutes.includes(here.minute)) {
      const minute = this.#minutes.find((m) => m > here.minute);
      return minute === undefined
        ? 3600 - here.minute * 60 - here.second
        : (minute - here.minute) * 60 - here.second;
    }
    if (!this.#seconds.includes(here.second)) {
      const second = this.#seconds.find((s) => s > here.second);
      return second === undefined ? 60 - here.second : second - here.second;
    }
    return 0;
  }

  /** The first whole second in (`fromMs`, `toMs`] whose offset is no longer `offsetMs` (binary search). */
  #offsetChange(fromMs: number, toMs: number, offsetMs: number): number {
    let low = fromMs / 1000;
    let high = toMs / 1000;
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      if (this.#local(mid * 1000).offsetMs === offsetMs) low = mid;
      else high = mid;
    }
    return high * 1000;
  }

  #local(ms: number): LocalTime {
    const f = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
    for (const part of this.#format.formatToParts(new Date(ms))) {
      if (part.type in f) f[part.type as keyof typeof f] = Number(part.value);
    }
    const hour = f.hour === 24 ? 0 : f.hour;
    const wall = Date.UTC(f.year, f.month - 1, f.day, hour, f.minute, f.second);
    return { month: f.month, hour, minute: f.minute, second: f.second, offsetMs: wall - ms };
  }
}

/** Seconds from `here` to the next local midnight, were the offset to hold. */
function toNextDay(here: LocalTime): number {
  return 86_400 - (here.hour * 3600 + here.minute * 60 + here.second);
}

export interface CronTriggerOptions {
  /** The config's `rotation.schedule` (validated at load time with node-cron). */
  schedule: string;
  /** The config's `rotation.timezone` (IANA). */
  timezone: string;
  /** Called when a second matches; only requests a run (it must not throw). */
  onTick: () => void;
  logger: Logger;
  /** Clock and timers; real ones by default. */
  scheduler?: Scheduler;
}

/**
 * The rotation schedule on the daemon's clock. node-cron reads the expression and the time zone
 * ({@link CronSchedule}); the timer is the injected {@link Scheduler}'s, one tick at each whole second
 * of its clock (as node-cron itself ticks), so the daemon's tests move time instead of waiting for it.
 * A tick only requests a run: rotation shares the run queue with reconciles, so the two never write
 * at the same time, and a run already going takes the request as its follow-up.
 *
 * Each tick checks the seconds since the last one. A late tick (the event loop stalled across
 * matching seconds) fires once, however many seconds matched: a coalesced request, as the run queue
 * would make of them anyway. It looks back at most {@link CATCH_UP_SECONDS}; a fire missed by more is
 * logged and skipped. A clock that steps backwards restarts the checks at the second it now shows
 * (the seconds it replays may fire again: one more coalesced request, which rotates only what is
 * due). The second the trigger starts in is not checked.
 */
export class CronTrigger implements Trigger {
  readonly name = "rotation";
  readonly #options: CronTriggerOptions;
  readonly #clock: Scheduler;
  #schedule: CronSchedule | null = null;
  #cancel: Cancel | null = null;
  /** The last epoch second checked. */
  #checked = 0;
  #next: { from: number; at: number | null } | null = null;

  constructor(options: CronTriggerOptions) {
    this.#options = options;
    this.#clock = options.scheduler ?? realScheduler;
  }

  async start(): Promise<void> {
    this.#schedule = new CronSchedule(this.#options.schedule, this.#options.timezone);
    this.#checked = Math.floor(this.#clock.now() / 1000);
    this.#arm();
    this.#options.logger.info(
      {
        schedule: this.#options.schedule,
        timezone: this.#options.timezone,
        next: this.nextRun()?.toISOString(),
      },
      "rotation schedule started",
    );
  }

  /**
   * The next time the schedule fires after the scheduler's now, for status and the startup log; null
   * when stopped or when none is within {@link NEXT_RUN_HORIZON_MS}. Kept until that time passes (a
   * "none" is looked for again after an hour), so `/status` does not walk the calendar on each call.
   */
  nextRun(): Date | null {
    const schedule = this.#schedule;
    if (!schedule) return null;
    const now = Math.floor(this.#clock.now() / 1000) * 1000;
    const cached = this.#next;
    const fresh =
      cached !== null &&
      now >= cached.from &&
      (cached.at === null ? now < cached.from + 3_600_000 : now < cached.at);
    if (!fresh) this.#next = { from: now, at: schedule.nextAfter(now) };
    const at = this.#next?.at ?? null;
    return at === null ? null : new Date(at);
  }

  async stop(): Promise<void> {
    this.#cancel?.();
    this.#cancel = null;
    const schedule = this.#schedule;
    this.#schedule = null;
    this.#next = null;
    await schedule?.dispose();
  }

  /** Schedules the tick at the start of the next whole second. */
  #arm(): void {
    const now = this.#clock.now();
    const delay = (Math.floor(now / 1000) + 1) * 1000 - now;
    this.#cancel = this.#clock.schedule(delay, () => this.#tick());
  }

  #tick(): void {
    this.#cancel = null;
    const schedule = this.#schedule;
    if (!schedule) return;
    const now = Math.floor(this.#clock.now() / 1000);
    const log = this.#options.logger;
    if (now < this.#checked) {
      log.warn(
        { from: iso(this.#checked), to: iso(now) },
        "the clock stepped backwards; the rotation schedule is checked from now",
      );
      this.#checked = now - 1;
    }
    // A timer that fires a moment before the second it was set for (clocks disagree) checks nothing.
    const due = now > this.#checked ? this.#due(schedule, this.#checked, now) : null;
    this.#checked = Math.max(this.#checked, now);
    this.#arm();
    if (due === null) return;
    if (due < now) log.info({ due: iso(due), late_seconds: now - due }, "rotation schedule fired late");
    this.#options.onTick();
  }

  /** The first matching second in (`after`, `upTo`], at most CATCH_UP_SECONDS before `upTo`. */
  #due(schedule: CronSchedule, after: number, upTo: number): number | null {
    const from = Math.max(after + 1, upTo - CATCH_UP_SECONDS);
    if (from > after + 1) {
      const missed = schedule.nextAfter(after * 1000, (from - after - 1) * 1000);
      if (missed !== null && missed < from * 1000) {
        this.#options.logger.warn(
          { missed: iso(missed / 1000), gap_seconds: upTo - after, catch_up_seconds: CATCH_UP_SECONDS },
          "the rotation schedule missed a fire (the process or its clock jumped ahead); it is not caught up",
        );
      }
    }
    for (let second = from; second <= upTo; second++) if (schedule.matches(second)) return second;
    return null;
  }
}

function iso(second: number): string {
  return new Date(second * 1000).toISOString();
}

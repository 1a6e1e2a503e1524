/**
 * What asks the daemon for a run. Every trigger only *requests* a run; the run queue decides when it
 * starts (one at a time, coalesced, with backoff after failures), so a burst of events never becomes
 * a burst of runs.
 */

/**
 * Why a run was requested. A run started after several requests lists every reason (coalescing).
 * - `startup`: the first run after the daemon starts.
 * - `interval`: the backstop timer (drift, missed events).
 * - `watch`: a file under the watched desired-state directory changed.
 * - `git-poll`: the git source's branch moved.
 * - `webhook`: a verified `POST /hooks/git`.
 * - `rotation`: the rotation schedule fired.
 * - `retry`: the automatic retry after a failed run (after its backoff).
 * - `held-delete`: a delete held back from a directory source has waited `daemon.delete_delay`.
 */
export type TriggerReason =
  "startup" | "interval" | "watch" | "git-poll" | "webhook" | "rotation" | "retry" | "held-delete";

/** Every reason, in the order they are reported (metrics labels, status). */
export const TRIGGER_REASONS: readonly TriggerReason[] = [
  "startup",
  "interval",
  "watch",
  "git-poll",
  "webhook",
  "rotation",
  "retry",
  "held-delete",
];

/**
 * Reasons that bring news (new input, or an operator's explicit request): they start a run at once,
 * even while failures are backing off. Timer-driven reasons wait for the backoff to end.
 */
export const URGENT_REASONS: ReadonlySet<TriggerReason> = new Set([
  "startup",
  "watch",
  "git-poll",
  "webhook",
]);

/** Asks for a run; never blocks and never throws. */
export type RequestRun = (reason: TriggerReason) => void;

/**
 * A request a trigger has decided on in part but not yet made: events heard and still settling (the
 * file watcher's debounce), or a check under way whose answer may request a run (a git poll's
 * `ls-remote`). `/status` lists them under `queue.pending_triggers`, so "the daemon is idle" can be
 * read off one status instead of being guessed from a silence.
 */
export interface PendingTrigger {
  trigger: string;
  /** `debounce`: changes heard, waiting for the tree to be quiet; `check`: a tick's check running. */
  kind: "debounce" | "check";
  /** When the request is due (epoch ms), when known (a debounce's end). */
  dueAt: number | null;
  /** Distinct paths changed in the burst so far (debounce); a file created then written counts once. */
  paths: number;
}

/** A source of run requests with a lifetime: started once, stopped once. */
export interface Trigger {
  readonly name: string;
  start(): Promise<void>;
  /** Stops requesting runs; resolves once every timer and watcher is released. */
  stop(): Promise<void>;
  /** The request it is about to make, if any. Triggers that request at once have none. */
  pending?(): PendingTrigger | null;
}

/**
 * Reasons whose work stays owed until a run does it: a due rotation the schedule asked for, a held
 * delete that became eligible. A run that fails keeps them for the run after it (its retry, or the
 * run that new input starts after a stall), instead of losing them until the next schedule fire.
 */
export const CARRIED_REASONS: ReadonlySet<TriggerReason> = new Set(["rotation", "held-delete"]);

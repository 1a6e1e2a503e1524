import type { Logger } from "pino";
import type { OAuthClientsReader, OAuthClientsWriter } from "../../cloudflare/client.js";
import type { RotationPolicy } from "../../core/model.js";
import type { ErrorCode } from "../../errors.js";
import type { SinkResolver } from "../../sinks/types.js";
import type { JournalStore } from "../../state/journal.js";
import type { InventoryRecorder } from "../inventory-recorder.js";

/**
 * The secret engine's shared vocabulary: what it needs and what it reports. The engine is one job per
 * file in this directory: create.ts (a create that cannot lose its secret), resume.ts (the journal
 * first, every run), execute.ts (one planned action at a time through the journal), publish.ts (into
 * the sink and read back), report.ts (the wording). What to do is decided in
 * src/core/rotation-plan.ts only.
 *
 * The rules it keeps, whatever happens:
 * - DELETE rotate_secret is sent only once the newest secret is published (in the sink and read back
 *   equal), and for scheduled rotations only once `grace` has passed since then. The one exception is
 *   a client no secret of which was ever published (`unused`: just created by this tool, or just made
 *   confidential): nobody can hold any of its secrets, so an unknown one may go at once.
 * - A minted secret stays in the journal (mode 0600) until a sink holds it; the publish is retried on
 *   every run, first thing, and the old secret stays valid meanwhile.
 * - The exact key a secret goes to is checked before anything is minted for it (preflight: the sink
 *   writes and reads back a probe there, or asks its server the equivalent; never a real secret).
 * - A client with `has_rotated_secret: true` and no operation of ours in the journal is reported and
 *   left alone; `rotate --recover` is the explicit way out.
 * - Secrets never reach a log line, an error, a result or a status: only fingerprints and sink
 *   descriptions do.
 */

/** What the secret engine needs. The clock and the sleep are injected so tests never wait. */
export interface SecretDeps {
  reader: OAuthClientsReader;
  writer: OAuthClientsWriter;
  sinks: SinkResolver;
  journal: JournalStore;
  inventory: InventoryRecorder;
  logger: Logger;
  now: () => Date;
  signal?: AbortSignal;
  /** Waits between publish attempts. Default: a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Publish attempts per run before the secret is left in the journal for the next run. Default 3. */
  publishAttempts?: number;
}

/** One line of a report: what happened to one client's secret. Never carries a secret. */
export interface SecretOpResult {
  account_id: string;
  client_name: string;
  client_id: string | null;
  /**
   * `ok`: the work was done; `waiting`: grace is running; `attention`: left alone, an operator must
   * decide (exit 1); `failed`: an error, retried on the next run (exit 1).
   */
  status: "ok" | "waiting" | "attention" | "failed";
  /** One line, safe to print. */
  message: string;
  /** A stable code for `attention` and `failed`. */
  code?: ErrorCode;
  secret_location?: string;
}

/** The defaults (`rotation: {every: 90d, grace: 24h}`), for callers without a config. */
export const DEFAULT_ROTATION_POLICY: RotationPolicy = { every: 90 * 86_400, grace: 24 * 3_600 };

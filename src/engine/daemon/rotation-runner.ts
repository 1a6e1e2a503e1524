import type { OAuthClientsWriter } from "../../cloudflare/client.js";
import type { ReconcilerConfig } from "../../config/types.js";
import type { DesiredState } from "../../core/model.js";
import type { ClientRotationStatus } from "../../core/rotation.js";
import { GitOpsError } from "../../errors.js";
import { readRotationStatus, type RotateDeps, type RotateReport, rotateOnce } from "../rotate.js";

/**
 * The rotation engine as the daemon uses it: a seam so the daemon can run without one (tests, a
 * config that never rotates) and so the wiring decides whether writes are possible (dry-run).
 */
export interface RotationRunner {
  /** Rotates what is due and deletes old secrets whose grace has passed (engine/rotate.ts `auto`). */
  runDue(desired: DesiredState, signal: AbortSignal): Promise<RotateReport>;
  /** Per-client secret age, phase and next due time. Reads only. */
  status(desired: DesiredState, signal: AbortSignal): Promise<ClientRotationStatus[]>;
}

/**
 * The rotation runner over the secret engine (engine/rotate.ts): `auto` mode, the config's defaults and
 * `max_concurrent`. The engine never passes the stop signal into a rotation's calls, so shutdown never
 * cuts a rotation between its mint and its publish.
 */
export function engineRotationRunner(
  deps: Omit<RotateDeps, "signal" | "writer"> & { writer: OAuthClientsWriter | null },
  config: ReconcilerConfig,
): RotationRunner {
  const defaults = { every: config.rotation.every, grace: config.rotation.grace };
  const { writer, ...readDeps } = deps;
  return {
    runDue: async (desired, signal) => {
      if (!writer)
        throw new GitOpsError("E_DRY_RUN", "rotation needs the mutating client (not in --dry-run)");
      return rotateOnce(
        { ...readDeps, writer, signal },
        { desired, defaults, mode: "auto", concurrency: config.rotation.max_concurrent },
      );
    },
    status: (desired, signal) => readRotationStatus({ ...readDeps, signal }, { desired, defaults }),
  };
}

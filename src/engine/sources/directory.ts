import type { ReconcilerConfig } from "../../config/types.js";
import type { DesiredSource } from "./types.js";

/**
 * The desired state is the config's `desired:` path, read as it is on disk at each run (the daemon
 * reads it as a stable snapshot, engine/desired-snapshot.ts).
 */
export function directorySource(config: ReconcilerConfig): DesiredSource {
  return {
    kind: "directory",
    prepare: async () => ({ config, revision: null }),
    describe: () => ({ type: "directory", path: config.desired }),
  };
}

import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The test files that take longest, slowest first, as measured by a full run's JSON report
 * (`npx vitest run --reporter=json --outputFile.json=report.json`, then each file's
 * `endTime - startTime`). Most of their time is spent waiting on the real processes and timers they
 * drive, so they overlap well with the rest of the suite.
 */
export const SLOWEST_FILES: readonly string[] = [
  "test/oauth/consumer-proof.test.ts",
  "test/reliability/crash-loop.test.ts",
  "test/daemon/dispositions.test.ts",
  "test/ship/ci-kit.test.ts",
  "test/rotation/crash.test.ts",
  "test/ship/github-action.test.ts",
  "test/reliability/fault-matrix.test.ts",
  "test/cloudflare/rate-budget.e2e.test.ts",
  "test/reliability/daemon-crash.test.ts",
  "test/reliability/secret-canary.test.ts",
  "test/state/lock.test.ts",
  "test/deploy/alerts.test.ts",
  "test/reliability/webhook-abuse.test.ts",
  "test/ship/layers.test.ts",
];

/**
 * Starts the slowest files first. Vitest orders a run by the durations it cached from the last
 * one, but CI runs on a fresh clone with no cache, and vitest then falls back to file size: a minute
 * long file could start last and run alone while the other worker sat idle (a 50 s tail in a
 * 600 s run). With the long files first, the many short ones fill in around them. Files not in the
 * list keep vitest's own order after them. A listed file that no longer exists is an error, so the
 * list cannot silently go stale when a file is renamed.
 */
export class SlowestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const missing = SLOWEST_FILES.filter((file) => !existsSync(resolve(root, file)));
    if (missing.length > 0) {
      throw new Error(`test/sequencer.ts lists test files that do not exist: ${missing.join(", ")}`);
    }
    const rank = (spec: TestSpecification): number => {
      const index = SLOWEST_FILES.indexOf(relative(root, spec.moduleId).split("\\").join("/"));
      return index === -1 ? SLOWEST_FILES.length : index;
    };
    const rest = await super.sort(files);
    // Array.prototype.sort is stable: the unlisted files keep vitest's order among themselves.
    return rest.sort((a, b) => rank(a) - rank(b));
  }
}

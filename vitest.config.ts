import { defineConfig } from "vitest/config";
import { SlowestFirstSequencer } from "./test/sequencer.js";

// Tests run against real local servers (the emulator) and real processes, so they get generous
// timeouts; none asserts on wall time.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two files at a time, whatever the core count (vitest's default is one fewer than the cores: a
    // single worker on a 2-core CI machine). Most of a test's time is spent waiting on the real
    // processes and servers it starts, so a second file in flight fills that wait; no test asserts
    // on wall time, and each waits for what it needs to see rather than for a fixed while.
    maxWorkers: 2,
    // The slowest files start first: see test/sequencer.ts.
    sequence: { sequencer: SlowestFirstSequencer },
  },
});

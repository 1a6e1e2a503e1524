import { defineConfig } from "vitest/config";

// Tests run against real local servers (the emulator) and real processes, so they get generous
// timeouts; none asserts on wall time.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});

import { runAsProcess } from "../../src/cli/main.js";
import { offsetClock, parseClockOffset, TEST_CLOCK_OFFSET_ENV } from "./clock.js";

/**
 * Test-only entry point: the production CLI (src/cli/main.ts's `runAsProcess`) on a clock moved
 * ahead by CF_OAUTH_GITOPS_TEST_CLOCK_OFFSET, so crash, daemon and canary tests can run the real
 * program "days later" and see rotations fall due and grace periods end. Started through
 * test/helpers/program.ts (`program({ clockOffset })`); never shipped (it is not under src/). The
 * variable is removed from the environment the verbs see, so no sink or git child inherits it.
 */
const { [TEST_CLOCK_OFFSET_ENV]: raw, ...env } = process.env;
if (raw === undefined) {
  process.stderr.write(`cli-with-clock: ${TEST_CLOCK_OFFSET_ENV} is not set\n`);
  process.exit(1);
}
await runAsProcess(offsetClock(parseClockOffset(raw)), env);

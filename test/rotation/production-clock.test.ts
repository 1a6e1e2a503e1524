import { describe, expect, it } from "vitest";
import type { ClientRotationStatus } from "../../src/core/rotation.js";
import type { Plan } from "../../src/core/plan-types.js";
import { TEST_CLOCK_OFFSET_ENV } from "../helpers/clock.js";
import { useEmulator } from "../helpers/emulator.js";
import { runProgram } from "../reliability/support.js";
import { makeRotationWorkspace, ROUTE, routeCount, stats } from "./support.js";

/**
 * The production program runs on the wall clock, whatever its environment says. A clock variable left
 * in a daemon's environment once made it see every secret as 90 days old: rotate everything, and
 * delete the old secrets before their grace had passed. Only the test entry point
 * (test/helpers/cli-with-clock.ts) can move the clock, and it is checked here too, so that a status
 * that shows nothing due means the production program ignored the variables, not that the probe
 * cannot see a moved clock.
 */

const DAY = 86_400;
/** Both names: the one the program used to read, and the test entry point's. */
const STRAY = { CF_OAUTH_GITOPS_CLOCK_OFFSET: "91d", [TEST_CLOCK_OFFSET_ENV]: "91d" };

describe("the production program's clock", () => {
  const emu = useEmulator();

  it("ignores clock offset variables: 91 days 'later' nothing is due, plan and rotate change nothing", async () => {
    const ws = await makeRotationWorkspace(emu(), { every: "90d", grace: "1d" });
    await ws.writeClients(["alpha"]);
    expect((await ws.run("apply")).code).toBe(0);
    const child = (args: string[], clockOffset?: string) =>
      runProgram(
        [args[0] as string, "-c", ws.config, ...args.slice(1)],
        ws.env({ env: STRAY }),
        ws.dir,
        clockOffset === undefined ? {} : { clockOffset },
      );

    const status = await child(["rotate", "--status", "--format", "json"]);
    expect(status.code, status.stderr).toBe(0);
    const [alpha] = JSON.parse(status.stdout) as ClientRotationStatus[];
    expect(alpha).toMatchObject({ client_name: "alpha", phase: "idle" });
    expect(alpha?.age_seconds).toBeLessThan(DAY);

    const plan = await child(["plan", "--format", "json"]);
    expect(plan.code, plan.stderr).toBe(0);
    expect((JSON.parse(plan.stdout) as Plan).rotations).toEqual([]);

    const before = routeCount(await stats(emu()), ROUTE.rotate);
    const rotate = await child(["rotate"]);
    expect(rotate.code, rotate.stdout + rotate.stderr).toBe(0);
    expect(routeCount(await stats(emu()), ROUTE.rotate)).toBe(before);

    // The probe sees a moved clock: the test entry point, 91 days on, finds the secret due.
    const moved = await child(["rotate", "--status", "--format", "json"], "91d");
    expect(moved.code, moved.stderr).toBe(0);
    const [movedAlpha] = JSON.parse(moved.stdout) as ClientRotationStatus[];
    expect(movedAlpha).toMatchObject({ client_name: "alpha", phase: "due" });
    expect(movedAlpha?.age_seconds).toBeGreaterThanOrEqual(91 * DAY - 60);
  });
});

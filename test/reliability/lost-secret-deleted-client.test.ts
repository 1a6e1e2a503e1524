import { writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { liveClients } from "../e2e/support.js";
import { control, startTestEmulator } from "../helpers/emulator.js";
import { makeRotationWorkspace } from "../rotation/support.js";

/**
 * Found by the crash loop under `npm run chaos` (seed 20261126): a rotation whose new secret was lost
 * (rotate_secret committed, its answer never reached the journal: E_ROTATION_SECRET_LOST) blocks its
 * client until an operator runs `rotate --recover --client NAME`. If the client is deleted meanwhile
 * (removed from the desired state with `prune: owned`, `ensure: absent`, or by hand), nothing is at
 * stake any more: the next run drops the blocked entry (compactJournal) and exits 0.
 */
describe("a lost rotation of a client that is then deleted", () => {
  it("stops blocking runs once the client is gone", async () => {
    const emu = await startTestEmulator();
    const ws = await makeRotationWorkspace(emu);
    await writeFile(
      ws.config,
      stringify({
        account_id: ws.accountId,
        desired: "./desired",
        state_dir: "./state",
        prune: "owned",
        sinks: { default: { type: "file", dir: "./secrets" } },
        rotation: { every: "10d", grace: "1d" },
      }),
    );
    await ws.writeClients(["keep", "gone"]);
    expect((await ws.run("apply")).code).toBe(0);

    // rotate_secret commits, its answer is lost: the new secret is gone for good.
    await control(emu, "POST", "faults", { faultDropAfterCommitRate: 1 });
    const lost = await ws.run("rotate", ["--now", "--client", "gone"]);
    await control(emu, "POST", "faults", { faultDropAfterCommitRate: 0 });
    expect(lost.stdout).toContain("E_ROTATION_SECRET_LOST");

    await ws.writeClients(["keep"]);
    const deleted = await ws.run("apply");
    expect(deleted.stdout).toMatch(/✓ delete \[[0-9a-f]{32}\/gone\]/);
    expect((await liveClients(emu, ws.accountId)).map((c) => c.client_name)).toEqual(["keep"]);

    // The client is gone, so its blocked entry is moot: runs exit 0 and the journal forgets it.
    const apply = await ws.run("apply");
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).not.toContain("E_ROTATION_SECRET_LOST");
    const rotate = await ws.run("rotate");
    expect(rotate.code, rotate.stdout + rotate.stderr).toBe(0);
    expect(rotate.stdout).not.toContain("E_ROTATION_SECRET_LOST");
    const entries = (await ws.journalFiles()).filter((f) => f.json["client_name"] === "gone");
    expect(entries).toEqual([]);
  });
});

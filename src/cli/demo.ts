import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startEmulator } from "../emulator/index.js";
import { GitOpsError } from "../errors.js";
import type { VerbRun } from "./frame.js";
import { ExitCode } from "./io.js";
import type { DEMO } from "./verbs.js";

const EXAMPLES = fileURLToPath(new URL("../../config/examples", import.meta.url));
const DEMO_TOKEN = "demo-token";

/**
 * `demo` (`npm run demo`): the whole tool on one screen, with nothing to set up. Starts the embedded
 * emulator on a free port, copies `config/examples` to a temporary directory, plans, applies, plans
 * again (no changes), shows where the secrets went (paths, never values), and stops.
 */
export const runDemo: VerbRun<typeof DEMO> = async (ctx, values) => {
  const { dispatch } = ctx;
  if (!dispatch) throw new GitOpsError("E_USAGE", "demo: must be started through the command dispatcher");
  const keep = values.keep;
  const work = await mkdtemp(join(tmpdir(), "cf-oauth-gitops-demo-"));
  await cp(EXAMPLES, work, { recursive: true });
  const emulator = await startEmulator({ port: 0, seed: 7, tokens: [DEMO_TOKEN] });
  const env = { ...ctx.env, CLOUDFLARE_BASE_URL: emulator.url, CLOUDFLARE_API_TOKEN: DEMO_TOKEN };
  const config = join(work, "cf-oauth-gitops.yaml");
  const step = async (title: string, argv: string[]): Promise<number> => {
    ctx.stdout.write(`\n━━ ${title}\n$ cf-oauth-gitops ${argv.join(" ")}\n\n`);
    const code = await dispatch(argv, { ...ctx, env, cwd: work });
    ctx.stdout.write(`(exit ${code})\n`);
    return code;
  };
  try {
    ctx.stdout.write(`Emulator: ${emulator.url}\nWorking copy of config/examples: ${work}\n`);
    if ((await step("1. Validate the desired state", ["validate", "-c", config])) !== 0)
      return ExitCode.error;
    await step("2. Plan against an empty account", ["plan", "-c", config, "--detailed-exitcode"]);
    if ((await step("3. Apply", ["apply", "-c", config])) !== 0) return ExitCode.error;
    const again = await step("4. Plan again: nothing left to do", [
      "plan",
      "-c",
      config,
      "--detailed-exitcode",
    ]);
    ctx.stdout.write(`\n━━ 5. Where the secrets went (mode 0600; values never printed)\n`);
    for (const account of await readdir(join(work, "secrets"))) {
      for (const file of await readdir(join(work, "secrets", account))) {
        ctx.stdout.write(`  secrets/${account}/${file}\n`);
      }
    }
    ctx.stdout.write(`\nOwnership inventory: ${join(work, ".cf-oauth-gitops", "inventory.json")}\n`);
    return again === ExitCode.ok ? ExitCode.ok : ExitCode.error;
  } finally {
    await emulator.stop();
    if (!keep) await rm(work, { recursive: true, force: true });
    else ctx.stdout.write(`Kept ${work}\n`);
  }
};

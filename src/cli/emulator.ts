import { resolve } from "node:path";
import { startEmulator, type EmulatorOptions } from "../emulator/index.js";
import { command, type VerbRun } from "./frame.js";
import { type Command, ExitCode } from "./io.js";
import { EMULATOR } from "./verbs.js";

/**
 * `cf-oauth-gitops emulator`: runs the local Cloudflare OAuth-clients API emulator (and OAuth
 * authorization server) until SIGTERM or SIGINT. Prints exactly two lines, `listening on
 * http://HOST:PORT/client/v4` then `oauth issuer http://HOST:PORT`, so a script or a test can start it
 * on `--port 0` and read the URL to use as CLOUDFLARE_BASE_URL and the issuer a login library
 * discovers. Its options, and their checks, are in src/cli/verbs.ts.
 */
export const runEmulator: VerbRun<typeof EMULATOR> = async (ctx, values) => {
  const handle = await startEmulator(emulatorOptions(values, ctx.cwd));
  ctx.stdout.write(`listening on ${handle.url}\noauth issuer ${handle.issuer}\n`);
  await new Promise<void>((resolvePromise) => {
    if (ctx.signal.aborted) return resolvePromise();
    ctx.signal.addEventListener("abort", () => resolvePromise(), { once: true });
  });
  await handle.stop();
  return ExitCode.ok;
};

/** The verb with its options, for callers that run it in-process (tests). */
export const emulatorCommand: Command = command(EMULATOR, runEmulator);

/** The checked options as the emulator takes them: only what was given, paths against `cwd`. */
function emulatorOptions(values: Parameters<VerbRun<typeof EMULATOR>>[1], cwd: string): EmulatorOptions {
  const options: EmulatorOptions = {};
  if (values.host !== undefined) options.host = values.host;
  if (values.port !== undefined) options.port = values.port;
  if (values.token.length > 0) options.tokens = values.token;
  if (values["read-only-token"].length > 0) options.readOnlyTokens = values["read-only-token"];
  if (values["rate-limit"] !== undefined) options.rateLimit = values["rate-limit"];
  if (values.state !== undefined) options.statePath = resolve(cwd, values.state);
  if (values.seed !== undefined) options.seed = values.seed;
  if (values["latency-ms"] !== undefined) options.latencyMs = values["latency-ms"];
  if (values["fault-5xx"] !== undefined) options.fault5xxRate = values["fault-5xx"];
  if (values["fault-reset"] !== undefined) options.faultResetRate = values["fault-reset"];
  if (values["fault-drop-after-commit"] !== undefined) {
    options.faultDropAfterCommitRate = values["fault-drop-after-commit"];
  }
  if (values.scopes !== undefined) options.scopesFile = resolve(cwd, values.scopes);
  if (values["oauth-user"] !== undefined) options.oauthUser = values["oauth-user"];
  return options;
}

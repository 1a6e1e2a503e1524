import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import type { LoadedDesiredState, ReconcilerConfig } from "../../src/config/types.js";
import { ConfigError } from "../../src/errors.js";

/** Repository root, whatever the working directory of the test run. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const FIXTURES = join(ROOT, "test", "fixtures");

export const ACCOUNT = "0123456789abcdef0123456789abcdef";

/** A valid confidential client body, as YAML lines indented for a `clients:` item. */
export function clientYaml(name: string, extra = ""): string {
  return `  - client_name: ${name}
    token_endpoint_auth_method: client_secret_basic
    grant_types: [authorization_code]
    response_types: [code]
    redirect_uris: [https://${name}.example.com/callback]
    scopes: [account-settings.read]
${extra}`;
}

/** A temp directory with the given files (path -> content); removed by the returned cleanup. */
export async function tempTree(
  files: Record<string, string | Uint8Array>,
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "cfg-test-"));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Loads config and desired state from `dir`, naming files relative to `dir`. */
export async function loadAll(
  dir: string,
  config = "cf-oauth-gitops.yaml",
): Promise<{ config: ReconcilerConfig; state: LoadedDesiredState }> {
  const loaded = await loadConfig(config, { cwd: dir });
  return { config: loaded, state: await loadDesiredState(loaded) };
}

/** The ConfigError a promise rejects with; fails the test when it resolves or throws something else. */
export async function configErrorOf(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw new Error(`expected a ConfigError, got ${String(error)}`, { cause: error });
  }
  throw new Error("expected a ConfigError, but loading succeeded");
}

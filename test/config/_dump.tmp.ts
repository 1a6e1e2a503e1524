import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
import { ConfigError, GitOpsError } from "../../src/errors.js";
const root = "test/fixtures/bad";
const shared = await loadConfig("test/fixtures/minimal/cf-oauth-gitops.yaml");
for (const name of readdirSync(root).sort()) {
  const full = join(process.cwd(), root, name);
  try {
    if (statSync(full).isDirectory()) {
      const config = await loadConfig(join(name, "cf-oauth-gitops.yaml"), { cwd: join(process.cwd(), root) });
      await loadDesiredState(config);
    } else {
      await loadDesiredState({ ...shared, desired: full, display_root: join(process.cwd(), root) });
    }
    console.log(name, "NO ERROR");
  } catch (e) {
    if (e instanceof ConfigError) for (const i of e.issues) console.log(`${name} | ${i.code} | ${i.file}:${i.line}:${i.col} | ${i.path} | ${i.message}`);
    else console.log(name, "OTHER", (e as GitOpsError).code, (e as Error).message);
  }
}

import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { renderConfigReference } from "../../src/cli/reference.js";
import { configJsonSchema, desiredStateJsonSchema } from "../../src/config/index.js";

describe("docs/CONFIGURATION.md", () => {
  it("is exactly what `schema --reference` generates from the current schemas", async () => {
    const committed = await readFile(new URL("../../docs/CONFIGURATION.md", import.meta.url), "utf8");
    const generated = renderConfigReference(configJsonSchema(), desiredStateJsonSchema());
    // On failure: npx tsx src/cli/main.ts schema --reference > docs/CONFIGURATION.md
    expect(committed).toBe(generated);
  });

  it("documents every top-level config key and every sink type", () => {
    const text = renderConfigReference(configJsonSchema(), desiredStateJsonSchema());
    for (const key of [
      "desired",
      "prune",
      "safety.max_deletes",
      "rotation.grace",
      "sinks.<name>.path_prefix",
    ]) {
      expect(text).toContain(`\`${key}\``);
    }
    for (const type of ["file", "exec", "vault", "kubernetes"]) expect(text).toContain(`(type: ${type})`);
  });
});

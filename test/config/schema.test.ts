import { readFileSync, readdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { GRANT_TYPES, REQUIRED_FIELDS, TOKEN_ENDPOINT_AUTH_METHODS } from "../../src/api/oauth-clients.js";
import { configJsonSchema, desiredStateJsonSchema } from "../../src/config/index.js";
import { DURATION_PATTERN, tryParseDuration } from "../../src/config/duration.js";
import { ROOT } from "./support.js";

const REGENERATE =
  "npx tsx src/cli/main.ts schema > config/schema/desired.schema.json && npx tsx src/cli/main.ts schema --config > config/schema/config.schema.json";

function committed(name: string): unknown {
  return JSON.parse(readFileSync(join(ROOT, "config/schema", name), "utf8"));
}

type JsonObject = Record<string, unknown>;
const at = (value: unknown, ...keys: string[]): JsonObject =>
  keys.reduce<JsonObject>((node, key) => node[key] as JsonObject, value as JsonObject);

describe("JSON Schemas", () => {
  it(`committed schema files are up to date (regenerate: ${REGENERATE})`, () => {
    expect(committed("desired.schema.json")).toEqual(desiredStateJsonSchema());
    expect(committed("config.schema.json")).toEqual(configJsonSchema());
  });

  it("describes a desired client the way the validator does", () => {
    const client = at(desiredStateJsonSchema(), "properties", "clients", "items");
    expect(client.additionalProperties).toBe(false);
    expect(at(client, "else").required).toEqual([...REQUIRED_FIELDS]);
    expect(at(client, "properties", "token_endpoint_auth_method").enum).toEqual([
      ...TOKEN_ENDPOINT_AUTH_METHODS,
    ]);
    const grants = at(client, "properties", "grant_types");
    expect(at(grants, "items").enum).toEqual([...GRANT_TYPES]);
    expect(grants.contains).toEqual({ const: "authorization_code" });
    expect(at(client, "properties", "scopes", "items").pattern).toBe("^[^:\\s]+$");
    // An omitted API field has no default: the entry is the whole truth.
    for (const field of [
      "redirect_uris",
      "scopes",
      "optional_scopes",
      "client_uri",
      "allowed_cors_origins",
    ]) {
      expect(at(client, "properties", field)).not.toHaveProperty("default");
    }
    expect(at(client, "properties", "visibility").default).toBe("private");
  });

  it("uses a duration pattern that accepts exactly what parseDuration accepts", () => {
    const re = new RegExp(DURATION_PATTERN);
    for (const text of [
      "30s",
      "10m",
      "24h",
      "90d",
      "1h30m",
      "0s",
      "",
      "10",
      "1.5h",
      "90 days",
      "30m1h",
      "5w",
    ]) {
      expect(re.test(text), text).toBe(tryParseDuration(text) !== undefined);
    }
    const interval = at(configJsonSchema(), "properties", "interval");
    expect(interval).toMatchObject({ pattern: DURATION_PATTERN, default: "10m" });
  });

  it("documents the default sink in the config schema", () => {
    expect(at(configJsonSchema(), "properties", "sinks").default).toEqual({
      default: { type: "file", dir: "secrets" },
    });
  });

  it("every example file points its editor at a schema file that exists", () => {
    const examples = join(ROOT, "config/examples");
    const files = [
      join(examples, "cf-oauth-gitops.yaml"),
      ...readdirSync(join(examples, "desired")).map((f) => join(examples, "desired", f)),
    ];
    for (const file of files) {
      const first = readFileSync(file, "utf8").split("\n")[0] ?? "";
      const match = /^# yaml-language-server: \$schema=(.+)$/.exec(first);
      expect(match, file).not.toBeNull();
      expect(existsSync(join(dirname(file), match?.[1] ?? "")), file).toBe(true);
    }
  });
});

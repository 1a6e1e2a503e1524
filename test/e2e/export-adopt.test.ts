import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ACCOUNT_A, READ_TOKEN, startTestEmulator, verifyClientUri } from "../helpers/emulator.js";
import {
  LIST_ROUTE,
  confidential,
  createDirect,
  liveClients,
  makeWorkspace,
  measure,
  publicClient,
} from "./support.js";

/**
 * Adopting an existing account (README, "Point it at a real account"): clients made in the dashboard,
 * `export --account ID --out desired/exported.yaml`, then `plan --detailed-exitcode` shows no change
 * (adoptions only), and `apply` records every client in the inventory as adopted without an API write.
 */

/** Hand-made clients covering every writable field and the protocol-scope rules. */
async function dashboardClients(emu: Awaited<ReturnType<typeof startTestEmulator>>) {
  const full = await createDirect(
    emu,
    ACCOUNT_A,
    confidential("Acme Dashboard", {
      token_endpoint_auth_method: "client_secret_post",
      grant_types: ["refresh_token", "authorization_code"],
      response_types: ["code", "id_token"],
      redirect_uris: ["https://dash.acme.example/cb", "https://dash.acme.example/cb2"],
      post_logout_redirect_uris: ["https://dash.acme.example/"],
      scopes: ["zone.read", "account-settings.read", "email", "openid", "offline_access"],
      optional_scopes: ["zone.read"],
      client_uri: "https://dash.acme.example",
      logo_uri: "https://dash.acme.example/logo.png",
      policy_uri: "https://acme.example/privacy",
      tos_uri: "https://acme.example/terms",
      allowed_cors_origins: ["https://dash.acme.example"],
    }),
  );
  const cli = await createDirect(
    emu,
    ACCOUNT_A,
    publicClient("acme-cli", { redirect_uris: ["http://127.0.0.1:8976/cb"] }),
  );
  const bare = await createDirect(emu, ACCOUNT_A, confidential("bare", { scopes: [] }));
  return [full, cli, bare];
}

describe("adoption by export", () => {
  it("export, then plan shows only adoptions, then apply records them as adopted with no write", async () => {
    const emu = await startTestEmulator();
    const made = await dashboardClients(emu);
    // A verified client_uri host too (exported as is; nothing to re-send).
    await verifyClientUri(emu, ACCOUNT_A, made[0]!.client_id);
    const ws = await makeWorkspace(emu);

    const exported = await measure(emu, () =>
      ws.run("export", ["--account", ACCOUNT_A, "--out", "desired/exported.yaml"], {
        CLOUDFLARE_API_TOKEN: READ_TOKEN,
      }),
    );
    expect(exported.value.code, exported.value.stderr).toBe(0);
    expect(exported.value.stderr).toContain(`exported 3 clients of ${ACCOUNT_A} to desired/exported.yaml`);
    expect(exported.delta).toEqual({ total: 1, by_route: { [LIST_ROUTE]: 1 }, by_method: { GET: 1 } });
    const text = await readFile(join(ws.desiredDir, "exported.yaml"), "utf8");
    for (const c of made) expect(text).toContain(`client_id: ${c.client_id}`);
    expect(text).not.toMatch(/client_secret:/);
    for (const c of made) if (c.client_secret) expect(text).not.toContain(c.client_secret);
    expect((await ws.run("validate")).code).toBe(0);

    const detailed = await ws.run("plan", ["--detailed-exitcode"], { CLOUDFLARE_API_TOKEN: READ_TOKEN });
    expect(detailed.code, detailed.stdout).toBe(0);
    const plan = await ws.planJson(0);
    expect(plan.summary).toMatchObject({ create: 0, update: 0, delete: 0, conflicts: 0, adoptions: 3 });
    expect(plan.adoptions.map((a) => a.client_id).sort()).toEqual(made.map((c) => c.client_id).sort());

    const { value: applied, delta } = await measure(emu, () => ws.run("apply"));
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain("3 adopted");
    expect(delta.by_method).toEqual({ GET: 1 });
    const owned = await ws.owned(ACCOUNT_A);
    expect(owned.map((e) => [e.client_id, e.client_name, e.origin]).sort()).toEqual(
      made.map((c) => [c.client_id, c.client_name, "adopted"]).sort(),
    );
    // Live clients are exactly as they were made.
    expect(await liveClients(emu, ACCOUNT_A)).toHaveLength(3);

    // Now converged: no adoptions left either.
    const after = await ws.planJson(0, ["--detailed-exitcode"]);
    expect(after.adoptions).toEqual([]);
    expect(after.changes).toEqual([]);
  });

  it("export to stdout writes the same document; an edit to the export then plans an update", async () => {
    const emu = await startTestEmulator();
    await dashboardClients(emu);
    const ws = await makeWorkspace(emu);
    const out = await ws.run("export", ["--account", ACCOUNT_A]);
    expect(out.code).toBe(0);
    await ws.writeRaw(
      "desired/exported.yaml",
      out.stdout.replace("https://acme.example/terms", "https://acme.example/tos"),
    );
    const plan = await ws.planJson(0);
    expect(plan.summary).toMatchObject({ create: 0, update: 1, delete: 0 });
    const update = plan.changes[0];
    expect(update?.kind === "update" ? update.body : null).toEqual({ tos_uri: "https://acme.example/tos" });
  });
});

import { describe, expect, it } from "vitest";
import type { OAuthClientsReader } from "../../src/cloudflare/client.js";
import { clientOptionsFromEnv, CloudflareApiError, createReader } from "../../src/cloudflare/index.js";
import { expectedClients } from "../../src/core/listing.js";
import { listLiveClients } from "../../src/engine/live.js";
import { GitOpsError } from "../../src/errors.js";
import { ACCOUNT_A, control, startTestEmulator } from "../helpers/emulator.js";
import { cliEnv, confidential, liveClients, makeWorkspace } from "./support.js";

/**
 * engine/live.ts against the emulator: a client the inventory owns that a list left out is looked up
 * with a GET. A lookup that fails (anything but 200 or 404) proves nothing either way, so the read
 * fails (E_LIST_UNCONFIRMED, transient) and nothing is planned; the real reader's GET finds the
 * client and the read fails as incomplete (E_LIST_INCOMPLETE). test/e2e/list-omissions.test.ts runs
 * the same through the CLI.
 */

describe("listLiveClients (engine/live.ts) with a lookup that fails", () => {
  it("E_LIST_UNCONFIRMED, transient: neither listed nor confirmed gone is no evidence", async () => {
    const emu = await startTestEmulator();
    const ws = await makeWorkspace(emu);
    await ws.writeDesired(
      "apps.yaml",
      ACCOUNT_A,
      ["a", "b", "c"].map((n) => confidential(n)),
    );
    expect((await ws.run("apply")).code).toBe(0);
    const hidden = (await liveClients(emu, ACCOUNT_A)).find((c) => c.client_name === "a")!.client_id;
    await control(emu, "POST", "faults", { listDropIds: [hidden] });
    const api = createReader(clientOptionsFromEnv(cliEnv(emu)));
    // The real reader, except that a GET of a client fails the way a 500 does after its retries.
    const flaky: OAuthClientsReader = {
      listClients: (account, opts) => api.listClients(account, opts),
      listScopes: (opts) => api.listScopes(opts),
      getClient: (account, clientId) =>
        Promise.reject(
          new CloudflareApiError("E_API_HTTP", `GET /accounts/${account}/oauth_clients/${clientId}: 500`, {
            method: "GET",
            route: "/accounts/:account_id/oauth_clients/:client_id",
            path: `/accounts/${account}/oauth_clients/${clientId}`,
            status: 500,
            retryable: true,
          }),
        ),
    };
    try {
      const inventory = await ws.inventory();
      const expected = expectedClients([ACCOUNT_A], { accounts: new Map(), files: [] }, inventory);
      const error = await listLiveClients(flaky, [ACCOUNT_A], undefined, expected).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(GitOpsError);
      expect(error).toMatchObject({ code: "E_LIST_UNCONFIRMED", disposition: "transient" });
      expect((error as Error).message).toContain(
        `the list showed 2 clients and the inventory owns 3; client ${hidden} was not listed and could not be looked up (E_API_HTTP: GET /accounts/${ACCOUNT_A}/oauth_clients/${hidden}: 500)`,
      );
      // With the real GET, the same list is judged incomplete instead.
      const real = await listLiveClients(api, [ACCOUNT_A], undefined, expected).then(
        () => null,
        (e: unknown) => e,
      );
      expect(real).toMatchObject({ code: "E_LIST_INCOMPLETE", disposition: "transient" });
    } finally {
      await api.close();
    }
  });
});

import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { loadConfig, loadDesiredState } from "../../src/config/index.js";
const dir = mkdtempSync(join(tmpdir(), "bench-"));
mkdirSync(join(dir, "desired"));
writeFileSync(join(dir, "cf-oauth-gitops.yaml"), "account_id: 0123456789abcdef0123456789abcdef\ndesired: ./desired\n");
const entry = (i: number) => `  - client_name: client-${i}
    token_endpoint_auth_method: client_secret_basic
    grant_types: [authorization_code, refresh_token]
    response_types: [code]
    redirect_uris: [https://app-${i}.example.com/callback]
    scopes: [account-settings.read, zone.read]
    optional_scopes: [zone.read]
    client_uri: https://app-${i}.example.com
    allowed_cors_origins: [https://app-${i}.example.com]
`;
writeFileSync(join(dir, "desired", "all.yaml"), "clients:\n" + Array.from({ length: 10000 }, (_, i) => entry(i)).join(""));
const config = await loadConfig(join(dir, "cf-oauth-gitops.yaml"));
const t = performance.now();
await loadDesiredState(config);
console.log("load", (performance.now() - t).toFixed(0));

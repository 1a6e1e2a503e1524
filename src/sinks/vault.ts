import { z } from "zod";
import { envNameSchema, httpUrl, nonEmpty } from "../config/fields.js";
import { defineSink, type SinkConfigOf } from "./descriptor.js";
import { describeVaultRecord, vaultBase, vaultDataPath } from "./naming.js";

/**
 * The `vault` sink's descriptor: HashiCorp Vault KV version 2. The implementation (src/sinks/vault-sink.ts,
 * over HTTP) is loaded when the sink is first used, so `validate` never loads the HTTP stack.
 */

export const vaultSink = defineSink({
  type: "vault",
  options: {
    address: httpUrl("Vault address, e.g. `https://vault.example.com:8200`."),
    mount: nonEmpty
      .default("secret")
      .meta({ description: "KV version 2 mount (a version 1 mount is refused: it has no check-and-set)." }),
    path_prefix: z.string().meta({ description: "Path under the mount; the secret key is appended." }),
    token_env: envNameSchema.optional(),
    token_file: nonEmpty
      .optional()
      .meta({ description: "File holding a Vault token, relative to the config file." }),
    kubernetes_role: nonEmpty
      .optional()
      .meta({ description: "Log in with the Kubernetes auth method as this role." }),
    kubernetes_token_file: nonEmpty
      .optional()
      .meta({ description: "Service-account token for the Kubernetes login, relative to this file." }),
    auth_mount: nonEmpty
      .optional()
      .meta({ description: "Mount of the Kubernetes auth method (default `kubernetes`)." }),
    namespace: nonEmpty.optional().meta({ description: "Vault Enterprise namespace." }),
    ca_file: nonEmpty.optional().meta({
      description:
        "PEM CA bundle that signs Vault's certificate, relative to this file; trusted instead of the system's CAs. `VAULT_CACERT` when left out.",
    }),
    tls_server_name: nonEmpty.optional().meta({
      description:
        "Name Vault's certificate must carry (and the SNI sent) when it differs from the address's host. `VAULT_TLS_SERVER_NAME` when left out.",
    }),
  },
  // No token in the config: only where to read one from.
  paths: ["token_file", "kubernetes_token_file", "ca_file"],
  describe: describeVaultRecord,
  placement(config, address) {
    const base = vaultBase(config.address);
    const data = vaultDataPath(config, address);
    // One path in two namespaces is two places.
    return {
      id: `vault:${base}\u0000${config.namespace ?? ""}\u0000${data}`,
      shown: `vault ${base}/v1/${data}`,
    };
  },
  async create(config, { name, logger, env, now }) {
    const { VaultSink } = await import("./vault-sink.js");
    return new VaultSink({
      name,
      logger,
      env,
      now,
      address: config.address,
      mount: config.mount,
      path_prefix: config.path_prefix,
      token_env: config.token_env,
      token_file: config.token_file,
      kubernetes_role: config.kubernetes_role,
      kubernetes_token_file: config.kubernetes_token_file,
      auth_mount: config.auth_mount,
      namespace: config.namespace,
      ca_file: config.ca_file,
      tls_server_name: config.tls_server_name,
    });
  },
});

/** A `vault` entry of the loaded config: the file paths absolute. */
export type VaultSinkConfig = SinkConfigOf<typeof vaultSink>;

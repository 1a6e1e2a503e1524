import { z } from "zod";
import { httpUrl, nonEmpty, patternCheck, show, withCheck } from "../config/fields.js";
import { defineSink, type SinkConfigOf } from "./descriptor.js";
import { describeKubernetesRecord, kubernetesName } from "./naming.js";

/**
 * The `kubernetes` sink's descriptor: an Opaque Secret per client in one namespace. The
 * implementation (src/sinks/kubernetes-sink.ts, over HTTP) is loaded when the sink is first used.
 */

const K8S_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const kubernetesSink = defineSink({
  type: "kubernetes",
  options: {
    namespace: withCheck(
      z.string(),
      patternCheck(
        K8S_NAME_RE,
        "E_BAD_NAMESPACE",
        (v) => `\`${show(v)}\` is not a Kubernetes namespace name`,
      ),
    ),
    name_prefix: z.string().optional(),
    api_server: httpUrl("API server URL; in-cluster settings when left out.").optional(),
    token_file: nonEmpty.optional().meta({ description: "Bearer token file, relative to this file." }),
    ca_file: nonEmpty.optional().meta({ description: "CA bundle of the API server, relative to this file." }),
  },
  // In-cluster defaults (the service account's token and CA) when the files are left out.
  paths: ["token_file", "ca_file"],
  describe: describeKubernetesRecord,
  placement(config, address) {
    const name = kubernetesName(config.name_prefix ?? "", address.key);
    return {
      id: `kubernetes:${config.api_server ?? "in-cluster"}\u0000${config.namespace}\u0000${name}`,
      shown: `kubernetes Secret ${config.namespace}/${name}`,
    };
  },
  async create(config, { name, logger, env }) {
    const { KubernetesSink } = await import("./kubernetes-sink.js");
    return new KubernetesSink({
      name,
      logger,
      env,
      namespace: config.namespace,
      name_prefix: config.name_prefix,
      api_server: config.api_server,
      token_file: config.token_file,
      ca_file: config.ca_file,
    });
  },
});

/** A `kubernetes` entry of the loaded config: the file paths absolute. */
export type KubernetesSinkConfig = SinkConfigOf<typeof kubernetesSink>;

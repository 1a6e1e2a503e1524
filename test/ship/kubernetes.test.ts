import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

/**
 * The kustomize base renders with `kubectl kustomize` (kubectl ships on the project's machines) and
 * every document parses. The checks below are the properties the manifests exist for: one replica
 * replaced (never two reconcilers), least privilege, a non-root read-only container, and probes on
 * the daemon's endpoints.
 */
const rendered = execFileSync("kubectl", ["kustomize", "deploy/kubernetes"], { encoding: "utf8" });
const docs = parseAllDocuments(rendered).map((doc) => {
  expect(doc.errors).toEqual([]);
  return doc.toJS() as { kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
});
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);

describe("deploy/kubernetes", () => {
  it("renders every resource the daemon needs", () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(
      [
        "ConfigMap",
        "Deployment",
        "Namespace",
        "PersistentVolumeClaim",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
      ].sort(),
    );
    for (const doc of docs.filter((d) => d.kind !== "Namespace")) {
      expect(doc.metadata.namespace, doc.kind).toBe("cf-oauth-gitops");
    }
  });

  it("runs one replica with Recreate, non-root, read-only root, no capabilities, probes on /healthz and /readyz", () => {
    const deployment = byKind("Deployment")[0] as unknown as {
      spec: {
        replicas: number;
        strategy: { type: string };
        template: {
          spec: {
            serviceAccountName: string;
            securityContext: { runAsNonRoot: boolean; runAsUser: number };
            containers: {
              args: string[];
              securityContext: { readOnlyRootFilesystem: boolean; capabilities: { drop: string[] } };
              livenessProbe: { httpGet: { path: string } };
              readinessProbe: { httpGet: { path: string } };
              resources: { requests: unknown; limits: unknown };
              volumeMounts: { mountPath: string }[];
            }[];
          };
        };
      };
    };
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe("Recreate");
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe("cf-oauth-gitops");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    const container = pod.containers[0];
    expect(container?.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container?.securityContext.capabilities.drop).toEqual(["ALL"]);
    expect(container?.livenessProbe.httpGet.path).toBe("/healthz");
    expect(container?.readinessProbe.httpGet.path).toBe("/readyz");
    expect(container?.resources.requests).toBeDefined();
    expect(container?.resources.limits).toBeDefined();
    expect(container?.volumeMounts.map((m) => m.mountPath)).toContain("/var/lib/cf-oauth-gitops");
    expect(container?.args.slice(0, 1)).toEqual(["run"]);
  });

  it("grants only Secrets in its own namespace", () => {
    const role = byKind("Role")[0] as unknown as { rules: { resources: string[]; verbs: string[] }[] };
    const resources = role.rules.flatMap((r) => r.resources).sort();
    expect(resources).toEqual(["secrets", "selfsubjectaccessreviews"]);
    expect(role.rules.flatMap((r) => r.verbs)).not.toContain("delete");
    expect(role.rules.flatMap((r) => r.verbs)).not.toContain("list");
    expect(byKind("ClusterRole")).toEqual([]);
  });
});

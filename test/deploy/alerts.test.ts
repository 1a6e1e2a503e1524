import { execFile, spawn } from "node:child_process";
import { mkdir, readFile, writeFile, copyFile, cp } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { parse } from "yaml";
import { DaemonMetrics } from "../../src/server/metrics.js";
import { startTestEmulator } from "../helpers/emulator.js";
import {
  clientYaml,
  desiredYaml,
  eventually,
  parsePrometheusText,
  ROOT,
  runFinished,
  startDaemon,
  tempDir,
  writeConfig,
} from "../daemon/support.js";

/**
 * The operator's view of the daemon: the Prometheus rules (deploy/prometheus), the same rules as a
 * PrometheusRule component (deploy/kubernetes/components/prometheus-rule) and the Grafana dashboard
 * (deploy/grafana), checked with the real programs: promtool parses the rules and fires every alert
 * from the unit-test series, a real Prometheus scrapes a real daemon, and every metric name the rules
 * and the dashboard use is one the daemon exports.
 */

const RULES = join(ROOT, "deploy", "prometheus", "cf-oauth-gitops.rules.yaml");
const RULE_TESTS = join(ROOT, "deploy", "prometheus", "cf-oauth-gitops.rules.test.yaml");
const COMPONENT = join(ROOT, "deploy", "kubernetes", "components", "prometheus-rule");
const DASHBOARD = join(ROOT, "deploy", "grafana", "cf-oauth-gitops.dashboard.json");

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

function run(program: string, args: string[], cwd = ROOT): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(program, args, { cwd, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

async function rules(): Promise<RuleFile> {
  return parse(await readFile(RULES, "utf8")) as RuleFile;
}

const alerts = async () => (await rules()).groups.flatMap((g) => g.rules).filter((r) => r.alert);

/** Every family the daemon registers (prom-client's registry, the one /metrics renders). */
async function exportedFamilies(): Promise<Set<string>> {
  const metrics = new DaemonMetrics({ version: "t", mode: "apply" });
  return new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
}

/** The daemon's metric names an expression uses (a histogram's series named by their family). */
function daemonMetricNames(expr: string): string[] {
  const names = expr.match(/\bcf_oauth_gitops_[a-z0-9_]+/g) ?? [];
  return [...new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, "")))];
}

/** A port nothing listens on now (the OS's pick for port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

describe("Prometheus rules (promtool)", () => {
  it("promtool check rules accepts the rules file", async () => {
    const result = await run("promtool", ["check", "rules", RULES]);
    expect(result.output).toContain("SUCCESS");
    expect(result.code, result.output).toBe(0);
  });

  it("promtool test rules passes: every alert fires from its series, none from the healthy ones", async () => {
    const result = await run("promtool", ["test", "rules", RULE_TESTS]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain("SUCCESS");

    // Each alert has a case that expects it to fire, and the healthy case expects it not to.
    const tests = parse(await readFile(RULE_TESTS, "utf8")) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of await alerts()) {
      const name = rule.alert as string;
      expect(
        cases.some((c) => c.alertname === name && c.exp_alerts.length > 0),
        `${name} fires`,
      ).toBe(true);
      expect(
        cases.some((c) => c.alertname === name && c.exp_alerts.length === 0),
        `${name} quiet`,
      ).toBe(true);
    }
  });

  it("promtool test rules fails when an alert can never fire", async () => {
    // A copy of the rules with one alert's expression made empty: its firing case must fail.
    const dir = await tempDir("alerts-mutant");
    await copyFile(RULE_TESTS, join(dir, "cf-oauth-gitops.rules.test.yaml"));
    const original = await readFile(RULES, "utf8");
    const all = await alerts();
    expect(all.length).toBeGreaterThanOrEqual(10);
    for (const rule of all) {
      const file = parse(original) as RuleFile;
      for (const g of file.groups)
        for (const r of g.rules) if (r.alert === rule.alert) r.expr = "vector(1) < 0";
      await writeFile(join(dir, "cf-oauth-gitops.rules.yaml"), JSON.stringify(file));
      const result = await run("promtool", ["test", "rules", "cf-oauth-gitops.rules.test.yaml"], dir);
      expect(result.code, `${rule.alert} mutated`).not.toBe(0);
      expect(result.output).toContain(`alertname: ${rule.alert}`);
    }
  });

  it("each alert has a severity, a summary, a description and a runbook naming README sections", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const headings = new Set(
      [...readme.matchAll(/^#{2,3} (.+)$/gm)].map((m) => (m[1] as string).replace(/`/g, "").trim()),
    );
    for (const rule of await alerts()) {
      expect(["critical", "warning"], rule.alert).toContain(rule.labels?.["severity"]);
      expect(rule.annotations?.["summary"], rule.alert).toBeTruthy();
      expect(rule.annotations?.["description"], rule.alert).toBeTruthy();
      const runbook = rule.annotations?.["runbook"] ?? "";
      const sections = [...runbook.matchAll(/"([^"]+)"/g)].map((m) => m[1] as string);
      expect(sections.length, `${rule.alert} runbook`).toBeGreaterThan(0);
      for (const s of sections) expect(headings, `${rule.alert}: README section "${s}"`).toContain(s);
    }
  });

  it("the rules use only metrics the daemon exports (and Prometheus's own `up`)", async () => {
    const exported = await exportedFamilies();
    const used = new Set<string>();
    for (const g of (await rules()).groups) {
      for (const r of g.rules) {
        const names = daemonMetricNames(r.expr);
        expect(names.length > 0 || /\bup\{/.test(r.expr), `${r.alert ?? r.record} uses a metric`).toBe(true);
        for (const n of names) used.add(n);
      }
    }
    for (const n of used) expect(exported, n).toContain(n);
  });
});

describe("the PrometheusRule component", () => {
  it("is a kustomize Component holding exactly the rules file's groups", async () => {
    const kustomization = parse(await readFile(join(COMPONENT, "kustomization.yaml"), "utf8")) as {
      kind: string;
      resources: string[];
    };
    expect(kustomization.kind).toBe("Component");
    expect(kustomization.resources).toEqual(["prometheusrule.yaml"]);
    const resource = parse(await readFile(join(COMPONENT, "prometheusrule.yaml"), "utf8")) as {
      apiVersion: string;
      kind: string;
      spec: { groups: unknown };
    };
    expect(resource.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(resource.kind).toBe("PrometheusRule");
    expect(resource.spec.groups).toEqual((await rules()).groups);
  });

  it("kubectl kustomize renders it into an overlay of the base, in the daemon's namespace", async () => {
    const dir = await tempDir("alerts-kustomize");
    await cp(join(ROOT, "deploy"), join(dir, "deploy"), { recursive: true });
    await mkdir(join(dir, "overlay"));
    await writeFile(
      join(dir, "overlay", "kustomization.yaml"),
      "resources: [../deploy/kubernetes]\ncomponents: [../deploy/kubernetes/components/prometheus-rule]\n",
    );
    const result = await run("kubectl", ["kustomize", join(dir, "overlay")]);
    expect(result.code, result.output).toBe(0);
    const docs = result.output
      .split(/^---$/m)
      .map((d) => parse(d) as { kind: string; metadata: { namespace?: string }; spec: { groups: unknown } });
    const rule = docs.find((d) => d.kind === "PrometheusRule");
    expect(rule?.metadata.namespace).toBe("cf-oauth-gitops");
    expect(rule?.spec.groups).toEqual((await rules()).groups);
  });
});

describe("the Grafana dashboard", () => {
  async function targets(): Promise<{ panel: string; expr: string }[]> {
    type Panel = { title: string; targets?: { expr: string }[]; panels?: Panel[] };
    const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8")) as { panels: Panel[] };
    const flat = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...flat(p.panels ?? [])]);
    return flat(dashboard.panels).flatMap((p) =>
      (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
    );
  }

  it("covers runs, changes, drift, secret age against policy, rotation phases, API requests and the rate budget", async () => {
    const used = new Set((await targets()).flatMap((t) => daemonMetricNames(t.expr)));
    for (const name of [
      "cf_oauth_gitops_runs_total",
      "cf_oauth_gitops_last_run_result",
      "cf_oauth_gitops_changes_applied_total",
      "cf_oauth_gitops_clients_drifted",
      "cf_oauth_gitops_secret_age_seconds",
      "cf_oauth_gitops_secret_rotation_every_seconds",
      "cf_oauth_gitops_rotation_clients",
      "cf_oauth_gitops_api_requests_total",
      "cf_oauth_gitops_rate_budget_remaining",
      "cf_oauth_gitops_rate_budget_quota",
    ])
      expect(used, name).toContain(name);
  });

  it("every panel expression parses (promtool) and uses only metrics the daemon exports", async () => {
    const all = await targets();
    expect(all.length).toBeGreaterThan(10);
    // Grafana's template variable, as "All" expands it.
    const exprs = all.map((t) => ({ ...t, expr: t.expr.replaceAll("$instance", ".+") }));
    const file = {
      groups: [
        { name: "dashboard", rules: exprs.map((t, i) => ({ record: `dashboard:expr_${i}`, expr: t.expr })) },
      ],
    };
    const dir = await tempDir("alerts-dashboard");
    await writeFile(join(dir, "dashboard.rules.yaml"), JSON.stringify(file));
    const result = await run("promtool", ["check", "rules", join(dir, "dashboard.rules.yaml")]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`SUCCESS: ${exprs.length} rules found`);

    const exported = await exportedFamilies();
    for (const t of exprs) {
      const names = daemonMetricNames(t.expr);
      expect(names.length > 0 || /\bup\{/.test(t.expr), `${t.panel}: ${t.expr}`).toBe(true);
      for (const n of names) expect(exported, `${t.panel}: ${n}`).toContain(n);
    }
  });

  it("a broken expression is caught by the same check", async () => {
    const dir = await tempDir("alerts-dashboard-bad");
    await writeFile(
      join(dir, "bad.rules.yaml"),
      JSON.stringify({
        groups: [
          { name: "d", rules: [{ record: "d:x", expr: "sum by (kind (cf_oauth_gitops_runs_total)" }] },
        ],
      }),
    );
    expect((await run("promtool", ["check", "rules", join(dir, "bad.rules.yaml")])).code).not.toBe(0);
  });
});

describe("a real Prometheus scraping a real daemon", () => {
  it("reads the daemon's metrics, and the recording rules over them, back through the query API", async () => {
    const emu = await startTestEmulator();
    const dir = await tempDir("alerts-daemon");
    await mkdir(join(dir, "desired"));
    await writeFile(join(dir, "desired", "apps.yaml"), desiredYaml([clientYaml("alpha")]));
    await writeConfig(
      dir,
      ["interval: 1h", "rotation:", "  every: 90d", "  grace: 24h", '  schedule: "0 0 3 1 1 *"'].join("\n"),
    );
    const daemon = await startDaemon({ cwd: dir, emulator: emu });
    const metricsHost = new URL(daemon.url).host;

    const prom = await tempDir("alerts-prometheus");
    await copyFile(RULES, join(prom, "cf-oauth-gitops.rules.yaml"));
    await writeFile(
      join(prom, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "rule_files: [cf-oauth-gitops.rules.yaml]",
        "scrape_configs:",
        "  - job_name: cf-oauth-gitops",
        `    static_configs: [{ targets: ["${metricsHost}"] }]`,
      ].join("\n") + "\n",
    );
    const port = await freePort();
    const child = spawn(
      "prometheus",
      [
        `--config.file=${join(prom, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(prom, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { cwd: prom, stdio: ["ignore", "ignore", "pipe"] },
    );
    let log = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (c: string) => (log = (log + c).slice(-8000)));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    onTestFinished(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    });

    type Vector = { metric: Record<string, string>; value: [number, string] }[];
    const query = async (q: string): Promise<Vector> => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { status: string; data: { resultType: string; result: Vector } };
      if (body.status !== "success") throw new Error(`query ${q}: ${JSON.stringify(body)}`);
      return body.data.result;
    };
    // Polls the query API until the one sample `q` selects satisfies `want` (deadline: 30 s).
    const value = (q: string, want: (v: number) => boolean) =>
      eventually(
        async () => {
          const result = await query(q);
          const v = result.length === 1 ? Number(result[0]?.value[1]) : Number.NaN;
          return want(v) ? v : undefined;
        },
        30_000,
        `${q} through Prometheus`,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\nprometheus log:\n${log.slice(-2000)}`);
      });

    // The first run finished cleanly, as the daemon says, and Prometheus scraped it.
    expect((await daemon.waitForLine(runFinished))["result"]).toBe("ok");
    expect(await value('up{job="cf-oauth-gitops"}', (v) => v === 1)).toBe(1);
    expect(
      await value('cf_oauth_gitops_last_run_result{job="cf-oauth-gitops", result="ok"}', (v) => v === 1),
    ).toBe(1);
    expect(await value('cf_oauth_gitops_runs_total{result="ok"}', (v) => v >= 1)).toBeGreaterThanOrEqual(1);
    // The policy beside the age, and the rules' own recording over them.
    expect(
      await value('cf_oauth_gitops_secret_rotation_every_seconds{client_name="alpha"}', (v) => v > 0),
    ).toBe(90 * 86_400);
    expect(await value('cf_oauth_gitops:secret_max_age_seconds{client_name="alpha"}', (v) => v > 0)).toBe(
      91 * 86_400,
    );
    expect(await value("cf_oauth_gitops_rate_budget_quota", (v) => v > 0)).toBeGreaterThan(0);

    // What Prometheus scrapes is what the registry the checks above read declares.
    const scraped = parsePrometheusText((await daemon.get<string>("/metrics")).text);
    expect(new Set(scraped.keys())).toEqual(await exportedFamilies());

    // All the rules loaded and evaluate without error on the real series.
    type RuleState = { name: string; health: string };
    const ruleStates = async (): Promise<RuleState[]> => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/rules`);
      const body = (await res.json()) as { data: { groups: { rules: RuleState[] }[] } };
      return body.data.groups.flatMap((g) => g.rules);
    };
    const loaded = await ruleStates();
    expect(loaded).toHaveLength((await rules()).groups.flatMap((g) => g.rules).length);
    await eventually(
      async () => ((await ruleStates()).every((r) => r.health === "ok") ? true : undefined),
      30_000,
      "every rule evaluated with health ok",
    );

    child.kill("SIGTERM");
    await exited;
  });
});

import type { Logger } from "pino";
import type { OAuthClientsReader, OAuthClientsWriter } from "../cloudflare/client.js";
import type { LiveClient } from "../cloudflare/schemas.js";
import type { DesiredState, Policy } from "../core/model.js";
import { verifyPlanFresh } from "../core/checksum.js";
import { accountsInScope, computePlan, planHasWork } from "../core/plan.js";
import type { Plan } from "../core/plan-types.js";
import { findUnknownScopes } from "../core/scopes.js";
import { ConfigError, GitOpsError, UnsafePlanError } from "../errors.js";
import type { InventoryStore } from "../state/inventory.js";
import { type ApplyReport, applyPlan, type ChangeResult, type SinkResolver } from "./apply.js";
import { InventoryRecorder } from "./inventory-recorder.js";
import { mapSettledBounded } from "./pool.js";

export interface ReconcileDeps {
  reader: OAuthClientsReader;
  /**
   * The mutating client, or null for plan-only runs. Dry-run is decided here, once, where the program
   * is wired: with no writer nothing can be applied (DESIGN.md, "Dry-run decided once").
   */
  writer: OAuthClientsWriter | null;
  inventoryStore: InventoryStore;
  sinks: SinkResolver;
  logger: Logger;
  now: () => Date;
}

export interface ReconcileOptions {
  desired: DesiredState;
  policy: Policy;
  /** Apply despite safety violations. */
  force?: boolean;
  /** `apply --plan FILE`: the reviewed plan; refused unless the fresh plan matches its checksum. */
  savedPlan?: Plan;
  concurrency?: number;
  onProgress?: (done: number, total: number, result: ChangeResult) => void;
  signal?: AbortSignal;
}

export interface ReconcileResult {
  plan: Plan;
  /** Null when nothing was applied (plan-only, or an empty plan). */
  apply: ApplyReport | null;
}

/**
 * One reconcile, as a straight line (ExternalDNS `controller.RunOnce`): read the inventory, list
 * the live clients of every account in scope, compute the plan, check it, apply it. The plan is
 * computed by the pure core; everything here is I/O and decisions about I/O.
 */
export async function reconcileOnce(
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<ReconcileResult> {
  const log = deps.logger.child({ component: "reconcile" });
  const inventory = await deps.inventoryStore.load();
  const accounts = accountsInScope(options.desired.accounts, inventory);
  const live = await listLiveClients(deps.reader, accounts, options.signal);
  const plan = computePlan({
    desired: options.desired,
    live,
    inventory,
    policy: options.policy,
    force: options.force ?? false,
    now: deps.now(),
  });
  log.info({ summary: plan.summary, checksum: plan.checksum }, "plan computed");

  if (options.savedPlan) {
    const freshness = verifyPlanFresh(options.savedPlan, plan);
    if (!freshness.fresh) {
      const details = freshness.differences.map((d) => `\n  - ${d}`).join("");
      throw new GitOpsError(
        freshness.code,
        `${freshness.message}${details}\nnothing was applied; run plan again`,
      );
    }
  }
  await checkScopesExist(deps.reader, plan, options.signal);
  if (!deps.writer) return { plan, apply: null };
  if (!plan.safety.ok) throw unsafePlanError(plan);
  if (!planHasWork(plan)) return { plan, apply: null };

  const recorder = new InventoryRecorder(deps.inventoryStore, inventory);
  const report = await applyPlan(plan, {
    writer: deps.writer,
    sinks: deps.sinks,
    inventory: recorder,
    logger: deps.logger,
    now: deps.now,
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { plan, apply: report };
}

async function listLiveClients(
  reader: OAuthClientsReader,
  accounts: readonly string[],
  signal: AbortSignal | undefined,
): Promise<Map<string, LiveClient[]>> {
  const settled = await mapSettledBounded(accounts, 4, (account) =>
    reader.listClients(account, signal ? { signal } : {}),
  );
  const live = new Map<string, LiveClient[]>();
  settled.forEach((outcome, index) => {
    if (outcome.status === "rejected") throw outcome.reason;
    live.set(accounts[index] as string, outcome.value);
  });
  return live;
}

/**
 * Dot-delimited scopes must exist in `GET /oauth/scopes` (API-NOTES.md, Scopes). The catalogue is
 * read only when the plan sends scopes, so a converged run costs one list per account and nothing
 * more. Unknown scopes fail the whole run before any write, located at the entry that names them.
 */
async function checkScopesExist(
  reader: OAuthClientsReader,
  plan: Plan,
  signal: AbortSignal | undefined,
): Promise<void> {
  const sendsScopes = plan.changes.some(
    (c) =>
      c.kind === "create" || (c.kind === "update" && ("scopes" in c.body || "optional_scopes" in c.body)),
  );
  if (!sendsScopes) return;
  const catalogue = await reader.listScopes(signal ? { signal } : {});
  const issues = findUnknownScopes(plan.changes, new Set(catalogue.map((s) => s.id)));
  if (issues.length > 0) throw new ConfigError(issues);
}

/** The refusal message says the numbers of every violated valve (octoDNS `TooMuchChange`). */
export function unsafePlanError(plan: Plan): UnsafePlanError {
  const lines = plan.safety.violations.filter((v) => !v.overridden).map((v) => `- ${v.message}`);
  return new UnsafePlanError(
    `plan refused by the safety checks:\n${lines.join("\n")}\nre-run with --force to apply anyway`,
    {
      context: { violations: plan.safety.violations.length },
    },
  );
}

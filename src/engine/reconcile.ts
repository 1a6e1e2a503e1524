import type { Logger } from "pino";
import type { OAuthClientsReader, OAuthClientsWriter } from "../cloudflare/client.js";
import type { DesiredState, Inventory, Policy, RotationPolicy } from "../core/model.js";
import { verifyPlanFresh } from "../core/checksum.js";
import { expectedClients } from "../core/listing.js";
import { accountsInScope, computePlan, planHasWork } from "../core/plan.js";
import type { Plan } from "../core/plan-types.js";
import { computePlanRotations } from "../core/plan-rotations.js";
import { findUnknownScopes } from "../core/scopes.js";
import { ConfigError, GitOpsError, UnsafePlanError } from "../errors.js";
import type { SinkResolver } from "../sinks/types.js";
import type { InventoryStore } from "../state/inventory.js";
import type { JournalStore } from "../state/journal.js";
import { type ApplyReport, applyPlan, type ChangeResult } from "./apply.js";
import { InventoryRecorder } from "./inventory-recorder.js";
import { listLiveClients, type LiveView } from "./live.js";
import { readSecretPlanInput } from "./secrets/plan.js";
import { resumeJournal } from "./secrets/resume.js";
import { DEFAULT_ROTATION_POLICY, type SecretOpResult } from "./secrets/types.js";

export interface ReconcileDeps {
  reader: OAuthClientsReader;
  /**
   * The mutating client, or null for plan-only runs. Dry-run is decided here, once, where the program
   * is wired: with no writer nothing can be applied (docs/DESIGN.md, "Dry-run decided once").
   */
  writer: OAuthClientsWriter | null;
  inventoryStore: InventoryStore;
  /** The secret write-ahead journal: resumed before planning when a writer is present. */
  journal: JournalStore;
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
  /** The config's rotation defaults, for the plan's rotation items (what the next `rotate` does). */
  rotation?: RotationPolicy;
  /**
   * Narrows the fresh plan before it is checked and applied: the daemon holds back deletes decided
   * from a directory source until the client has been absent long enough (core/deferred-deletes.ts).
   */
  filterPlan?: (plan: Plan) => Plan;
}

export interface ReconcileResult {
  plan: Plan;
  /** Secret operations an earlier run left in the journal, finished (or retried) before planning. */
  resumed: SecretOpResult[];
  /** Null when nothing was applied (plan-only, or an empty plan). */
  apply: ApplyReport | null;
}

/**
 * One reconcile, as a straight line (ExternalDNS `controller.RunOnce`): read the inventory, list
 * the live clients of every account in scope (each owned client either listed or confirmed gone:
 * engine/live.ts), compute the plan, check it, apply it. The plan is computed by the pure core;
 * everything here is I/O and decisions about I/O.
 */
export async function reconcileOnce(
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<ReconcileResult> {
  // A run that writes holds the state directory (the journal's lock); a plan only reads.
  const release = deps.writer ? await deps.journal.lock() : async () => undefined;
  try {
    return await reconcileLocked(deps, options);
  } finally {
    await release();
  }
}

async function reconcileLocked(deps: ReconcileDeps, options: ReconcileOptions): Promise<ReconcileResult> {
  const log = deps.logger.child({ component: "reconcile" });
  let inventory = await deps.inventoryStore.load();
  const accounts = accountsInScope(options.desired.accounts, inventory);
  // Every client the tool has a record of must be listed or confirmed gone by a GET (core/listing.ts):
  // the expectations are read before the list, so none of them can be newer than the answer.
  const readLive = async (owned: Inventory) =>
    listLiveClients(
      deps.reader,
      accounts,
      options.signal,
      expectedClients(accounts, options.desired, owned, await deps.journal.list()),
    );
  let view = await readLive(inventory);
  let live = view.clients;
  // Crash recovery first: creates whose answer was lost, secrets minted but not published.
  const recorder = new InventoryRecorder(deps.inventoryStore, inventory);
  let resumed: SecretOpResult[] = [];
  if (deps.writer) {
    const report = await resumeJournal(
      {
        reader: deps.reader,
        writer: deps.writer,
        sinks: deps.sinks,
        journal: deps.journal,
        inventory: recorder,
        logger: deps.logger,
        now: deps.now,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      { finishDueDeletions: false, live, gone: view.gone },
    );
    resumed = report.results;
    if (report.changed) {
      inventory = recorder.current;
      view = await readLive(inventory);
      live = view.clients;
    }
  }
  const computed = computePlan({
    desired: options.desired,
    live,
    inventory,
    policy: options.policy,
    force: options.force ?? false,
    now: deps.now(),
  });
  const plan = options.filterPlan ? options.filterPlan(computed) : computed;
  await addRotations(plan, deps, options, { view, inventory });
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
  if (!deps.writer) return { plan, resumed, apply: null };
  if (!plan.safety.ok) throw unsafePlanError(plan);
  if (!planHasWork(plan)) return { plan, resumed, apply: null };

  const report = await applyPlan(plan, {
    writer: deps.writer,
    reader: deps.reader,
    journal: deps.journal,
    live,
    sinks: deps.sinks,
    inventory: recorder,
    logger: deps.logger,
    now: deps.now,
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { plan, resumed, apply: report };
}

/**
 * Fills `plan.rotations` with what the next `rotate` (mode `auto`, every client) would do: the same
 * reads as `rotate --dry-run` (src/engine/secrets/plan.ts) and the same planner, so the plan and the
 * dry run list the same operations. Read-only, with or without a writer: no journal file is written
 * or removed, no sink is probed. Rotations are not in the checksum: `rotate` carries them out, not
 * `apply`, and they follow the clock, so they never make a reviewed plan stale.
 */
async function addRotations(
  plan: Plan,
  deps: ReconcileDeps,
  options: ReconcileOptions,
  state: { view: LiveView; inventory: Inventory },
): Promise<void> {
  const input = await readSecretPlanInput(
    deps,
    {
      desired: options.desired,
      inventory: state.inventory,
      live: state.view,
      journal: await deps.journal.list(),
    },
    {
      defaultPolicy: options.rotation ?? DEFAULT_ROTATION_POLICY,
      mode: "auto",
      clients: [],
      now: deps.now(),
    },
  );
  plan.rotations = computePlanRotations(input);
  plan.summary.rotations = plan.rotations.length;
}

/**
 * Dot-delimited scopes must exist in `GET /oauth/scopes` (docs/API-BEHAVIOUR.md, "Scopes"). The catalogue is
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

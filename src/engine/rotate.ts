import { expectedClients } from "../core/listing.js";
import type { DesiredState, RotationPolicy } from "../core/model.js";
import { accountsInScope } from "../core/plan.js";
import type { ClientRotationStatus } from "../core/rotation.js";
import { planSecrets, type RotateMode, type SecretOp, type SecretPlan } from "../core/rotation-plan.js";
import type { InventoryStore } from "../state/inventory.js";
import type { JournalEntry } from "../state/journal.js";
import { InventoryRecorder } from "./inventory-recorder.js";
import { listLiveClients } from "./live.js";
import { mapSettledBounded } from "./pool.js";
import { executeOp } from "./secrets/execute.js";
import { planWithSinkAges, readSecretPlanInput, withCreateAccounts } from "./secrets/plan.js";
import { failedResult, logResult, resultOf } from "./secrets/report.js";
import { compactJournal, runResume } from "./secrets/resume.js";
import type { SecretDeps, SecretOpResult } from "./secrets/types.js";

/**
 * The rotate run (what `rotate` and the daemon's schedule call): read the live clients, the journal
 * and the sinks, plan (src/core/rotation-plan.ts), carry the plan out (src/engine/secrets/). The same
 * reads and the same planner give `rotate --dry-run` and `rotate --status`, which write nothing.
 */

export type { RotateMode } from "../core/rotation-plan.js";
export type { SecretDeps, SecretOpResult } from "./secrets/types.js";
export { DEFAULT_ROTATION_POLICY } from "./secrets/types.js";

export interface RotateDeps extends Omit<SecretDeps, "inventory"> {
  inventoryStore: InventoryStore;
}

export interface RotateOptions {
  desired: DesiredState;
  /** The config's `rotation.every`/`grace`: used when an entry turned rotation off and is forced. */
  defaults: RotationPolicy;
  mode: RotateMode;
  /** Client names to act on; empty means every rotatable client. Resuming ignores it. */
  clients?: readonly string[];
  /** The config's `rotation.max_concurrent`. */
  concurrency?: number;
}

export interface RotateReport {
  results: SecretOpResult[];
  /** Every rotatable client as found before acting (after resuming). */
  statuses: ClientRotationStatus[];
  failed: number;
  attention: number;
}

/**
 * One rotation run: resume the journal, then act on each client's phase according to the mode. Never
 * throws for one client's failure: every outcome is in the report; the caller exits 1 when
 * `failed + attention > 0`.
 */
export async function rotateOnce(deps: RotateDeps, options: RotateOptions): Promise<RotateReport> {
  const release = await deps.journal.lock();
  try {
    return await rotateLocked(deps, options);
  } finally {
    await release();
  }
}

async function rotateLocked(deps: RotateDeps, options: RotateOptions): Promise<RotateReport> {
  const log = deps.logger.child({ component: "rotate" });
  const inventory = new InventoryRecorder(deps.inventoryStore, await deps.inventoryStore.load());
  const secretDeps: SecretDeps = { ...deps, inventory };
  const accounts = accountsInScope(options.desired.accounts, inventory.current);
  const readLive = async () =>
    listLiveClients(
      deps.reader,
      accounts,
      deps.signal,
      expectedClients(accounts, options.desired, inventory.current, await deps.journal.list()),
    );
  const first = await readLive();
  const planInput = {
    desired: options.desired,
    defaultPolicy: options.defaults,
    mode: options.mode,
    clients: options.clients ?? [],
  };

  // The resume stage: what earlier runs left in the journal (no sink ages needed to plan it).
  const entries = await compactJournal(deps.journal, first.gone);
  const listed = await withCreateAccounts(entries, first.clients, deps.reader);
  const resumePlan = planSecrets({
    ...planInput,
    live: listed,
    inventory: inventory.current,
    entries,
    sinkIssuedAt: new Map(),
    now: deps.now(),
  });
  const resumed = await runResume(
    resumePlan.ops.filter((op) => op.stage === "resume"),
    entries,
    listed,
    secretDeps,
  );

  // The act stage, planned from what the resume left: a resume action that failed leads to no act.
  const live = resumed.changed ? (await readLive()).clients : first.clients;
  const after = await deps.journal.list();
  const plan = await planWithSinkAges(
    { ...planInput, live, inventory: inventory.current, entries: after, now: deps.now(), resumed: true },
    deps.sinks,
    deps.logger,
  );
  const acts = plan.ops.filter((op) => op.stage === "act");
  const results = [...resumed.results];
  const settled = await mapSettledBounded(acts, options.concurrency ?? 4, async (op) =>
    resultOf(
      await executeOp(op, after.find((e) => e.id === op.entry_id) ?? null, secretDeps, {
        entries: entriesOf(after, op),
      }),
    ),
  );
  settled.forEach((outcome, i) => {
    const result =
      outcome.status === "fulfilled" ? outcome.value : failedResult(acts[i] as SecretOp, outcome.reason);
    logResult(log, result, options.mode);
    results.push(result);
  });
  await inventory.flush();
  return {
    results,
    statuses: plan.statuses,
    failed: results.filter((r) => r.status === "failed").length,
    attention: results.filter((r) => r.status === "attention").length,
  };
}

type ReadDeps = Pick<
  RotateDeps,
  "reader" | "sinks" | "journal" | "inventoryStore" | "logger" | "now" | "signal"
>;

/**
 * What the next `rotate` in `mode` would do (`rotate --dry-run`): the same reads and the same planner
 * as {@link rotateOnce}, and nothing written: no lock, no journal compaction, no sink probe.
 */
export async function planRotation(
  deps: ReadDeps,
  options: Omit<RotateOptions, "concurrency">,
): Promise<SecretPlan> {
  const inventory = await deps.inventoryStore.load();
  const accounts = accountsInScope(options.desired.accounts, inventory);
  const journal = await deps.journal.list();
  const live = await listLiveClients(
    deps.reader,
    accounts,
    deps.signal,
    expectedClients(accounts, options.desired, inventory, journal),
  );
  return planSecrets(
    await readSecretPlanInput(
      deps,
      { desired: options.desired, inventory, live, journal },
      {
        defaultPolicy: options.defaults,
        mode: options.mode,
        clients: options.clients ?? [],
        now: deps.now(),
      },
    ),
  );
}

/** Status only (`rotate --status`, metrics): each client's phase as it stands; reads, never writes. */
export async function readRotationStatus(
  deps: ReadDeps,
  options: Pick<RotateOptions, "desired" | "defaults">,
): Promise<ClientRotationStatus[]> {
  const inventory = await deps.inventoryStore.load();
  const accounts = accountsInScope(options.desired.accounts, inventory);
  const entries = await deps.journal.list();
  const live = await listLiveClients(
    deps.reader,
    accounts,
    deps.signal,
    expectedClients(accounts, options.desired, inventory, entries),
  );
  const plan = await planWithSinkAges(
    {
      desired: options.desired,
      live: live.clients,
      inventory,
      entries,
      defaultPolicy: options.defaults,
      mode: "auto",
      clients: [],
      now: deps.now(),
      resumed: true,
    },
    deps.sinks,
    deps.logger,
  );
  return plan.statuses;
}

function entriesOf(entries: readonly JournalEntry[], op: SecretOp): JournalEntry[] {
  return entries.filter((e) => e.account_id === op.account_id && e.client_id === op.client_id);
}

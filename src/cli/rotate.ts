import type { ClientRotationStatus } from "../core/rotation.js";
import type { SecretAction, SecretOp } from "../core/rotation-plan.js";
import {
  planRotation,
  readRotationStatus,
  type RotateMode,
  rotateOnce,
  type SecretOpResult,
} from "../engine/rotate.js";
import { FileInventoryStore } from "../state/inventory.js";
import { FileJournalStore } from "../state/journal.js";
import { buildReader, buildReaderWriter, cliLogger } from "./api.js";
import { loadInput, sinkResolver } from "./common.js";
import type { VerbRun } from "./frame.js";
import { ExitCode } from "./io.js";
import { type ROTATE, rotateMode } from "./verbs.js";

/**
 * `rotate`: the secret rotation verb, and `rotateOnce` is what the daemon's schedule calls.
 * `--status` constructs only the read-only client (docs/DESIGN.md, "Dry-run decided once").
 */
export const runRotate: VerbRun<typeof ROTATE> = async (ctx, values) => {
  const clients = values.client;
  const mode = rotateMode(values);
  const dryRun = values["dry-run"];
  const format = values.format;

  const input = await loadInput(ctx, values);
  const logger = cliLogger(ctx, values["log-level"]);
  const common = {
    inventoryStore: new FileInventoryStore(input.config.state_dir),
    journal: new FileJournalStore(input.config.state_dir),
    sinks: sinkResolver(input.config, logger, ctx.env),
    logger,
    now: ctx.clock,
    signal: ctx.signal,
  };
  const defaults = { every: input.config.rotation.every, grace: input.config.rotation.grace };

  if (mode === "status") {
    const reader = buildReader(ctx, logger);
    try {
      const statuses = await readRotationStatus({ ...common, reader }, { desired: input.desired, defaults });
      const shown = clients.length > 0 ? statuses.filter((s) => clients.includes(s.client_name)) : statuses;
      ctx.stdout.write(format === "json" ? `${JSON.stringify(shown, null, 2)}\n` : renderStatuses(shown));
      return ExitCode.ok;
    } finally {
      await reader.close();
    }
  }

  if (dryRun) {
    // Only the read-only client is built: nothing here can write (docs/DESIGN.md, "Dry-run decided once").
    const reader = buildReader(ctx, logger);
    try {
      const plan = await planRotation(
        { ...common, reader },
        { desired: input.desired, defaults, mode: (mode ?? "auto") as RotateMode, clients },
      );
      ctx.stdout.write(
        format === "json"
          ? `${JSON.stringify({ dry_run: true, ops: plan.ops, statuses: plan.statuses }, null, 2)}\n`
          : renderSecretPlan(plan.ops),
      );
      return ExitCode.ok;
    } finally {
      await reader.close();
    }
  }

  const api = buildReaderWriter(ctx, logger);
  try {
    const report = await rotateOnce(
      { ...common, reader: api, writer: api },
      {
        desired: input.desired,
        defaults,
        mode: (mode ?? "auto") as RotateMode,
        clients,
        concurrency: input.config.rotation.max_concurrent,
      },
    );
    if (format === "json") {
      ctx.stdout.write(
        `${JSON.stringify({ results: report.results, statuses: report.statuses }, null, 2)}\n`,
      );
    } else {
      for (const r of report.results) ctx.stdout.write(`${describeSecretResult(r)}\n`);
      ctx.stdout.write(summaryLine(report.results, report.statuses));
    }
    if (report.attention > 0) {
      ctx.stderr.write(
        `rotate: ${report.attention} client(s) left alone and need an operator (see above; 'rotate --help' explains --recover)\n`,
      );
    }
    return report.failed > 0 || report.attention > 0 ? ExitCode.error : ExitCode.ok;
  } finally {
    await api.close();
  }
};

const MARK: Record<SecretOpResult["status"], string> = { ok: "✓", waiting: "…", attention: "!", failed: "✗" };

/** One line per result: mark, client, what happened; the stable code for failures. Never a secret. */
export function describeSecretResult(r: SecretOpResult): string {
  const id = r.client_id ? ` ${r.client_id}` : "";
  const code = r.code ? ` [${r.code}]` : "";
  return `${MARK[r.status]} secret [${r.account_id}/${r.client_name}]${id}: ${r.message}${code}`;
}

function summaryLine(results: readonly SecretOpResult[], statuses: readonly ClientRotationStatus[]): string {
  const count = (s: SecretOpResult["status"]) => results.filter((r) => r.status === s).length;
  return (
    `Rotate: ${count("ok")} done, ${count("waiting")} waiting, ${count("attention")} need attention, ` +
    `${count("failed")} failed; ${statuses.length} rotatable clients.\n`
  );
}

/**
 * `rotate --dry-run`: one line per operation, its actions in the order the executor takes them
 * (src/core/rotation-plan.ts). Never a secret: the plan holds none.
 */
export function renderSecretPlan(ops: readonly SecretOp[]): string {
  if (ops.length === 0) {
    return "Dry run: nothing to do (no secret is due, nothing is left in the journal); nothing was changed.\n";
  }
  const lines = ops.map((op) => {
    const id = op.client_id ? ` ${op.client_id}` : "";
    const what = op.stage === "resume" ? "resume" : "rotate";
    return `~ secret [${op.account_id}/${op.client_name}]${id}: ${what}: ${op.actions.map(describeAction).join("; ")}`;
  });
  return `${lines.join("\n")}\nDry run: ${ops.length} operation(s) planned; nothing was changed.\n`;
}

/** One planned action in words. */
export function describeAction(a: SecretAction): string {
  switch (a.kind) {
    case "start": {
      const old =
        a.delete_old === "at-once"
          ? "the old secret goes once the new one is published"
          : `the old secret stays valid ${a.grace_seconds}s after the publish`;
      return `start a ${a.reason} rotation (preflight sink=${a.sink} key=${a.key}; ${old}${a.replaces ? `; replaces journal entry ${a.replaces}` : ""})`;
    }
    case "recover":
      return a.deletes_rotated
        ? "delete the rotated secret (recover)"
        : "recover (no rotated secret to delete)";
    case "find-created":
      return `take client ${a.client_id} as the one the interrupted create made`;
    case "drop":
      return "forget the interrupted create (it never reached the API; apply plans it again)";
    case "mint":
      return a.clears_unknown
        ? "delete the unknown rotated secret, then mint a new secret"
        : "mint a new secret";
    case "publish":
      return `publish it to sink=${a.sink} key=${a.key} and read it back`;
    case "delete-old-secret":
      return a.early ? "delete the old secret now (grace cut short)" : "delete the old secret";
    case "close":
      return "close the journal entry (no old secret to delete)";
    case "wait":
      return `keep the old secret valid until ${a.until}`;
    case "blocked":
      return `left alone${a.code ? ` [${a.code}]` : ""}: ${a.reason}`;
    case "none":
      return a.reason;
  }
}

/** The `--status` table: one line per client. */
function renderStatuses(statuses: readonly ClientRotationStatus[]): string {
  if (statuses.length === 0)
    return "No rotatable clients (desired, owned, confidential, with a secret target).\n";
  const lines = statuses.map((s) => {
    const age =
      s.age_seconds === null ? "age unknown" : `age ${formatAge(s.age_seconds)} (from ${s.age_source})`;
    const next = s.next_due_at
      ? `, next ${s.phase === "grace" ? "old-secret deletion" : "step"} ${s.next_due_at}`
      : "";
    return `${s.account_id} ${JSON.stringify(s.client_name)} ${s.client_id}: ${s.phase}, ${age}${next}`;
  });
  return `${lines.join("\n")}\n`;
}

function formatAge(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  return d > 0 ? `${d}d${h}h` : h > 0 ? `${h}h${m}m` : `${m}m${seconds % 60}s`;
}

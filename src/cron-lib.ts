import { createRequire } from "node:module";
import type * as NodeCron from "node-cron";

let lib: typeof NodeCron | undefined;

/**
 * node-cron, loaded on first use: by the config schema when a file gives `rotation.schedule` (a
 * default is not checked again), and by src/engine/triggers/cron.ts when `run` schedules rotations.
 * `plan`, `apply` or `validate` of a config without a schedule never load it. Loading is synchronous
 * (`require`, node-cron's CommonJS build), so the schema's check stays a plain synchronous check;
 * both users take it from here, so a process holds one copy of node-cron.
 */
export function cronLib(): typeof NodeCron {
  lib ??= createRequire(import.meta.url)("node-cron") as typeof NodeCron;
  return lib;
}

import { readFile } from "node:fs/promises";

/**
 * What Linux's /proc says of a process, for the benchmarks that watch a real daemon or command
 * (bench/daemon.ts, bench/cli-start.ts): CPU time used so far and resident memory, now and at its peak.
 */
export interface ProcSample {
  /** utime + stime, in clock ticks (`getconf CLK_TCK`, 100 on Linux). */
  cpuTicks: number;
  rssKiB: number;
  /** VmHWM: the peak resident set size. */
  hwmKiB: number;
}

export async function procSample(pid: number): Promise<ProcSample> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces): utime is field 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return {
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    rssKiB: kib("VmRSS"),
    hwmKiB: kib("VmHWM"),
  };
}

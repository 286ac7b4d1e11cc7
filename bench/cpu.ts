/**
 * Where the machine's CPU went during a run, from /proc (Linux): the cores used by each named
 * process of the bench (threads included), by every process outside the bench's own process tree
 * ("others"), and the time the hypervisor gave the CPUs to other guests ("steal"). Processes that start and exit inside the window are missed, so "others" is a
 * lower bound; on a machine other people use at the same time it tells which figures were
 * measured under contention.
 */
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** USER_HZ: /proc reports CPU time in these ticks on Linux. */
const TICKS_PER_S = 100;

export interface CpuUse {
  /** Cores used (CPU seconds per second) by processes outside the bench. */
  others: number;
  /** Cores used by each named process of the bench. */
  processes: Record<string, number>;
  /** Cores' worth of time the hypervisor ran other guests instead of this machine. */
  steal: number;
}

/** The steal ticks of all CPUs so far (the 8th value of /proc/stat's first line); 0 off Linux. */
function stealTicks(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    return Number(line.trim().split(/\s+/)[8] ?? 0) || 0;
  } catch {
    return 0;
  }
}

interface Proc {
  ppid: number;
  ticks: number;
}

function readProcs(): Map<number, Proc> {
  const procs = new Map<number, Proc>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return procs;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // After "pid (comm) " come state, ppid, ...; utime and stime are fields 14 and 15 of the line.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      procs.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // The process exited while being read.
    }
  }
  return procs;
}

function isUnder(procs: Map<number, Proc>, pid: number, root: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === root) return true;
    p = procs.get(p)?.ppid ?? 0;
  }
  return false;
}

function isOurs(procs: Map<number, Proc>, pid: number): boolean {
  return isUnder(procs, pid, process.pid);
}

function foreignTicks(procs: Map<number, Proc>): Map<number, number> {
  const foreign = new Map<number, number>();
  for (const [pid, proc] of procs) if (!isOurs(procs, pid)) foreign.set(pid, proc.ticks);
  return foreign;
}

/** A process measured alone, or with every process under it (a PostgreSQL server and its backends). */
export type MeasuredPid = number | { tree: number } | undefined;

function ticksOf(procs: Map<number, Proc>, entry: MeasuredPid): number {
  if (entry === undefined) return 0;
  if (typeof entry === "number") return procs.get(entry)?.ticks ?? 0;
  let ticks = 0;
  for (const [pid, proc] of procs) if (isUnder(procs, pid, entry.tree)) ticks += proc.ticks;
  return ticks;
}

/** Starts a measurement of the named pids and of the others; the returned function ends it. */
export function measureCpu(named: Record<string, MeasuredPid>): () => CpuUse {
  const startedAt = performance.now();
  const first = readProcs();
  const before = foreignTicks(first);
  const stealBefore = stealTicks();
  return () => {
    const last = readProcs();
    const steal = stealTicks() - stealBefore;
    const wallS = (performance.now() - startedAt) / 1000;
    const cores = (ticks: number) => (wallS > 0 ? ticks / TICKS_PER_S / wallS : 0);
    let others = 0;
    for (const [pid, now] of foreignTicks(last)) others += Math.max(0, now - (before.get(pid) ?? 0));
    const processes: Record<string, number> = {};
    for (const [name, entry] of Object.entries(named)) {
      if (entry === undefined) continue;
      processes[name] = cores(Math.max(0, ticksOf(last, entry) - ticksOf(first, entry)));
    }
    return { others: cores(others), processes, steal: cores(Math.max(0, steal)) };
  };
}

/**
 * Waits until the given server processes together use less than `serversBelow` cores and the
 * processes outside the bench less than `othersBelow`, over one second: a server still working off
 * the queue of an overloaded run, or someone else's workload, would otherwise slow the next run
 * down. Answers whether that happened within `timeoutMs`.
 */
export async function waitUntilQuiet(
  pids: MeasuredPid[],
  limits: { serversBelow: number; othersBelow: number },
  timeoutMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  const named = Object.fromEntries(pids.map((entry, i) => [String(i), entry]));
  while (performance.now() < deadline) {
    const measure = measureCpu(named);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const use = measure();
    const servers = Object.values(use.processes).reduce((sum, cores) => sum + cores, 0);
    if (servers < limits.serversBelow && use.others < limits.othersBelow) return true;
  }
  return false;
}

/**
 * What a server process's event loop and garbage collector did, second by second, for the
 * runner to read back over the window of a run: the event-loop delay histogram
 * (perf_hooks.monitorEventLoopDelay, 10 ms resolution) and every GC pause (a PerformanceObserver
 * of `gc` entries: the same pauses `--trace-gc` prints, by kind, without parsing its text). One
 * JSON line a second is appended to `file`; nothing is kept in memory.
 */
import { appendFileSync } from "node:fs";
import { constants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";

export interface ProbeLine {
  /** End of the second, ms since the epoch. */
  at: number;
  /** The process (with the runner's --split, every server process writes to the same file). */
  pid: number;
  /** Event-loop delay over the second, ms. */
  eld: { p50: number; p99: number; max: number };
  /** GC pauses over the second: count and total and longest pause (ms), by kind. */
  gc: Record<string, { count: number; totalMs: number; maxMs: number }>;
}

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: "scavenge",
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "mark-compact",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weak-callbacks",
};

export function startProbe(file: string): () => void {
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  let gc: ProbeLine["gc"] = {};
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = KINDS[(entry as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? "other";
      const g = gc[kind] ?? { count: 0, totalMs: 0, maxMs: 0 };
      gc[kind] = g;
      g.count += 1;
      g.totalMs += entry.duration;
      g.maxMs = Math.max(g.maxMs, entry.duration);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const timer = setInterval(() => {
    const line: ProbeLine = {
      at: Date.now(),
      pid: process.pid,
      eld: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max) },
      gc,
    };
    gc = {};
    eld.reset();
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 1_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    observer.disconnect();
    eld.disable();
  };
}

/** The lines of a probe file within [from, to] (ms since the epoch), summed up. */
export function summarizeProbe(
  lines: ProbeLine[],
  from: number,
  to: number,
): { seconds: number; eldP99Max: number; eldMax: number; gc: ProbeLine["gc"] } {
  const inWindow = lines.filter((l) => l.at > from && l.at <= to + 1_000);
  const gc: ProbeLine["gc"] = {};
  for (const l of inWindow) {
    for (const [kind, g] of Object.entries(l.gc)) {
      const sum = gc[kind] ?? { count: 0, totalMs: 0, maxMs: 0 };
      gc[kind] = sum;
      sum.count += g.count;
      sum.totalMs += g.totalMs;
      sum.maxMs = Math.max(sum.maxMs, g.maxMs);
    }
  }
  return {
    seconds: inWindow.length,
    eldP99Max: Math.max(0, ...inWindow.map((l) => l.eld.p99)),
    eldMax: Math.max(0, ...inWindow.map((l) => l.eld.max)),
    gc,
  };
}

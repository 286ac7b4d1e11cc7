/**
 * Memory of a server process, read from outside: its resident set from /proc/<pid>/status, and
 * its V8 heap after a full collection, which the process writes to a file when sent SIGUSR2
 * (reportMemoryOnSignal, installed by the bench's server children, run with --expose-gc).
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { getHeapSpaceStatistics } from "node:v8";

export interface MemorySample {
  rssBytes: number;
  heapUsedBytes: number;
  /** V8's heap pages, used or not (heapTotal): what the heap holds of the RSS. */
  heapTotalBytes: number;
  externalBytes: number;
  /** The young generation's pages (V8's new space and new large-object space), used or not. */
  youngBytes: number;
}

/** VmRSS of a process, in bytes. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib) * 1024;
}

/**
 * In a server child: on SIGUSR2, collect garbage and write process.memoryUsage() to `file`;
 * `collectOthers` first collects the garbage of the process's other threads (the store's).
 */
export function reportMemoryOnSignal(file: string, collectOthers?: () => Promise<void>): void {
  process.on("SIGUSR2", async () => {
    await collectOthers?.().catch(() => undefined);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const young = getHeapSpaceStatistics()
      .filter((space) => space.space_name.startsWith("new_"))
      .reduce((sum, space) => sum + space.physical_space_size, 0);
    writeFileSync(
      `${file}.tmp`,
      JSON.stringify({ ...process.memoryUsage(), young, collected: gc !== undefined }),
    );
    renameSync(`${file}.tmp`, file);
  });
}

/** The RSS alone, of a process that cannot report its heap (Centrifugo): heap and external are NaN. */
export function sampleRss(pid: number): MemorySample {
  return {
    rssBytes: rssOf(pid),
    heapUsedBytes: Number.NaN,
    heapTotalBytes: Number.NaN,
    externalBytes: Number.NaN,
    youngBytes: Number.NaN,
  };
}

/** Asks the process for its heap after a collection, then reads its RSS. */
export async function sampleMemory(pid: number, file: string): Promise<MemorySample> {
  await rm(file, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let waited = 0; waited < 30_000; waited += 50) {
    await sleep(50);
    const text = await readFile(file, "utf8").catch(() => "");
    if (!text) continue;
    const usage = JSON.parse(text) as {
      heapUsed: number;
      heapTotal: number;
      external: number;
      young: number;
    };
    return {
      rssBytes: rssOf(pid),
      heapUsedBytes: usage.heapUsed,
      heapTotalBytes: usage.heapTotal,
      externalBytes: usage.external,
      youngBytes: usage.young,
    };
  }
  throw new Error(`pid ${pid} did not report its memory`);
}

/**
 * Memory of a server child during a burst. From outside, the runner reads the child's VmRSS from
 * /proc/<pid>/status every 100 ms (RssSampler). From inside, the child samples its own
 * process.memoryUsage() every 100 ms and keeps the largest value of each part (V8 heap, external
 * memory, array buffers) since the last report; on SIGUSR2 it writes them to its memory file and
 * starts over (reportPeaksOnSignal), so a run can tell what the peak was made of.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

export const SAMPLE_MS = 100;

/** VmRSS of a process, in bytes. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib) * 1024;
}

/** The largest of each part of process.memoryUsage() over a window, in bytes. */
export interface MemoryPeaks {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  samples: number;
}

/** Samples the RSS of `pid` every SAMPLE_MS until stopped; answers every sample. */
export class RssSampler {
  readonly samples: number[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number) {
    const take = () => {
      try {
        this.samples.push(rssOf(pid));
      } catch {
        // The process is gone; the run fails elsewhere.
      }
    };
    take();
    this.#timer = setInterval(take, SAMPLE_MS);
  }

  stop(): number[] {
    clearInterval(this.#timer);
    return this.samples;
  }
}

/** In a server child: keeps the peaks and writes them to `file` on SIGUSR2, then starts over. */
export function reportPeaksOnSignal(file: string): void {
  const fresh = (): MemoryPeaks => ({
    rss: 0,
    heapTotal: 0,
    heapUsed: 0,
    external: 0,
    arrayBuffers: 0,
    samples: 0,
  });
  let peaks = fresh();
  const sample = () => {
    const m = process.memoryUsage();
    peaks.rss = Math.max(peaks.rss, m.rss);
    peaks.heapTotal = Math.max(peaks.heapTotal, m.heapTotal);
    peaks.heapUsed = Math.max(peaks.heapUsed, m.heapUsed);
    peaks.external = Math.max(peaks.external, m.external);
    peaks.arrayBuffers = Math.max(peaks.arrayBuffers, m.arrayBuffers);
    peaks.samples += 1;
  };
  setInterval(sample, SAMPLE_MS).unref();
  process.on("SIGUSR2", () => {
    sample();
    writeFileSync(`${file}.tmp`, JSON.stringify(peaks));
    renameSync(`${file}.tmp`, file);
    peaks = fresh();
  });
}

/** Asks the child for its peaks since the last call (and starts a new window). */
export async function peaksOf(pid: number, file: string): Promise<MemoryPeaks> {
  await rm(file, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let waited = 0; waited < 30_000; waited += 20) {
    await sleep(20);
    const text = await readFile(file, "utf8").catch(() => "");
    if (text) return JSON.parse(text) as MemoryPeaks;
  }
  throw new Error(`pid ${pid} did not report its memory`);
}

/** The file benchmark's results: bench/results/files-*.json as is, and its markdown. */
import type { Figure } from "../figures.ts";
import { type Machine, markdownTable } from "../report.ts";

export interface FilesReport {
  generatedAt: string;
  startedAt: string;
  command: string;
  machine: Machine & { weed: string };
  loadAverageAtEnd: number[];
  /** Cores used by processes outside the bench over every measured phase. */
  othersCpu: { median: number; max: number; measuredPhases: number };
  code: { digest: string; changedDuringRun?: boolean; atStart?: string };
  settings: Record<string, unknown>;
  topology: Record<string, unknown>;
  figures: Figure[];
  details: Record<string, unknown>;
  profiles: { file: string; top: string }[];
}

interface RssDetail {
  run: number;
  who: string;
  idleBytes: number;
  peakBytes: number;
  deltaBytes: number;
  mbps: number;
  idlePeaks: { heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  peaks: { heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  cpu: { others: number };
}

const mb = (n: number) => (n / 1e6).toFixed(1);

export function markdown(r: FilesReport): string {
  const m = r.machine;
  const lines = [
    "# File uploads and downloads benchmark (issue 21)",
    "",
    `Command: \`${r.command}\`; ${r.startedAt} to ${r.generatedAt}.`,
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; SeaweedFS ${m.weed}, nats-server ${m.servers["nats-server"]}.`,
    `Load average at start ${m.loadAverageAtStart.join(" / ")}, at end ${r.loadAverageAtEnd.join(" / ")}; other processes' CPU over the ${r.othersCpu.measuredPhases} measured phases: median ${r.othersCpu.median.toFixed(2)}, max ${r.othersCpu.max.toFixed(2)} cores.`,
    r.code.changedDuringRun
      ? `The server code changed during the run: ${r.code.atStart} at the start, ${r.code.digest} at the end.`
      : `Code under test (digest of lib/, services/, gateway/): ${r.code.digest}.`,
    "",
    `Settings: ${Object.entries(r.settings)
      .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
      .join(", ")}.`,
    "",
    "## Topology",
    "",
    ...Object.entries(r.topology).map(([k, v]) => `- ${k}: \`${JSON.stringify(v)}\``),
    "",
    "All on 127.0.0.1 of this machine; the client (this process), the servers under test, the baseline and",
    "SeaweedFS share its cores. MB = 10^6 bytes.",
    "",
    "## Figures",
    "",
    "Each figure is the median of its runs; ratios compare medians measured in this same bench run, the",
    "platform and its baseline taking turns within each run. `CONTENDED`: other processes used more than",
    "0.2 core meanwhile (median over the runs): not judged.",
    "",
    markdownTable(r.figures),
    "",
    ...cpuSection(r.figures),
    ...memorySection(r),
  ];
  const notes = r.figures.filter((f) => f.note);
  if (notes.length) lines.push("## Notes", "", ...notes.map((f) => `- ${f.label}: ${f.note}`), "");
  for (const p of r.profiles) lines.push(`## CPU profile ${p.file}`, "", "```", p.top, "```", "");
  return `${lines.join("\n").trimEnd()}\n`;
}

/** Cores each process used during the throughput phases (medians over the runs). */
function cpuSection(figures: Figure[]): string[] {
  const measured = figures.filter((f) => f.unit === "MB/s" && f.cpu);
  if (!measured.length) return [];
  const names = [...new Set(measured.flatMap((f) => Object.keys(f.cpu?.processes ?? {})))];
  const cell = (n: number | undefined) => (n === undefined ? "" : n.toFixed(2));
  return [
    "## CPU by process",
    "",
    "Cores used during each throughput phase (CPU seconds per second, median over the runs; threads",
    "included): `runner` is the client; `platform` the embedded process, `gateway` and `services` a",
    "cluster's two; `others`: processes outside the bench.",
    "",
    `| figure | ${names.join(" | ")} | others |`,
    `|---|${names.map(() => "---").join("|")}|---|`,
    ...measured.map((f) => {
      const used = names.map((n) => cell(f.cpu?.processes[n])).join(" | ");
      return `| ${f.label} | ${used} | ${cell(f.cpu?.others.median)} |`;
    }),
    "",
  ];
}

function memorySection(r: FilesReport): string[] {
  const rows: string[] = [];
  for (const [target, detail] of Object.entries(r.details)) {
    const rss = (detail as { rss?: RssDetail[] })?.rss;
    if (!Array.isArray(rss)) continue;
    for (const x of rss) {
      rows.push(
        `| ${target} | ${x.who} | ${x.run} | ${mb(x.idleBytes)} | ${mb(x.peakBytes)} | ${mb(x.deltaBytes)} | ${mb(x.idlePeaks.heapUsed)} / ${mb(x.peaks.heapUsed)} | ${mb(x.idlePeaks.external)} / ${mb(x.peaks.external)} | ${mb(x.idlePeaks.arrayBuffers)} / ${mb(x.peaks.arrayBuffers)} | ${x.mbps.toFixed(0)} | ${x.cpu.others.toFixed(2)} |`,
      );
    }
  }
  if (!rows.length) return [];
  return [
    "## Memory during the bursts",
    "",
    "Each run on a fresh process, warmed up by one upload and one download of 1 MB. VmRSS sampled every",
    "100 ms from /proc; heap used, external and array buffers: the largest process.memoryUsage() values",
    "the process saw (sampled every 100 ms) over the idle second before the burst / during the burst.",
    "",
    "| target | process | run | idle RSS MB | peak RSS MB | peak - idle MB | heap used MB idle / burst | external MB idle / burst | array buffers MB idle / burst | MB/s | others' CPU |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
  ];
}

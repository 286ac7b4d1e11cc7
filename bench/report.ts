/** The bench's output: the machine, a plain-text table for stdout, and latest.json / latest.md. */
import { execFileSync } from "node:child_process";
import os from "node:os";
import { findBinary } from "../test/harness/binaries.ts";
import { CONTENDED_CORES, type Figure, shortfall, type Target } from "./figures.ts";
import type { ProcessInfo } from "./scenarios.ts";

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  os: string;
  /** 1, 5 and 15 minute load averages when the bench started: near 0 on an idle machine. */
  loadAverageAtStart: number[];
  servers: Record<string, string>;
}

export function machine(): Machine {
  const version = (name: string) => {
    try {
      const out = execFileSync(findBinary(name), ["--version"], { encoding: "utf8", timeout: 10_000 });
      return /\d+\.\d+\.\d+/.exec(out)?.[0] ?? (out.split("\n")[0]?.trim() || "unknown");
    } catch (err) {
      return `unknown (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
    }
  };
  return {
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((n) => Math.round(n * 100) / 100),
    servers: {
      "nats-server": version("nats-server"),
      "redis-server": version("redis-server"),
      ferretdb: version("ferretdb"),
    },
  };
}

export function formatValue(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return "n/a";
  if (unit === "req/s") return value >= 1000 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
  if (unit === "ms") return value < 10 ? value.toFixed(2) : value.toFixed(1);
  return value.toFixed(1);
}

export function formatTarget(target: Target | undefined, unit: string): string {
  if (!target) return "";
  return target.on === "ratio"
    ? `ratio ${target.op} ${target.value.toFixed(2)}`
    : `${target.op} ${target.value} ${unit}`;
}

interface Row {
  figure: string;
  median: string;
  spread: string;
  runs: string;
  baseline: string;
  ratio: string;
  target: string;
  result: string;
  other: string;
}

const HEADERS: Row = {
  figure: "figure",
  median: "median",
  spread: "min-max",
  runs: "runs",
  baseline: "baseline (median)",
  ratio: "ratio",
  target: "target",
  result: "result",
  other: "others' CPU",
};

function row(f: Figure): Row {
  const gap = shortfall(f);
  return {
    figure: f.label,
    median: `${formatValue(f.median, f.unit)} ${f.unit}`,
    spread: `${formatValue(f.min, f.unit)}-${formatValue(f.max, f.unit)}`,
    runs: String(f.runs.length),
    baseline: f.baseline
      ? `${f.baseline.label}: ${formatValue(f.baseline.median, f.baseline.unit)} ${f.baseline.unit}`
      : "",
    ratio: f.ratio === undefined ? "" : f.ratio.toFixed(2),
    target: formatTarget(f.target, f.unit),
    result: f.result === "info" ? "" : `${f.result.toUpperCase()}${gap ? ` (${gap})` : ""}`,
    other: f.cpu ? `${f.cpu.others.median.toFixed(2)} (max ${f.cpu.others.max.toFixed(2)})` : "",
  };
}

export function textTable(figures: Figure[]): string {
  const rows = [HEADERS, ...figures.map(row)];
  const keys = Object.keys(HEADERS) as (keyof Row)[];
  const widths = keys.map((k) => Math.max(...rows.map((r) => r[k].length)));
  const line = (r: Row) =>
    keys
      .map((k, i) => r[k].padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(HEADERS), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

export function markdownTable(figures: Figure[]): string {
  const keys = Object.keys(HEADERS) as (keyof Row)[];
  const line = (r: Row) => `| ${keys.map((k) => r[k].replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(HEADERS), `|${keys.map(() => "---").join("|")}|`, ...figures.map((f) => line(row(f)))].join(
    "\n",
  );
}

/** Cores each process used during the runs of each throughput figure (medians over the runs). */
function cpuTable(figures: Figure[]): string[] {
  const measured = figures.filter((f) => f.cpu && Object.keys(f.cpu.processes).length && f.unit === "req/s");
  if (!measured.length) return [];
  const names = [...new Set(measured.flatMap((f) => Object.keys(f.cpu?.processes ?? {})))];
  const cell = (n: number | undefined) => (n === undefined ? "" : n.toFixed(2));
  return [
    "## CPU by process",
    "",
    "Cores used during the measured runs (CPU seconds per second, median over the runs; threads included);",
    "`others`: processes outside the bench; `steal`: time the hypervisor gave these CPUs to other guests.",
    "",
    `| figure | ${names.join(" | ")} | others | steal |`,
    `|---|${names.map(() => "---").join("|")}|---|---|`,
    ...measured.map((f) => {
      const used = names.map((n) => cell(f.cpu?.processes[n])).join(" | ");
      return `| ${f.label} | ${used} | ${cell(f.cpu?.others.median)} | ${cell(f.cpu?.steal)} |`;
    }),
  ];
}

export interface Topology {
  loadGenerator: { pid: number; role: string };
  servers: Record<string, { pid: number | undefined; url: string }>;
  children: ProcessInfo[];
  note: string;
}

export interface Report {
  generatedAt: string;
  command: string;
  settings: Record<string, unknown>;
  machine: Machine;
  topology: Topology;
  figures: Figure[];
  hashComparison: { concurrency: number; faster: string; by: number }[];
  profiles?: { file: string; top: string }[];
  /** Moleculer's serializers on the platform's packets (bench/serializers.ts), as a markdown table. */
  serializers?: string;
}

function topologyList(t: Topology): string[] {
  const pid = (n: number | undefined) => (n === undefined ? "" : ` (pid ${n})`);
  return [
    `- load generator${pid(t.loadGenerator.pid)}: ${t.loadGenerator.role}`,
    ...Object.entries(t.servers).map(([name, server]) => `- ${name}${pid(server.pid)} at ${server.url}`),
    ...t.children.map((c) => `- ${c.name}${pid(c.pid)}: ${c.role}`),
    "",
    t.note,
  ];
}

export function markdown(report: Report): string {
  const m = report.machine;
  const lines = [
    "# Benchmark results",
    "",
    `Generated ${report.generatedAt} by \`${report.command}\`.`,
    "",
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(" / ")}.`,
    `Servers: ${Object.entries(m.servers)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}.`,
    "",
    "Settings: " +
      Object.entries(report.settings)
        .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
        .join(", "),
    "",
    "## Topology",
    "",
    ...topologyList(report.topology),
    "",
    "## Figures",
    "",
    "Each figure is the median of its runs; ratios compare medians measured in this same bench run.",
    "`others' CPU`: cores used by processes outside the bench during the runs (median, max); a lower bound.",
    `\`CONTENDED\`: other processes used more than ${CONTENDED_CORES} cores during its runs (or its baseline's): not judged.`,
    "",
    markdownTable(report.figures.filter((f) => !f.id.startsWith("scale."))),
    "",
    ...scalingSection(report.figures),
    `argon2id faster: ${report.hashComparison
      .map((h) => `${h.faster} by ${h.by.toFixed(2)}x at ${h.concurrency} in flight`)
      .join("; ")}.`,
  ];
  lines.push("", ...cpuTable(report.figures));
  if (report.serializers) {
    lines.push(
      "",
      "## Serializers",
      "",
      "Encode + decode round trips of Moleculer's serializers, in this run (bench/serializers.ts):",
      "",
      report.serializers,
    );
  }
  const notes = report.figures.filter((f) => f.note);
  if (notes.length) lines.push("", "## Notes", "", ...notes.map((f) => `- ${f.label}: ${f.note}`));
  const bodies = report.figures.filter(
    (f) => f.errorBodies && !f.id.endsWith(".p95") && !f.id.endsWith(".mean"),
  );
  if (bodies.length) {
    lines.push("", "## Error answers", "", "The first body answered with each failing status:", "");
    for (const f of bodies) {
      for (const [status, body] of Object.entries(f.errorBodies ?? {})) {
        lines.push(`- ${f.label}, ${status}: \`${body.replaceAll("`", "'").replaceAll("\n", " ")}\``);
      }
    }
  }
  for (const p of report.profiles ?? []) lines.push("", `## CPU profile ${p.file}`, "", "```", p.top, "```");
  return `${lines.join("\n")}\n`;
}

/** The same reads through one and then two instances of every role, side by side. */
function scalingSection(figures: Figure[]): string[] {
  const scaling = figures.filter((f) => f.id.startsWith("scale."));
  if (scaling.length === 0) return [];
  return [
    "## Scaling",
    "",
    "`GET /users/:id` with the same 64 connections spread over the gateways, through one and then two",
    "instances of every role (gateway, auth, profile, chat), each instance a process of its own, all on",
    "the same two cores; with two gateways the p50 and p99 are those of the slower one.",
    "",
    markdownTable(scaling),
    "",
  ];
}

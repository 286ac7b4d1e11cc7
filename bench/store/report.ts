/**
 * The store growth benchmark's results: the medians of the runs of each measurement, the ratios
 * (nedb against SQLite at the same size, a store's send rate against its own at the smallest size),
 * the targets at the largest size, and the markdown tables that show them.
 */
import type { FillResult } from "./fill.ts";
import type { Latency, ReadsResult } from "./measure.ts";
import type { SendResult } from "./send.ts";
import type { Engine } from "./stores.ts";

export interface Measured<R> {
  runs: R[];
  median: R;
}

export interface SizeResult {
  messages: number;
  engine: Engine;
  startedAt: string;
  fill?: FillResult;
  /** Every file in the DATA_DIR after the fill, in bytes. */
  fileBytes?: number;
  /** By the store's name (stores.ts targetName). */
  reads: Record<string, Measured<ReadsResult>>;
  sends: Record<string, Measured<SendResult>>;
  /** Why this store stopped at this size. */
  failed?: string;
}

export interface TargetCheck {
  what: string;
  measured: string;
  target: string;
  met: boolean;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Field by field median of the runs (numbers, and the numbers of nested objects; others from run 1). */
export function medianOf<R>(runs: R[]): R {
  const merge = (items: unknown[]): unknown => {
    const first = items[0];
    if (typeof first === "number") return median(items as number[]);
    if (first && typeof first === "object" && !Array.isArray(first)) {
      const keys = Object.keys(first as object);
      return Object.fromEntries(
        keys.map((k) => [k, merge(items.map((item) => (item as Record<string, unknown> | null)?.[k]))]),
      );
    }
    return first;
  };
  return merge(runs) as R;
}

const MB = 1024 * 1024;
const count = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number | undefined) =>
  n === undefined ? "n/a" : n < 1 ? n.toFixed(3) : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : count(n);
const mb = (n: number | undefined) => (n === undefined ? "n/a" : (n / MB).toFixed(n < 10 * MB ? 1 : 0));
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? "" : (a / b).toFixed(2);
const pair = (l: Latency | null | undefined) => (l ? `${ms(l.p50)} / ${ms(l.p99)}` : "n/a");

function row(cells: string[]): string {
  return `| ${cells.join(" | ")} |`;
}

function table(head: string[], rows: string[][]): string {
  return [row(head), row(head.map(() => "---")), ...rows.map(row)].join("\n");
}

export function readsTable(results: SizeResult[]): string {
  const rows = results.flatMap((r) =>
    Object.entries(r.reads).map(([name, { median: m }], i) => [
      count(r.messages),
      name,
      ms(m.openMs),
      `${mb(m.rssBeforeOpenBytes)} / ${mb(m.rssOpenBytes)} / ${mb(m.rssGcBytes)}`,
      pair(m.newestPage),
      pair(m.deepPage),
      pair(m.chatList),
      ms(m.eventLoopP99Ms),
      i === 0 ? mb(r.fileBytes) : "",
      i === 0 && r.fill
        ? `${r.fill.added.toLocaleString("en-US")} in ${r.fill.insertSeconds.toFixed(1)} s`
        : "",
    ]),
  );
  return table(
    [
      "messages",
      "store",
      "open ms",
      "RSS MB before / open / GC",
      "newest 50 p50 / p99 ms",
      "1,000 deep p50 / p99 ms",
      "chat list p50 / p99 ms",
      "loop delay p99 ms",
      "files MB",
      "messages added",
    ],
    rows,
  );
}

export function sendsTable(results: SizeResult[]): string {
  const firstOf = (name: string) => results.find((r) => r.sends[name])?.sends[name]?.median.sendsPerS;
  const sqliteAt = (messages: number) =>
    results.find((r) => r.engine === "sqlite" && r.messages === messages)?.sends["sqlite FULL"]?.median;
  const rows = results.flatMap((r) =>
    Object.entries(r.sends).map(([name, { median: m, runs }]) => [
      count(r.messages),
      name,
      `${count(m.sendsPerS)} (${count(Math.min(...runs.map((run) => run.sendsPerS)))}-${count(Math.max(...runs.map((run) => run.sendsPerS)))})`,
      ratio(m.sendsPerS, firstOf(name)),
      r.engine === "nedb" ? ratio(m.sendsPerS, sqliteAt(r.messages)?.sendsPerS) : "",
      `${ms(m.p50Ms)} / ${ms(m.p99Ms)}`,
      ms(m.eventLoopP99Ms),
      m.cores.toFixed(2),
      Math.max(...runs.map((run) => run.otherCores)).toFixed(2),
      String(runs.reduce((n, run) => n + run.failures, 0)),
    ]),
  );
  return table(
    [
      "messages",
      "store",
      "sends/s (spread)",
      "vs smallest",
      "vs sqlite FULL",
      "send p50 / p99 ms",
      "loop delay p99 ms",
      "cores",
      "others max",
      "failed",
    ],
    rows,
  );
}

/** nedb's figures over SQLite's (the store on its thread) at each size both were measured at. */
export function baselineTable(results: SizeResult[]): string {
  const rows = results
    .filter((r) => r.engine === "nedb" && !r.failed)
    .flatMap((nedb) => {
      const sqlite = results.find((r) => r.engine === "sqlite" && r.messages === nedb.messages);
      const n = nedb.reads.nedb?.median;
      const s = sqlite?.reads.sqlite?.median;
      if (!sqlite || !n || !s) return [];
      return [
        [
          count(nedb.messages),
          ratio(n.openMs, s.openMs),
          ratio(n.rssOpenBytes, s.rssOpenBytes),
          ratio(n.newestPage.p99, s.newestPage.p99),
          n.deepPage && s.deepPage ? ratio(n.deepPage.p99, s.deepPage.p99) : "n/a",
          ratio(n.chatList.p99, s.chatList.p99),
          ratio(nedb.sends.nedb?.median.sendsPerS, sqlite.sends["sqlite FULL"]?.median.sendsPerS),
          ratio(nedb.fileBytes, sqlite.fileBytes),
        ],
      ];
    });
  return table(
    ["messages", "open", "RSS", "newest 50 p99", "1,000 deep p99", "chat list p99", "sends/s", "files"],
    rows,
  );
}

/** The targets, for the SQLite store as the platform opens it (on its thread, FULL). */
export function checkTargets(results: SizeResult[]): TargetCheck[] {
  const sqlite = results.filter((r) => r.engine === "sqlite" && r.reads.sqlite);
  const largest = sqlite.at(-1);
  const smallest = sqlite[0];
  if (!largest || !smallest) return [];
  const reads = largest.reads.sqlite?.median as ReadsResult;
  const send = largest.sends["sqlite FULL"]?.median;
  const first = smallest.sends["sqlite FULL"]?.median;
  const at = `at ${count(largest.messages)}`;
  const checks: TargetCheck[] = [
    { what: `open ${at}`, measured: `${ms(reads.openMs)} ms`, target: "<= 100 ms", met: reads.openMs <= 100 },
    {
      what: `RSS after open ${at}`,
      measured: `${mb(reads.rssOpenBytes)} MB`,
      target: "<= 150 MB",
      met: reads.rssOpenBytes <= 150 * MB,
    },
    {
      what: `newest 50 page p99 ${at}`,
      measured: `${ms(reads.newestPage.p99)} ms`,
      target: "<= 1 ms",
      met: reads.newestPage.p99 <= 1,
    },
  ];
  if (reads.deepPage) {
    checks.push({
      what: `1,000 deep page p99 ${at}`,
      measured: `${ms(reads.deepPage.p99)} ms`,
      target: "<= 1 ms",
      met: reads.deepPage.p99 <= 1,
    });
  }
  if (send && first) {
    checks.push({
      what: `send rate ${at} / at ${count(smallest.messages)}`,
      measured: `${count(send.sendsPerS)} / ${count(first.sendsPerS)} = ${ratio(send.sendsPerS, first.sendsPerS)}`,
      target: ">= 0.90",
      met: send.sendsPerS >= 0.9 * first.sendsPerS && send.failures === 0 && first.failures === 0,
    });
    checks.push({
      what: `event-loop delay p99 ${at}, sends`,
      measured: `${ms(send.eventLoopP99Ms)} ms`,
      target: "< 10 ms",
      met: send.eventLoopP99Ms < 10,
    });
  }
  checks.push({
    what: `event-loop delay p99 ${at}, reads`,
    measured: `${ms(reads.eventLoopP99Ms)} ms`,
    target: "< 10 ms",
    met: reads.eventLoopP99Ms < 10,
  });
  return checks;
}

export function targetsTable(checks: TargetCheck[]): string {
  return table(
    ["target", "measured", "wanted", "result"],
    checks.map((c) => [c.what, c.measured, c.target, c.met ? "met" : "missed"]),
  );
}

export function failures(results: SizeResult[]): string[] {
  return results.filter((r) => r.failed).map((r) => `${r.engine} at ${count(r.messages)}: ${r.failed}`);
}

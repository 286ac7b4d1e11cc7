import type { CpuUse } from "./cpu.ts";

/**
 * A figure is one measured quantity over several runs: its median, spread and, when it has one,
 * its ratio to a baseline measured in the same bench run and a target on the value or the ratio.
 */
export interface Target {
  on: "value" | "ratio";
  op: ">=" | "<=";
  value: number;
}

export interface Figure {
  id: string;
  label: string;
  unit: string;
  runs: number[];
  median: number;
  min: number;
  max: number;
  baseline?: { id: string; label: string; median: number; unit: string; contended: boolean };
  ratio?: number;
  target?: Target;
  /**
   * "info" when the figure has no target; "contended" when other processes used more than
   * CONTENDED_CORES during its runs (or its baseline's, for a target on the ratio): then neither the
   * value nor the ratio says anything about the code, and the figure is not judged.
   */
  result: "pass" | "miss" | "info" | "contended";
  /** Measured while other processes used more than CONTENDED_CORES (median over the runs). */
  contended: boolean;
  /** Requests over all runs, and those that failed (non-2xx, errors, timeouts); 0/0 for hashing. */
  requests: number;
  failures: number;
  /** Outcomes over all runs: HTTP statuses, and "timeout", "error", "dropped", "unanswered". */
  statusCodes?: Record<string, number>;
  /** The start of the first body answered with each non-2xx status. */
  errorBodies?: Record<string, string>;
  /** Cores used during the runs (cpu.ts): by processes outside the bench, and by each of its own. */
  cpu?: { others: { median: number; max: number }; processes: Record<string, number>; steal: number };
  note?: string;
}

/** Cores other processes may use during a figure's runs before its note calls it contended. */
export const CONTENDED_CORES = 0.2;

/** Above this share of failed requests a figure misses whatever its value. */
export const MAX_FAILURE_SHARE = 0.01;

export interface FigureInput {
  id: string;
  label: string;
  unit: string;
  runs: number[];
  baseline?: Figure;
  target?: Target;
  requests?: number;
  failures?: number;
  statusCodes?: Record<string, number>;
  errorBodies?: Record<string, string>;
  cpu?: CpuUse[];
  note?: string;
}

export function figure(input: FigureInput): Figure {
  const sorted = input.runs.filter(Number.isFinite).sort((a, b) => a - b);
  const empty = input.runs.length - sorted.length;
  const value = median(sorted);
  const base = input.baseline;
  const ratio = base && base.median > 0 ? value / base.median : undefined;
  const requests = input.requests ?? 0;
  const failures = input.failures ?? 0;
  const failedShare = requests > 0 ? failures / requests : 0;
  const cpu = input.cpu?.length ? cpuSummary(input.cpu) : undefined;
  const contended = cpu !== undefined && cpu.others.median > CONTENDED_CORES;
  let result: Figure["result"] = "info";
  if (input.target) {
    const actual = input.target.on === "ratio" ? ratio : value;
    if (contended || (input.target.on === "ratio" && base?.contended)) result = "contended";
    else if (actual !== undefined && meets(actual, input.target) && failedShare <= MAX_FAILURE_SHARE) {
      result = "pass";
    } else result = "miss";
  }
  const notes = [input.note];
  if (empty > 0) notes.push(`${empty} of ${input.runs.length} runs had no successful response`);
  if (base?.contended) notes.push(`its baseline was measured under contention`);
  if (contended && cpu) {
    notes.push(
      `measured under contention: other processes used ${cpu.others.median.toFixed(2)} cores (median) meanwhile`,
    );
  }
  if (failures > 0) {
    const failed = Object.entries(input.statusCodes ?? {})
      .filter(([code]) => !/^2\d\d$/.test(code))
      .map(([code, n]) => `${code} x${n}`)
      .join(", ");
    notes.push(
      `${failures} of ${requests} requests failed (${(failedShare * 100).toFixed(2)} %${failed ? `: ${failed}` : ""})`,
    );
  }
  const note = notes.filter(Boolean).join("; ");
  return {
    id: input.id,
    label: input.label,
    unit: input.unit,
    runs: input.runs,
    median: value,
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
    ...(base
      ? {
          baseline: {
            id: base.id,
            label: base.label,
            median: base.median,
            unit: base.unit,
            contended: base.contended,
          },
        }
      : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(input.target ? { target: input.target } : {}),
    result,
    contended,
    requests,
    failures,
    ...(input.statusCodes ? { statusCodes: input.statusCodes } : {}),
    ...(input.errorBodies && Object.keys(input.errorBodies).length ? { errorBodies: input.errorBodies } : {}),
    ...(cpu ? { cpu } : {}),
    ...(note ? { note } : {}),
  };
}

function cpuSummary(uses: CpuUse[]): NonNullable<Figure["cpu"]> {
  const sortedMedian = (values: number[]) => median([...values].sort((a, b) => a - b));
  const others = uses.map((u) => u.others);
  const names = [...new Set(uses.flatMap((u) => Object.keys(u.processes)))];
  return {
    others: { median: sortedMedian(others), max: Math.max(...others) },
    processes: Object.fromEntries(names.map((n) => [n, sortedMedian(uses.map((u) => u.processes[n] ?? 0))])),
    steal: sortedMedian(uses.map((u) => u.steal)),
  };
}

function meets(actual: number, target: Target): boolean {
  return target.op === ">=" ? actual >= target.value : actual <= target.value;
}

/** Median of an ascending array (mean of the middle two for an even length); NaN when empty. */
export function median(sorted: number[]): number {
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** How far a figure is from its target, as a sentence; empty when it meets it or has none. */
export function shortfall(f: Figure): string {
  if (f.result !== "miss" || !f.target) return "";
  const actual = f.target.on === "ratio" ? f.ratio : f.median;
  if (actual === undefined || Number.isNaN(actual)) return "no value: nothing was measured";
  const gap = f.target.op === ">=" ? 1 - actual / f.target.value : actual / f.target.value - 1;
  if (gap <= 0) return "target met, but too many requests failed";
  return `${(gap * 100).toFixed(0)} % ${f.target.op === ">=" ? "below" : "above"} target`;
}

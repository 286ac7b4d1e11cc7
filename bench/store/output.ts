/**
 * What the store growth benchmark writes: bench/results/store-latest.json (every run of every
 * measurement, their medians, the target checks) and store-latest.md (the tables of report.ts
 * under a header naming the command, the time, the machine and the code under test). The code
 * under test is the commit and a digest of the uncommitted changes to lib/ and services/, taken at
 * the start and at the end, so a run during which someone changed the code says so.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  baselineTable,
  checkTargets,
  failures,
  readsTable,
  type SizeResult,
  sendsTable,
  targetsTable,
} from "./report.ts";
import { THIS_TREE } from "./stores.ts";

export const RESULTS = path.join(THIS_TREE, "bench", "results");

export interface StoreReport {
  generatedAt: string;
  command: string;
  commit: string;
  /** Files of lib/ and services/ that differ from the commit. */
  uncommitted: number;
  codeAtStart: string;
  codeAtEnd: string;
  machine: ReturnType<typeof machineOf>;
  settings: {
    sizes: number[];
    nedbSizes: number[];
    runs: number;
    samples: number;
    sendS: number;
    warmupS: number;
    concurrency: number;
  };
  nedbTree: string | undefined;
  results: SizeResult[];
}

const git = (...args: string[]) =>
  execFileSync("git", ["-C", THIS_TREE, ...args], { encoding: "utf8" }).trim();

/** The commit, and `commit+digest` of it with the uncommitted changes to lib/ and services/. */
export function codeUnderTest(): Pick<StoreReport, "commit" | "uncommitted" | "codeAtStart"> {
  const diff = execFileSync("git", ["-C", THIS_TREE, "diff", "HEAD", "--", "lib", "services"]);
  const untracked = git("ls-files", "--others", "--exclude-standard", "--", "lib", "services");
  const digest = createHash("sha256").update(diff).update(untracked);
  for (const file of untracked.split("\n").filter(Boolean))
    digest.update(readFileSync(path.join(THIS_TREE, file)));
  const commit = git("rev-parse", "--short", "HEAD");
  return {
    commit,
    uncommitted: git("status", "--porcelain", "--", "lib", "services").split("\n").filter(Boolean).length,
    codeAtStart: `${commit}+${digest.digest("hex").slice(0, 12)}`,
  };
}

export function machineOf() {
  return {
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    sqlite: process.versions.sqlite,
  };
}

export function tables(report: StoreReport): string {
  const { runs, concurrency, sendS, warmupS } = report.settings;
  const failing = failures(report.results);
  return [
    `Reads, open, memory and files (medians of ${runs} runs; latencies in ms, one read at a time):\n`,
    readsTable(report.results),
    `\nSends through the chat service (${concurrency} in flight, ${sendS} s after ${warmupS} s of warm-up; medians of ${runs} runs):\n`,
    sendsTable(report.results),
    "\nnedb / SQLite at the same size (SQLite on its thread; sends with FULL):\n",
    baselineTable(report.results),
    "\nTargets (SQLite as the platform opens it: on its thread, synchronous FULL):\n",
    targetsTable(checkTargets(report.results)),
    ...(failing.length ? ["", ...failing.map((f) => `- ${f}`)] : []),
  ].join("\n");
}

export async function writeResults(report: StoreReport): Promise<void> {
  await mkdir(RESULTS, { recursive: true });
  const checks = checkTargets(report.results);
  await writeFile(
    path.join(RESULTS, "store-latest.json"),
    `${JSON.stringify({ ...report, checks }, null, 2)}\n`,
  );
  const { machine } = report;
  const head = [
    "# Store growth benchmark",
    "",
    `Command: \`${report.command}\`; ${report.generatedAt}; commit ${report.commit}` +
      (report.uncommitted ? ` with ${report.uncommitted} uncommitted files in lib/ and services/` : "") +
      `; ${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}, SQLite ${machine.sqlite}.`,
    "RSS: `process.memoryUsage().rss` right after the first answer, and after a full GC of both threads.",
    report.codeAtEnd && report.codeAtEnd !== report.codeAtStart
      ? `The code under test changed during the run: ${report.codeAtStart} at the start, ${report.codeAtEnd} at the end.`
      : `Code under test (commit + digest of uncommitted lib/ and services/): ${report.codeAtStart}.`,
    "",
  ];
  await writeFile(path.join(RESULTS, "store-latest.md"), `${head.join("\n")}${tables(report)}\n`);
}

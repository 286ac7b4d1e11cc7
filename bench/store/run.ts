/**
 * The store growth benchmark: `npx node bench/store/run.ts [--sizes 10000,100000,1000000]
 * [--nedb-max 300000] [--runs N] [--nedb-tree PATH]`, or `npm run bench -- --only store ...`.
 *
 * Fills a DATA_DIR with chat-shaped data (dataset.ts) through the store interface, in steps
 * (10,000, then on to 100,000, then to 1,000,000 messages), and at each size measures, every run
 * in a fresh child process: the open, the memory, the reads of a chat node (measure.ts), the
 * send rate through the real chat service in one embedded broker (send.ts, each run on a copy of
 * the DATA_DIR, so sends never grow the data of the next measurement), the event-loop delay, and
 * the files' size. SQLite is measured on its thread (`openStore`, as the platform runs it) and on
 * the calling thread (`new SqliteStore`), sends with `synchronous` FULL and NORMAL; today's nedb
 * store (tree.ts) up to `--nedb-max` messages, and SQLite at that size too, so that every nedb
 * figure has a SQLite one to compare with. Each figure is the median of `--runs` runs (one fill).
 * Writes bench/results/store-latest.{json,md} after every size and prints the tables at the end.
 */
import "../guard.ts";
import { cp, mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { waitUntilQuiet } from "../cpu.ts";
import { startChild, stopAll } from "../processes.ts";
import type { FillArgs, FillResult } from "./fill.ts";
import type { MeasureArgs, ReadsResult } from "./measure.ts";
import { codeUnderTest, machineOf, RESULTS, type StoreReport, tables, writeResults } from "./output.ts";
import { type Measured, medianOf, type SizeResult } from "./report.ts";
import type { SendArgs, SendResult } from "./send.ts";
import { type Engine, type StoreTarget, THIS_TREE, targetName } from "./stores.ts";
import { NEDB_COMMIT, nedbTree } from "./tree.ts";

const USAGE = `usage: npx node bench/store/run.ts [options]   (or: npm run bench -- --only store [options])
  --sizes LIST          message counts to measure at (default 10000,100000,1000000)
  --nedb-max N          largest size for the nedb baseline (default 300000; 0: no baseline)
  --nedb-tree PATH      a worktree of ${NEDB_COMMIT} with node_modules (default: made in .tmp/bench-store/)
  --runs N              runs per measurement, each in a fresh process (default 3)
  --samples N           reads per kind of read and run (default 500)
  --send-s S            seconds of sends per run (default 10, after 2 s of warm-up)
  --send-concurrency N  sends in flight (default 64)
  --work-dir PATH       where the DATA_DIRs go: a new folder in PATH (default: the system's temp dir), removed at the end
  --cpu-prof            every child writes V8 CPU profiles (one per thread) to bench/results/profiles/store/<child>/
Results: bench/results/store-latest.{json,md}.`;

const SEED = 20_261_206;
const WARMUP_S = 2;
const FILL_TIMEOUT_MS = 60 * 60_000;
const READS_TIMEOUT_MS = 10 * 60_000;
const QUIET = { serversBelow: Number.POSITIVE_INFINITY, othersBelow: 0.3 };
const QUIET_WAIT_MS = 10_000;

function positiveInt(value: string | undefined, fallback: number, name: string, zero = false): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < (zero ? 0 : 1))
    throw new Error(`--${name} takes a whole number, not ${value}`);
  return n;
}

export async function runStoreBench(argv: string[], command: string): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: "string" },
      "nedb-max": { type: "string" },
      "nedb-tree": { type: "string" },
      runs: { type: "string" },
      samples: { type: "string" },
      "send-s": { type: "string" },
      "send-concurrency": { type: "string" },
      "work-dir": { type: "string" },
      "cpu-prof": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const sizes = (values.sizes ?? "10000,100000,1000000").split(",").map((s) => positiveInt(s, 0, "sizes"));
  const nedbMax = positiveInt(values["nedb-max"], 300_000, "nedb-max", true);
  const runs = positiveInt(values.runs, 3, "runs");
  const samples = positiveInt(values.samples, 500, "samples");
  const sendS = positiveInt(values["send-s"], 10, "send-s");
  const concurrency = positiveInt(values["send-concurrency"], 64, "send-concurrency");
  const nedbSizes = nedbMax === 0 ? [] : [...new Set([...sizes.filter((s) => s < nedbMax), nedbMax])];
  const sqliteSizes = [...new Set([...sizes, ...nedbSizes])].sort((a, b) => a - b);
  const profiles = values["cpu-prof"] ? path.join(RESULTS, "profiles", "store") : undefined;
  /** Node flags of a child: its profiles, if asked for, in a folder named after it. */
  const flagsOf = (child: string, extra: string[] = []) =>
    profiles ? [...extra, "--cpu-prof", "--cpu-prof-dir", path.join(profiles, child)] : extra;

  const begun = Date.now();
  const log = (message: string) => {
    const s = Math.round((Date.now() - begun) / 1000);
    const clock = `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    process.stderr.write(`[store ${clock}] ${message}\n`);
  };
  for (const name of ["MONGO_URL", "TRANSPORTER", "REDIS_URL", "DATA_DIR", "EMBEDDED_SYNCHRONOUS"])
    delete process.env[name];
  const baselineTree = nedbMax > 0 ? await nedbTree(THIS_TREE, values["nedb-tree"], log) : undefined;
  const parent = values["work-dir"] ? path.resolve(values["work-dir"]) : os.tmpdir();
  await mkdir(parent, { recursive: true });
  const work = await mkdtemp(path.join(parent, "social-bench-store-"));
  const report: StoreReport = {
    generatedAt: new Date().toISOString(),
    command,
    ...codeUnderTest(),
    codeAtEnd: "",
    machine: machineOf(),
    settings: { sizes: sqliteSizes, nedbSizes, runs, samples, sendS, warmupS: WARMUP_S, concurrency },
    nedbTree: baselineTree,
    results: [],
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  log(
    `sizes ${sqliteSizes.join(", ")} (nedb ${nedbSizes.join(", ") || "none"}), ${runs} runs; data in ${work}`,
  );

  const failed = new Set<Engine>();
  try {
    for (const messages of sqliteSizes) {
      for (const engine of ["sqlite", "nedb"] as const) {
        const tree = engine === "sqlite" ? THIS_TREE : baselineTree;
        if (!tree || failed.has(engine) || (engine === "nedb" && !nedbSizes.includes(messages))) continue;
        const result: SizeResult = {
          messages,
          engine,
          startedAt: new Date().toISOString(),
          reads: {},
          sends: {},
        };
        report.results.push(result);
        try {
          await measureSize(result, tree);
        } catch (err) {
          if (engine === "sqlite") throw err;
          result.failed = err instanceof Error ? err.message.split("\n")[0] : String(err);
          failed.add(engine);
          log(`nedb stops at ${messages}: ${result.failed}`);
        }
        await writeResults(report);
      }
    }
  } finally {
    await stopAll();
    await rm(work, { recursive: true, force: true });
  }
  report.codeAtEnd = codeUnderTest().codeAtStart;
  await writeResults(report);
  process.stdout.write(`\n${tables(report)}\n`);
  log(`done in ${Math.round((Date.now() - begun) / 1000)} s; written bench/results/store-latest.{json,md}`);
  return 0;

  async function measureSize(result: SizeResult, tree: string): Promise<void> {
    const { engine, messages } = result;
    const dataDir = path.join(work, engine, "data");
    const manifestFile = path.join(work, engine, "manifest.json");
    await mkdir(dataDir, { recursive: true });
    const filling: StoreTarget = { tree, engine, placement: "thread" };
    log(`${engine}: filling to ${messages.toLocaleString("en-US")} messages`);
    const fillArgs: FillArgs = { target: filling, dataDir, manifestFile, messages, seed: SEED };
    const filler = `fill-${engine}-${messages}`;
    result.fill = await measureIn<FillResult>(
      filler,
      "store/fill.ts",
      fillArgs,
      FILL_TIMEOUT_MS,
      flagsOf(filler),
    );
    result.fileBytes = await bytesUnder(dataDir);
    log(`${engine}: ${result.fill.added} added in ${result.fill.insertSeconds.toFixed(1)} s`);

    const placements = engine === "sqlite" ? (["thread", "main"] as const) : (["thread"] as const);
    const readers = placements.map((placement): StoreTarget => ({ tree, engine, placement }));
    const senders =
      engine === "sqlite"
        ? placements.flatMap((placement) =>
            (["FULL", "NORMAL"] as const).map(
              (synchronous): StoreTarget => ({ tree, engine, placement, synchronous }),
            ),
          )
        : [filling];
    const reads = new Map<string, ReadsResult[]>();
    const sends = new Map<string, SendResult[]>();
    for (let run = 1; run <= runs; run++) {
      for (const target of readers) {
        const name = targetName(target);
        const arg: MeasureArgs = { target, dataDir, manifestFile, samples, seed: SEED + run };
        await waitUntilQuiet([], QUIET, QUIET_WAIT_MS);
        const child = `reads-${name}-${messages}-run${run}`;
        const flags = flagsOf(child, ["--expose-gc"]);
        const measured = await measureIn<ReadsResult>(
          child,
          "store/measure.ts",
          arg,
          READS_TIMEOUT_MS,
          flags,
        );
        reads.set(name, [...(reads.get(name) ?? []), measured]);
        log(
          `${name} at ${messages}, run ${run}: open ${measured.openMs.toFixed(1)} ms, newest p99 ${measured.newestPage.p99.toFixed(3)} ms`,
        );
      }
      for (const target of senders) {
        const name = targetName(target);
        const copy = path.join(work, engine, "send");
        await rm(copy, { recursive: true, force: true });
        await cp(dataDir, copy, { recursive: true });
        await waitUntilQuiet([], QUIET, QUIET_WAIT_MS);
        const arg: SendArgs = {
          target,
          dataDir: copy,
          manifestFile,
          warmupS: WARMUP_S,
          durationS: sendS,
          concurrency,
          seed: SEED + run,
        };
        const timeout = (WARMUP_S + sendS) * 1000 + 5 * 60_000;
        const child = `send-${name.replace(" ", "-")}-${messages}-run${run}`;
        const measured = await measureIn<SendResult>(child, "store/send.ts", arg, timeout, flagsOf(child));
        await rm(copy, { recursive: true, force: true });
        sends.set(name, [...(sends.get(name) ?? []), measured]);
        log(
          `${name} at ${messages}, run ${run}: ${Math.round(measured.sendsPerS)} sends/s, loop p99 ${measured.eventLoopP99Ms.toFixed(1)} ms, ${measured.failures} failed${measured.firstFailure ? ` (${measured.firstFailure})` : ""}`,
        );
      }
    }
    for (const [name, list] of reads) result.reads[name] = measuredOf(list);
    for (const [name, list] of sends) result.sends[name] = measuredOf(list);
  }
}

function measuredOf<R>(runs: R[]): Measured<R> {
  return { runs, median: medianOf(runs) };
}

/** Runs a measuring child to its end; answers its result line's fields. */
async function measureIn<R>(
  name: string,
  script: string,
  arg: unknown,
  timeoutMs: number,
  nodeFlags: string[] = [],
): Promise<R> {
  const child = await startChild(name, script, arg, { timeoutMs, nodeFlags });
  const exited = await Promise.race([
    child.exited.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(resolve, 60_000, false).unref()),
  ]);
  if (!exited) {
    await child.stop();
    throw new Error(`${name} did not exit within a minute of its result`);
  }
  const { bench: _, ...data } = child.data;
  return data as unknown as R;
}

async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const code = await runStoreBench(
    argv,
    `npx node bench/store/run.ts${argv.length ? ` ${argv.join(" ")}` : ""}`,
  ).catch((err: unknown) => {
    process.stderr.write(
      `store bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  });
  process.exit(code);
}

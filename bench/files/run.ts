/**
 * The file benchmark (issue 21): `npm run bench -- --only files [options]` (or
 * `npx node bench/files/run.ts [options]`).
 *
 * Against each target of deploy.ts (the embedded platform on the disk file store; a gateway node
 * alone in its process over NATS, on the disk store and on the S3 store of a SeaweedFS), and a
 * bare node:http server doing the store's work alone (bare-files.ts), all in child processes of
 * this one, which is the client:
 *
 * 1. Upload throughput: `--sequential` bodies of `--size-mb` MB one after another, then
 *    `--concurrent` at once (bodies made as they are written, bodies.ts), through `POST /uploads`
 *    and to the bare server's disk route (write stream, fsync, rename, folder fsync); the ratio of
 *    the platform's MB/s to the bare server's, measured next to it in the same run (target >= 0.7).
 *    With the S3 store the bare server also puts the same bodies to SeaweedFS itself (info).
 *    Beside them, to tell where the time goes (info): the product's blob store alone and its
 *    UploadReceiver over it in a bare node:http server, and two sketches of a leaner meter
 *    (stages.ts).
 * 2. Download throughput of the files just uploaded: `GET /files/:id` against the bare server's
 *    `fs.createReadStream` piped to the answer (target >= 0.7), and from S3 (info).
 * 3. Memory: `--clients` uploads of `--size-mb` MB at once; the VmRSS of the gateway's process
 *    sampled every 100 ms: idle (median of the second before), peak, peak - idle (target: under
 *    100 MB), with the process's own peaks of V8 heap, external memory and array buffers; the
 *    bare server likewise (info).
 * 4. Thumbnails: `--images` 12-megapixel JPEGs and PNGs uploaded, then `GET /files/:id?thumb=320`
 *    timed to its first body byte: the first request (the thumbnail is made then) and `--repeats`
 *    later ones (stored).
 *
 * Every figure is the median over `--runs` runs (5), each started once the machine is quiet (cpu.ts),
 * with the cores every process used meanwhile; within a run the platform and its baseline take
 * turns in alternating order. Only 127.0.0.1 is reached (guard.ts); every process started is stopped
 * by pid. Writes bench/results/files-latest.{json,md} (other settings: files-custom, --cpu-prof:
 * files-cpu-prof).
 */
import "../guard.ts";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { findBinary } from "../../test/harness/binaries.ts";
import { type SeaweedHandle, startSeaweed } from "../../test/harness/seaweedfs.ts";
import { type ServerHandle, startNats } from "../../test/harness/servers.ts";
import { codeDigest } from "../chat/run.ts";
import { type CpuUse, type MeasuredPid, measureCpu, waitUntilQuiet } from "../cpu.ts";
import { type Figure, figure, median } from "../figures.ts";
import { type BenchChild, startChild, stopAll } from "../processes.ts";
import { summarizeProfile } from "../profile-summary.ts";
import { machine, textTable } from "../report.ts";
import type { BareFilesArgs } from "./bare-files.ts";
import { type BenchImage, bodyChunks, type ImageKind, makeBlock, makeImage } from "./bodies.ts";
import { download, expectStatus, type Timed, upload } from "./client.ts";
import { type Deployed, deploy, type FilesTarget, TARGET_LABELS, TARGETS } from "./deploy.ts";
import { type MemoryPeaks, peaksOf, RssSampler, rssOf } from "./memory.ts";
import { type FilesReport, markdown } from "./output.ts";
import type { StagesArgs } from "./stages.ts";

const USAGE = `usage: npm run bench -- --only files [options]   (or: npx node bench/files/run.ts [options])
  --targets LIST    embedded, cluster-disk, cluster-s3 (default all three): the embedded platform on the disk
                    store; a gateway node alone in its process, over NATS, on the disk store / on SeaweedFS (S3)
  --runs N          measured runs of every figure (default 5); each figure is their median
  --size-mb N       MB (10^6 bytes) per upload (default 100)
  --sequential N    uploads one after another per run (default 3)
  --concurrent N    uploads at once per run (default 4)
  --clients N       uploads at once in the memory figure (default 20)
  --images N        12-megapixel JPEGs and as many PNGs per run for the thumbnail figure (default 3)
  --repeats N       requests of each stored thumbnail (default 5)
  --cpu-prof        the server children write V8 CPU profiles (to a temp dir), summarized in the results
  --env NAME=VALUE  a setting of the platform nodes (lib/config.ts), over the bench's own; repeatable
Results: bench/results/files-latest.{json,md}; with other settings files-custom, with --cpu-prof files-cpu-prof.`;

const THIS_TREE = path.resolve(import.meta.dirname, "../..");
const RESULTS = path.join(THIS_TREE, "bench", "results");
const MB = 1e6;
const QUIET = { serversBelow: 0.3, othersBelow: 0.2 };
const QUIET_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 60_000;
const RATIO_TARGET = { on: "ratio", op: ">=", value: 0.7 } as const;
const RSS_TARGET_MB = 100;
const THUMB = 320;
const DEFAULTS = { runs: 5, sizeMb: 100, sequential: 3, concurrent: 4, clients: 20, images: 3, repeats: 5 };

export interface FilesOptions {
  targets: FilesTarget[];
  runs: number;
  sizeMb: number;
  sequential: number;
  concurrent: number;
  clients: number;
  images: number;
  repeats: number;
  cpuProfDir: string | undefined;
  env: Record<string, string>;
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive whole number, not ${value}`);
  return n;
}

/** One measured phase of a run: what was moved, in how long, and the cores used meanwhile. */
interface Phase {
  bytes: number;
  ms: number;
  mbps: number;
  cpu: CpuUse;
}

/** Who answers a throughput phase: the platform, or the bare server on its disk or S3 route. */
type Server = "platform" | "bare" | "bare-s3" | "store" | "receiver" | "lean" | "tap";
const NO_PHASES: Record<Server, Phase | undefined> = {
  platform: undefined,
  bare: undefined,
  "bare-s3": undefined,
  store: undefined,
  receiver: undefined,
  lean: undefined,
  tap: undefined,
};

interface RunRecord {
  run: number;
  phases: Record<string, Record<Server, Phase | undefined>>;
}

interface RssRun {
  run: number;
  who: "platform" | "bare";
  idleBytes: number;
  peakBytes: number;
  deltaBytes: number;
  ms: number;
  mbps: number;
  samples: number;
  /** The process's own largest memoryUsage() values over the idle second, and over the burst. */
  idlePeaks: MemoryPeaks;
  peaks: MemoryPeaks;
  cpu: CpuUse;
}

interface ThumbRun {
  run: number;
  kind: ImageKind;
  /** First body byte of each image's first request, ms. */
  first: number[];
  /** First body byte of every later request, ms. */
  stored: number[];
  /** The first request's whole time, ms. */
  firstTotal: number[];
  thumbBytes: number[];
  cpu: CpuUse;
}

export async function runFilesBench(argv: string[], command: string): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      targets: { type: "string" },
      runs: { type: "string" },
      "size-mb": { type: "string" },
      sequential: { type: "string" },
      concurrent: { type: "string" },
      clients: { type: "string" },
      images: { type: "string" },
      repeats: { type: "string" },
      "cpu-prof": { type: "boolean", default: false },
      env: { type: "string", multiple: true, default: [] },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const targets = (values.targets ?? TARGETS.join(",")).split(",") as FilesTarget[];
  for (const t of targets) {
    if (!(TARGETS as readonly string[]).includes(t))
      throw new Error(`--targets takes ${TARGETS.join(", ")}, not ${t}`);
  }
  const o: FilesOptions = {
    targets,
    runs: positiveInt(values.runs, DEFAULTS.runs, "runs"),
    sizeMb: positiveInt(values["size-mb"], DEFAULTS.sizeMb, "size-mb"),
    sequential: positiveInt(values.sequential, DEFAULTS.sequential, "sequential"),
    concurrent: positiveInt(values.concurrent, DEFAULTS.concurrent, "concurrent"),
    clients: positiveInt(values.clients, DEFAULTS.clients, "clients"),
    images: positiveInt(values.images, DEFAULTS.images, "images"),
    repeats: positiveInt(values.repeats, DEFAULTS.repeats, "repeats"),
    cpuProfDir: values["cpu-prof"]
      ? await mkdtemp(path.join(os.tmpdir(), "social-bench-files-prof-"))
      : undefined,
    env: Object.fromEntries(
      (values.env ?? []).map((pair) => {
        const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
        if (!match) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
        return [match[1] as string, match[2] as string];
      }),
    ),
  };
  const isDefault =
    targets.join() === TARGETS.join() &&
    Object.entries(DEFAULTS).every(([k, v]) =>
      k === "runs" ? o.runs >= 3 : o[k as keyof typeof DEFAULTS] === v,
    ) &&
    Object.keys(o.env).length === 0;
  const outName = o.cpuProfDir ? "files-cpu-prof" : isDefault ? "files-latest" : "files-custom";

  const begun = Date.now();
  const log = (message: string) => {
    const s = Math.round((Date.now() - begun) / 1000);
    const clock = `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    process.stderr.write(`[files ${clock}] ${message}\n`);
  };
  for (const name of ["NATS_URL", "REDIS_URL", "MONGO_URL", "TRANSPORTER", "DATA_DIR"])
    delete process.env[name];

  // Uploads of every run, the 20-at-once bursts and the thumbnails, each target, with slack.
  const sizeS = o.sizeMb / 50;
  const budgetMs =
    (600 +
      targets.length *
        (120 +
          o.runs *
            (60 + 6 * (o.sequential + o.concurrent) * sizeS + 4 * o.clients * sizeS + 20 * o.images))) *
    1000;
  let weed: SeaweedHandle | undefined;
  let nats: ServerHandle | undefined;
  let workDir: string | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      await stopAll();
      await Promise.allSettled([weed?.stop(), nats?.stop()]);
      if (workDir) await rm(workDir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const onSignal = (code: number) => () => {
    log("interrupted; stopping every process");
    void cleanup().finally(() => process.exit(code));
  };
  process.once("SIGINT", onSignal(130));
  process.once("SIGTERM", onSignal(143));
  const watchdog = setTimeout(() => {
    log(`watchdog: still running after ${budgetMs / 1000} s; stopping every process`);
    void cleanup().finally(() => process.exit(1));
  }, budgetMs);
  watchdog.unref();

  const machineInfo = { ...machine(), weed: weedVersion() };
  const codeAtStart = codeDigest();
  const startedAt = new Date().toISOString();
  log(
    `${o.runs} run(s) per figure, targets ${targets.join(", ")}, ${o.sizeMb} MB bodies; ${machineInfo.cores} cores, ${machineInfo.cpuModel}; load average ${machineInfo.loadAverageAtStart.join(" / ")}; time limit ${Math.round(budgetMs / 1000)} s`,
  );

  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const profiles: { file: string; top: string }[] = [];
  const allCpu: CpuUse[] = [];
  const topology: Record<string, unknown> = {
    runner: { pid: process.pid, role: "the client: every upload and download" },
  };
  try {
    workDir = await mkdtemp(path.join(os.tmpdir(), "social-bench-files-"));
    const size = o.sizeMb * MB;
    const block = makeBlock();

    // sha256 alone, on this thread: the floor of what hashing every upload costs the gateway.
    const hashRuns: number[] = [];
    let digest = "";
    for (let r = 0; r < o.runs; r++) {
      const t0 = performance.now();
      const hash = createHash("sha256");
      for (const chunk of bodyChunks(block, size)) hash.update(chunk);
      digest = hash.digest("hex");
      hashRuns.push(size / MB / ((performance.now() - t0) / 1000));
    }
    figures.push(
      figure({
        id: "sha256",
        label: `sha256 of ${o.sizeMb} MB in 64 KiB chunks, one thread (node:crypto)`,
        unit: "MB/s",
        runs: hashRuns,
      }),
    );
    log(`sha256: ${median([...hashRuns].sort((a, b) => a - b)).toFixed(0)} MB/s`);

    log(`making ${o.images} JPEGs and ${o.images} PNGs of 12 megapixels`);
    const images: BenchImage[] = [];
    for (let i = 0; i < o.images; i++) {
      images.push(await makeImage("jpeg", i), await makeImage("png", i));
    }
    details.images = images.map((im) => ({ kind: im.kind, name: im.name, bytes: im.bytes.length }));

    if (targets.some((t) => t !== "embedded")) {
      nats = await startNats();
      log(`nats ${nats.url} (pid ${nats.pid})`);
      topology["nats-server"] = { pid: nats.pid, url: nats.url };
    }
    if (targets.includes("cluster-s3")) {
      weed = await startSeaweed({ bucket: "social-bench" });
      log(`seaweedfs ${weed.endpoint} (pid ${weed.pid})`);
      topology.seaweedfs = {
        pid: weed.pid,
        url: weed.endpoint,
        role: "weed mini: master, volume, filer, S3",
      };
    }
    const bareDir = path.join(workDir, "bare");
    const bareArgs: BareFilesArgs = {
      dir: bareDir,
      memoryFile: path.join(workDir, "bare-memory.json"),
      ...(weed
        ? {
            s3: {
              endpoint: weed.endpoint,
              bucket: "bench-bare",
              region: weed.region,
              accessKeyId: weed.accessKeyId,
              secretAccessKey: weed.secretAccessKey,
            },
          }
        : {}),
    };
    const baseFlags = (name: string) =>
      o.cpuProfDir
        ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`, `--cpu-prof-name=files-${name}.cpuprofile`]
        : [];
    const bare = await startChild("files-bare", "./files/bare-files.ts", bareArgs, {
      timeoutMs: READY_TIMEOUT_MS,
      nodeFlags: baseFlags("bare"),
    });
    const stagesDir = path.join(workDir, "stages");
    const stagesArgs: StagesArgs = {
      dir: stagesDir,
      memoryFile: path.join(workDir, "stages-memory.json"),
      ...(bareArgs.s3 ? { s3: { ...bareArgs.s3, bucket: "bench-stages" } } : {}),
    };
    const stages = await startChild("files-stages", "./files/stages.ts", stagesArgs, {
      timeoutMs: READY_TIMEOUT_MS,
      nodeFlags: baseFlags("stages"),
    });
    topology.stages = {
      pid: stages.pid,
      url: stages.data.url,
      role: "the product's UploadReceiver and blob stores in a bare node:http server (stages.ts)",
    };
    const bareUrl = String(bare.data.url);
    topology.bare = { pid: bare.pid, url: bareUrl, role: "baseline: bare node:http to disk (and to S3)" };
    log(`bare baseline ${bareUrl} (pid ${bare.pid})`);

    const users = Math.max(o.clients, o.concurrent, o.sequential, 2 * o.images);
    const infra = { natsUrl: nats?.url, s3Env: weed?.env };
    const ctxOf = (
      d: Deployed,
      server: BenchChild,
      serverDir: string,
      memoryFile: string,
      withStages: boolean,
    ): Ctx => ({
      o,
      d,
      bare: server,
      bareUrl: String(server.data.url),
      bareDir: serverDir,
      bareMemoryFile: memoryFile,
      stagesUrl: withStages ? String(stages.data.url) : undefined,
      stagesDir: withStages ? stagesDir : undefined,
      pids: {
        ...d.pids,
        bare: server.pid,
        ...(withStages ? { stages: stages.pid } : {}),
        ...(nats?.pid !== undefined && d.target !== "embedded" ? { "nats-server": nats.pid } : {}),
        ...(weed?.pid !== undefined && d.target === "cluster-s3" ? { seaweedfs: weed.pid } : {}),
      },
      block,
      size,
      digest,
      images,
      log,
      allCpu,
    });
    for (const target of targets) {
      // Memory first, each run on a fresh platform and a fresh bare server (a process that has
      // been through uploads holds on to what it grew to, which would hide a burst's cost).
      const rss: RssRun[] = [];
      for (let run = 1; run <= o.runs; run++) {
        const fresh = await deploy(target, users, infra, o.env, log, o.cpuProfDir, `rss${run}`);
        const freshDir = path.join(workDir, `bare-rss-${target}-${run}`);
        const freshMemory = `${freshDir}.memory.json`;
        let freshBare: BenchChild | undefined;
        try {
          freshBare = await startChild(
            `files-bare-rss-${target}-${run}`,
            "./files/bare-files.ts",
            { dir: freshDir, memoryFile: freshMemory } satisfies BareFilesArgs,
            { timeoutMs: READY_TIMEOUT_MS },
          );
          rss.push(...(await rssRun(ctxOf(fresh, freshBare, freshDir, freshMemory, false), run)));
        } finally {
          await freshBare?.stop();
          await fresh.stop();
          await rm(freshDir, { recursive: true, force: true });
        }
      }
      const d = await deploy(target, users, infra, o.env, log, o.cpuProfDir);
      topology[target] = {
        gateway: { pid: d.gateway.pid, url: d.url },
        ...(d.services
          ? { services: { pid: d.services.pid, role: "auth, profile, chat; embedded store" } }
          : {}),
        note: `the memory runs each started a fresh deployment of the same shape first (${o.runs} of them)`,
      };
      const ctx = ctxOf(d, bare, bareDir, bareArgs.memoryFile, true);
      try {
        figures.push(...rssFigures(ctx, rss));
        const throughput = await throughputRuns(ctx);
        figures.push(...throughputFigures(ctx, throughput));
        const thumbs = await thumbRuns(ctx);
        figures.push(...thumbFigures(ctx, thumbs));
        details[target] = {
          throughput: throughput.map((r) => ({
            run: r.run,
            phases: Object.fromEntries(
              Object.entries(r.phases).map(([k, v]) => [
                k,
                Object.fromEntries(
                  Object.entries(v).map(([s, p]) => [
                    s,
                    p && { mbps: p.mbps, ms: p.ms, bytes: p.bytes, cpu: p.cpu },
                  ]),
                ),
              ]),
            ),
          })),
          rss,
          thumbs,
        };
      } finally {
        await d.stop();
      }
      if (o.cpuProfDir) {
        const written = new Set(await readdir(o.cpuProfDir));
        // The main deployment's (throughput and thumbnails) and the first memory run's.
        for (const name of [
          `files-${target}-main.cpuprofile`,
          `files-${target}-gateway-main.cpuprofile`,
          `files-${target}-services-main.cpuprofile`,
          `files-${target}-rss1.cpuprofile`,
          `files-${target}-gateway-rss1.cpuprofile`,
        ]) {
          if (!written.has(name)) continue;
          const file = path.join(o.cpuProfDir, name);
          profiles.push({ file, top: await summarizeProfile(file, 25) });
        }
      }
    }
    await stages.stop();
    await bare.stop();
    if (o.cpuProfDir) {
      const written = new Set(await readdir(o.cpuProfDir));
      for (const name of ["files-bare.cpuprofile", "files-stages.cpuprofile"]) {
        if (!written.has(name)) continue;
        const file = path.join(o.cpuProfDir, name);
        profiles.push({ file, top: await summarizeProfile(file, 25) });
      }
    }
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }

  const codeAtEnd = codeDigest();
  const others = allCpu.map((c) => c.others).sort((a, b) => a - b);
  const report: FilesReport = {
    generatedAt: new Date().toISOString(),
    startedAt,
    command,
    machine: machineInfo,
    loadAverageAtEnd: os.loadavg().map((n) => Math.round(n * 100) / 100),
    othersCpu: {
      median: median(others),
      max: others.at(-1) ?? Number.NaN,
      measuredPhases: others.length,
    },
    code:
      codeAtEnd === codeAtStart
        ? { digest: codeAtStart }
        : { digest: codeAtEnd, changedDuringRun: true, atStart: codeAtStart },
    settings: {
      ...o,
      cpuProfDir: o.cpuProfDir ?? null,
      thumb: THUMB,
      rssTargetMB: RSS_TARGET_MB,
      ratioTarget: RATIO_TARGET.value,
    },
    topology,
    figures,
    details,
    profiles,
  };
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, `${outName}.json`), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(RESULTS, `${outName}.md`), markdown(report));
  process.stdout.write(`\n${textTable(figures)}\n`);
  for (const p of profiles) process.stdout.write(`\nCPU profile ${p.file}:\n${p.top}\n`);
  log(
    `others' CPU over ${others.length} measured phases: median ${report.othersCpu.median.toFixed(2)}, max ${report.othersCpu.max.toFixed(2)} cores; load average at end ${report.loadAverageAtEnd.join(" / ")}`,
  );
  if (codeAtEnd !== codeAtStart)
    log(`the server code changed during the run (${codeAtStart} -> ${codeAtEnd})`);
  log(`done in ${Math.round((Date.now() - begun) / 1000)} s; written bench/results/${outName}.{json,md}`);
  return 0;
}

function weedVersion(): string {
  try {
    const out = execFileSync(findBinary("weed"), ["version"], { encoding: "utf8", timeout: 10_000 });
    return /\d+\.\d+(?:\.\d+)?/.exec(out)?.[0] ?? (out.split("\n")[0]?.trim() || "unknown");
  } catch (err) {
    return `unknown (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
  }
}

interface Ctx {
  o: FilesOptions;
  d: Deployed;
  bare: BenchChild;
  bareUrl: string;
  bareDir: string;
  bareMemoryFile: string;
  /** The stages server (stages.ts) and its folder; undefined in the memory runs. */
  stagesUrl: string | undefined;
  stagesDir: string | undefined;
  pids: Record<string, MeasuredPid>;
  block: Buffer;
  size: number;
  digest: string;
  images: BenchImage[];
  log: (m: string) => void;
  allCpu: CpuUse[];
}

async function quiet(ctx: Ctx, what: string): Promise<void> {
  const servers = Object.entries(ctx.pids)
    .filter(([name]) => name !== "runner")
    .map(([, pid]) => pid);
  if (!(await waitUntilQuiet(servers, QUIET, QUIET_TIMEOUT_MS))) {
    ctx.log(`${what}: the machine was still busy after ${QUIET_TIMEOUT_MS / 1000} s; running anyway`);
  }
}

async function timed(ctx: Ctx, work: () => Promise<Timed[]>): Promise<Phase> {
  const cpu = measureCpu(ctx.pids);
  const t0 = performance.now();
  const answers = await work();
  const ms = performance.now() - t0;
  const used = cpu();
  ctx.allCpu.push(used);
  const bytes = answers.reduce((s, a) => s + a.bytes, 0);
  return { bytes, ms, mbps: bytes / MB / (ms / 1000), cpu: used };
}

/** Uploads `n` bodies (one after another, or all at once) to `server`; answers the stored ids. */
async function uploads(
  ctx: Ctx,
  server: Server,
  n: number,
  together: boolean,
  tag: string,
): Promise<{ phase: Phase; ids: string[] }> {
  const ids: string[] = [];
  const one = async (i: number) => {
    const user = ctx.d.users[i % ctx.d.users.length];
    const name = encodeURIComponent(`${tag}-${i}.mp4`);
    const s3 = ctx.d.target === "cluster-s3" ? "s3-" : "";
    const url =
      server === "platform"
        ? `${ctx.d.url}/uploads?name=${name}`
        : server === "store" || server === "receiver"
          ? `${ctx.stagesUrl}/${s3}${server}?name=${name}`
          : server === "lean" || server === "tap"
            ? `${ctx.stagesUrl}/${server}`
            : `${ctx.bareUrl}/${server === "bare" ? "disk" : "s3"}`;
    const t = expectStatus(
      `upload to ${server}`,
      await upload(
        url,
        server === "platform" ? user?.token : undefined,
        bodyChunks(ctx.block, ctx.size),
        ctx.size,
      ),
      201,
    );
    const answer = JSON.parse(t.text) as { id: string; size: number; sha256?: string };
    if (answer.size !== ctx.size) throw new Error(`${server} stored ${answer.size} bytes, not ${ctx.size}`);
    if (answer.sha256 !== undefined && answer.sha256 !== ctx.digest)
      throw new Error(`the platform's sha256 ${answer.sha256} is not the body's ${ctx.digest}`);
    ids[i] = answer.id;
    return t;
  };
  const phase = await timed(ctx, async () => {
    if (together) return Promise.all(Array.from({ length: n }, (_, i) => one(i)));
    const out: Timed[] = [];
    for (let i = 0; i < n; i++) out.push(await one(i));
    return out;
  });
  return { phase, ids };
}

async function downloads(ctx: Ctx, server: Server, ids: string[], together: boolean): Promise<Phase> {
  const one = async (id: string, i: number) => {
    const user = ctx.d.users[i % ctx.d.users.length];
    const url =
      server === "platform"
        ? `${ctx.d.url}/files/${id}`
        : `${ctx.bareUrl}/${server === "bare" ? "disk" : "s3"}/${id}`;
    const t = expectStatus(
      `download from ${server}`,
      await download(url, server === "platform" ? user?.token : undefined),
      200,
    );
    if (t.bytes !== ctx.size) throw new Error(`${server} sent ${t.bytes} bytes, not ${ctx.size}`);
    return t;
  };
  return timed(ctx, async () => {
    if (together) return Promise.all(ids.map(one));
    const out: Timed[] = [];
    for (const [i, id] of ids.entries()) out.push(await one(id, i));
    return out;
  });
}

/**
 * The servers of a target's throughput phases, in the order of run `run` (alternating); the
 * stages (stages.ts) take uploads only.
 */
function serversOf(ctx: Ctx, run: number, uploading: boolean): Server[] {
  const list: Server[] = [
    "bare",
    ...(ctx.d.target === "cluster-s3" ? (["bare-s3"] as const) : []),
    ...(uploading && ctx.stagesUrl ? (["store", "receiver"] as const) : []),
    ...(uploading && ctx.stagesUrl && ctx.d.target !== "cluster-s3" ? (["lean", "tap"] as const) : []),
    "platform",
  ];
  return run % 2 === 1 ? list : [...list].reverse();
}

async function clearBare(ctx: Ctx): Promise<void> {
  const dir = path.join(ctx.bareDir, "files");
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { force: true });
  // The stages' disk store and sketches: their files, not their tmp folders.
  if (ctx.stagesDir) {
    for (const folder of ["files", "sketch"]) {
      const files = path.join(ctx.stagesDir, folder);
      for (const name of await readdir(files).catch(() => [])) {
        if (name !== "tmp") await rm(path.join(files, name), { recursive: true, force: true });
      }
    }
  }
}

async function throughputRuns(ctx: Ctx): Promise<RunRecord[]> {
  const { o, d, log } = ctx;
  const records: RunRecord[] = [];
  for (let run = 1; run <= o.runs; run++) {
    await quiet(ctx, `${d.target} throughput run ${run}`);
    const record: RunRecord = { run, phases: {} };
    const stored: Partial<Record<Server, { seq: string[]; conc: string[] }>> = {};
    const put = (phase: string, server: Server, p: Phase) => {
      record.phases[phase] ??= { ...NO_PHASES };
      (record.phases[phase] as Record<Server, Phase | undefined>)[server] = p;
    };
    const order = serversOf(ctx, run, true);
    const downOrder = serversOf(ctx, run, false);
    for (const server of order) {
      const seq = await uploads(ctx, server, o.sequential, false, `r${run}-seq`);
      put("upload.seq", server, seq.phase);
      stored[server] = { seq: seq.ids, conc: [] };
    }
    for (const server of order) {
      const conc = await uploads(ctx, server, o.concurrent, true, `r${run}-conc`);
      put("upload.conc", server, conc.phase);
      (stored[server] as { conc: string[] }).conc = conc.ids;
    }
    for (const server of downOrder)
      put("download.seq", server, await downloads(ctx, server, stored[server]?.seq ?? [], false));
    for (const server of downOrder)
      put("download.conc", server, await downloads(ctx, server, stored[server]?.conc ?? [], true));
    records.push(record);
    await clearBare(ctx);
    const line = Object.entries(record.phases)
      .map(
        ([k, v]) =>
          `${k} ${order
            .filter((s) => v[s])
            .map((s) => `${s} ${v[s]?.mbps.toFixed(0)}`)
            .join(" / ")} MB/s (others ${Math.max(...order.map((s) => v[s]?.cpu.others ?? 0)).toFixed(2)})`,
      )
      .join("; ");
    log(`${d.target} run ${run}/${o.runs}: ${line}`);
  }
  return records;
}

function throughputFigures(ctx: Ctx, records: RunRecord[]): Figure[] {
  const { o, d } = ctx;
  const label = TARGET_LABELS[d.target];
  const out: Figure[] = [];
  const kinds = [
    ["upload.seq", `${o.sequential} x ${o.sizeMb} MB one after another`],
    ["upload.conc", `${o.concurrent} x ${o.sizeMb} MB at once`],
    ["download.seq", `${o.sequential} x ${o.sizeMb} MB one after another`],
    ["download.conc", `${o.concurrent} x ${o.sizeMb} MB at once`],
  ] as const;
  for (const [kind, shape] of kinds) {
    const runsOf = (server: Server) => records.map((r) => r.phases[kind]?.[server]?.mbps ?? Number.NaN);
    const cpuOf = (server: Server) =>
      records.map((r) => r.phases[kind]?.[server]?.cpu).filter((c): c is CpuUse => c !== undefined);
    const upload = kind.startsWith("upload");
    const base = figure({
      id: `${d.target}.bare.${kind}`,
      label: upload
        ? `bare node:http -> disk (write, fsync, rename), ${shape} [${d.target}]`
        : `bare node:http createReadStream -> res, ${shape} [${d.target}]`,
      unit: "MB/s",
      runs: runsOf("bare"),
      cpu: cpuOf("bare"),
    });
    out.push(base);
    if (d.target === "cluster-s3") {
      out.push(
        figure({
          id: `${d.target}.bare-s3.${kind}`,
          label: upload
            ? `bare node:http -> S3 PutObject (SeaweedFS), ${shape}`
            : `bare node:http S3 GetObject -> res, ${shape}`,
          unit: "MB/s",
          runs: runsOf("bare-s3"),
          baseline: base,
          cpu: cpuOf("bare-s3"),
        }),
      );
    }
    if (upload && ctx.stagesUrl) {
      const where = d.target === "cluster-s3" ? "S3BlobStore" : "DiskBlobStore";
      out.push(
        figure({
          id: `${d.target}.stage.store.${kind}`,
          label: `stage: ${where}.put alone in node:http, ${shape}`,
          unit: "MB/s",
          runs: runsOf("store"),
          baseline: base,
          cpu: cpuOf("store"),
        }),
        figure({
          id: `${d.target}.stage.receiver.${kind}`,
          label: `stage: UploadReceiver (sniff, sha256 meter) + ${where} in node:http, ${shape}`,
          unit: "MB/s",
          runs: runsOf("receiver"),
          baseline: base,
          cpu: cpuOf("receiver"),
        }),
      );
      if (d.target !== "cluster-s3") {
        out.push(
          figure({
            id: `${d.target}.sketch.lean.${kind}`,
            label: `sketch: bare -> disk with one Transform counting and hashing (sha256), ${shape}`,
            unit: "MB/s",
            runs: runsOf("lean"),
            baseline: base,
            cpu: cpuOf("lean"),
          }),
          figure({
            id: `${d.target}.sketch.tap.${kind}`,
            label: `sketch: bare -> disk, counted and hashed in a 'data' listener, ${shape}`,
            unit: "MB/s",
            runs: runsOf("tap"),
            baseline: base,
            cpu: cpuOf("tap"),
          }),
        );
      }
    }
    // The host's speed drifts over minutes: the ratio within each run, measured side by side, too.
    const paired = records
      .map((r) => (r.phases[kind]?.platform?.mbps ?? Number.NaN) / (r.phases[kind]?.bare?.mbps ?? Number.NaN))
      .filter(Number.isFinite);
    const pairedMedian = median([...paired].sort((a, b) => a - b));
    out.push(
      figure({
        id: `${d.target}.${kind}`,
        label: `${upload ? "POST /uploads" : "GET /files/:id"}, ${label}, ${shape}`,
        unit: "MB/s",
        runs: runsOf("platform"),
        baseline: base,
        target: RATIO_TARGET,
        cpu: cpuOf("platform"),
        note: `ratio within each run ${paired.map((x) => x.toFixed(2)).join(", ")} (median ${pairedMedian.toFixed(2)})`,
      }),
    );
  }
  return out;
}

/** `clients` uploads at once to one server while its RSS is sampled. */
async function rssBurst(ctx: Ctx, who: "platform" | "bare", run: number): Promise<RssRun> {
  const pid = who === "platform" ? ctx.d.gateway.pid : ctx.bare.pid;
  const memoryFile = who === "platform" ? ctx.d.memoryFile : ctx.bareMemoryFile;
  await peaksOf(pid, memoryFile); // starts the idle window
  const idle: number[] = [];
  for (let i = 0; i < 10; i++) {
    idle.push(rssOf(pid));
    await sleep(100);
  }
  const idlePeaks = await peaksOf(pid, memoryFile); // and starts the burst's
  const sampler = new RssSampler(pid);
  const { phase } = await uploads(ctx, who, ctx.o.clients, true, `r${run}-burst`);
  const samples = sampler.stop();
  const peaks = await peaksOf(pid, memoryFile);
  const idleBytes = median(idle.sort((a, b) => a - b));
  const peakBytes = Math.max(...samples, peaks.rss);
  return {
    run,
    who,
    idleBytes,
    peakBytes,
    deltaBytes: peakBytes - idleBytes,
    ms: phase.ms,
    mbps: phase.mbps,
    samples: samples.length,
    idlePeaks,
    peaks,
    cpu: phase.cpu,
  };
}

/** Bytes of the warm-up upload a fresh server gets before its idle RSS is read. */
const WARMUP_BYTES = 1_000_000;

/**
 * One memory run on a fresh platform and bare server: each is warmed up with one upload and one
 * download of 1 MB (so code loaded on first use is in), the machine let go quiet, then the burst.
 */
async function rssRun(ctx: Ctx, run: number): Promise<RssRun[]> {
  const { o, d, log } = ctx;
  const warm = { ...ctx, size: WARMUP_BYTES, digest: sha256Of(ctx.block, WARMUP_BYTES) };
  for (const who of ["platform", "bare"] as const) {
    const { ids } = await uploads(warm, who, 1, false, `r${run}-warmup`);
    await downloads(warm, who, ids, false);
  }
  await quiet(ctx, `${d.target} memory run ${run}`);
  const out: RssRun[] = [];
  const order: ("platform" | "bare")[] = run % 2 === 1 ? ["platform", "bare"] : ["bare", "platform"];
  for (const who of order) {
    const r = await rssBurst(ctx, who, run);
    out.push(r);
    log(
      `${d.target} memory run ${run}/${o.runs}, ${who}: idle ${(r.idleBytes / MB).toFixed(1)} MB, peak ${(r.peakBytes / MB).toFixed(1)} MB (+${(r.deltaBytes / MB).toFixed(1)}); heap used ${(r.peaks.heapUsed / MB).toFixed(1)}, external ${(r.peaks.external / MB).toFixed(1)}, array buffers ${(r.peaks.arrayBuffers / MB).toFixed(1)} MB at most; ${r.mbps.toFixed(0)} MB/s; others ${r.cpu.others.toFixed(2)}`,
    );
  }
  return out;
}

function sha256Of(block: Buffer, size: number): string {
  const hash = createHash("sha256");
  for (const chunk of bodyChunks(block, size)) hash.update(chunk);
  return hash.digest("hex");
}

function rssFigures(ctx: Ctx, runs: RssRun[]): Figure[] {
  const { o, d } = ctx;
  const mine = runs.filter((r) => r.who === "platform");
  const bare = runs.filter((r) => r.who === "bare");
  const what =
    d.target === "embedded"
      ? "the platform process (gateway, auth, profile, chat, store)"
      : "the gateway process";
  const f = (id: string, label: string, list: RssRun[], pick: (r: RssRun) => number, target = false) =>
    figure({
      id: `${d.target}.${id}`,
      label,
      unit: "MB",
      runs: list.map((r) => pick(r) / MB),
      cpu: list.map((r) => r.cpu),
      ...(target ? { target: { on: "value", op: "<=", value: RSS_TARGET_MB } as const } : {}),
    });
  return [
    f("rss.idle", `RSS of ${what}, idle, ${TARGET_LABELS[d.target]}`, mine, (r) => r.idleBytes),
    f(
      "rss.peak",
      `RSS peak, ${o.clients} x ${o.sizeMb} MB uploads at once, ${TARGET_LABELS[d.target]}`,
      mine,
      (r) => r.peakBytes,
    ),
    f(
      "rss.delta",
      `RSS peak - idle, ${o.clients} uploads at once, ${TARGET_LABELS[d.target]}`,
      mine,
      (r) => r.deltaBytes,
      true,
    ),
    f(
      "rss.heapUsed",
      `V8 heap used at most, ${o.clients} uploads at once, ${TARGET_LABELS[d.target]}`,
      mine,
      (r) => r.peaks.heapUsed,
    ),
    f(
      "rss.arrayBuffers",
      `array buffers at most, ${o.clients} uploads at once, ${TARGET_LABELS[d.target]}`,
      mine,
      (r) => r.peaks.arrayBuffers,
    ),
    f(
      "bare.rss.delta",
      `bare node:http -> disk, RSS peak - idle, ${o.clients} uploads at once [${d.target}]`,
      bare,
      (r) => r.deltaBytes,
    ),
  ];
}

async function thumbRuns(ctx: Ctx): Promise<ThumbRun[]> {
  const { o, d, log } = ctx;
  const out: ThumbRun[] = [];
  for (let run = 1; run <= o.runs; run++) {
    await quiet(ctx, `${d.target} thumbnail run ${run}`);
    for (const kind of ["jpeg", "png"] as const) {
      const list = ctx.images.filter((im) => im.kind === kind);
      const ids: string[] = [];
      for (const [i, im] of list.entries()) {
        const user = d.users[i % d.users.length];
        const t = expectStatus(
          `upload of ${im.name}`,
          await upload(
            `${d.url}/uploads?name=${encodeURIComponent(im.name)}`,
            user?.token,
            [im.bytes],
            im.bytes.length,
          ),
          201,
        );
        const view = JSON.parse(t.text) as {
          id: string;
          width?: number;
          height?: number;
          contentType: string;
        };
        if (view.width !== im.width || view.height !== im.height)
          throw new Error(`${im.name} stored as ${view.contentType} ${view.width}x${view.height}`);
        ids.push(view.id);
      }
      const record: ThumbRun = {
        run,
        kind,
        first: [],
        stored: [],
        firstTotal: [],
        thumbBytes: [],
        cpu: undefined as unknown as CpuUse,
      };
      const cpu = measureCpu(ctx.pids);
      for (const [i, id] of ids.entries()) {
        const user = d.users[i % d.users.length];
        const url = `${d.url}/files/${id}?thumb=${THUMB}`;
        const first = expectStatus(`thumbnail of ${id}`, await download(url, user?.token), 200);
        record.first.push(first.firstByteMs);
        record.firstTotal.push(first.ms);
        record.thumbBytes.push(first.bytes);
        for (let k = 0; k < o.repeats; k++) {
          const again = expectStatus(`thumbnail of ${id}`, await download(url, user?.token), 200);
          if (again.bytes !== first.bytes)
            throw new Error(`the stored thumbnail of ${id} differs from the first`);
          record.stored.push(again.firstByteMs);
        }
      }
      record.cpu = cpu();
      ctx.allCpu.push(record.cpu);
      out.push(record);
      const med = (xs: number[]) => median([...xs].sort((a, b) => a - b));
      log(
        `${d.target} thumbnails run ${run}/${o.runs}, ${kind}: first ${record.first.map((x) => x.toFixed(0)).join(", ")} ms, stored p50 ${med(record.stored).toFixed(2)} ms; others ${record.cpu.others.toFixed(2)}`,
      );
    }
  }
  return out;
}

function thumbFigures(ctx: Ctx, runs: ThumbRun[]): Figure[] {
  const { d, o } = ctx;
  const med = (xs: number[]) => median([...xs].sort((a, b) => a - b));
  const out: Figure[] = [];
  for (const kind of ["jpeg", "png"] as const) {
    const list = runs.filter((r) => r.kind === kind);
    const name = kind === "jpeg" ? "JPEG" : "PNG";
    out.push(
      figure({
        id: `${d.target}.thumb.${kind}.first`,
        label: `first byte of ?thumb=${THUMB}, 12 MP ${name}, first request (made), ${TARGET_LABELS[d.target]}`,
        unit: "ms",
        runs: list.map((r) => med(r.first)),
        cpu: list.map((r) => r.cpu),
        note: `median over ${o.images} images per run`,
      }),
      figure({
        id: `${d.target}.thumb.${kind}.stored`,
        label: `first byte of ?thumb=${THUMB}, 12 MP ${name}, later requests (stored), ${TARGET_LABELS[d.target]}`,
        unit: "ms",
        runs: list.map((r) => med(r.stored)),
        cpu: list.map((r) => r.cpu),
        note: `median over ${o.images} images x ${o.repeats} requests per run`,
      }),
    );
  }
  return out;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  let code = 1;
  try {
    code = await runFilesBench(argv, `npx node bench/files/run.ts ${argv.join(" ")}`.trim());
  } catch (err) {
    process.stderr.write(
      `files failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  process.exit(code);
}

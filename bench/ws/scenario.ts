/**
 * The 10,000-connection WebSocket benchmark as a scenario of the bench runner: for the bare `ws`
 * baseline, then Centrifugo and each platform topology, it seeds N users in groups of GROUP_SIZE, opens N
 * ChatSockets at a bounded concurrency (setup time, gateway memory per idle connection), drives
 * a fixed send rate for the measured runs (delivery, latency, delivered messages/s), and finds the
 * saturation rate: the highest rate whose runs keep up with none lost (drive.ts keptUp), probed in
 * that deployment and measured in a fresh one. The platform's figures take the bare baseline's,
 * measured in the same run, as their baseline; so do Centrifugo's, which have no targets (they are
 * the platform's).
 */
import { performance } from "node:perf_hooks";
import { type CpuUse, measureCpu, waitUntilQuiet } from "../cpu.ts";
import { type Figure, type Target as FigureTarget, figure } from "../figures.ts";
import { percentile } from "../load.ts";
import type { Infra, ProcessInfo, Settings } from "../scenarios.ts";
import { type Client, closeAll, connectAll, type SocketImpl } from "./clients.ts";
import {
  DRAIN_MS,
  type DriveResult,
  describeDrive,
  drive,
  KEEP_UP_SHARE,
  keptUp,
  MESSAGE_CHARS,
  onMessage,
} from "./drive.ts";
import { type MemorySample, sampleMemory, sampleRss } from "./memory.ts";
import { GROUP_SIZE } from "./seed.ts";
import { type Deployed, deploy, TARGETS, type Target } from "./topology.ts";

export interface WsOptions {
  connections: number;
  /** Messages per second of the measured runs. */
  rate: number;
  /** Upgrades in flight while connecting. */
  connectConcurrency: number;
  impl: SocketImpl;
  targets: Target[];
  /** Search each target's saturation rate (skipped when false). */
  saturation: boolean;
  /**
   * When set, one run at this rate before the measured runs: those then show how the target
   * recovers from an overload (the figures are of the runs after it).
   */
  overloadRate?: number | undefined;
}

export const WS_DEFAULTS: WsOptions = {
  connections: 10_000,
  rate: 100,
  connectConcurrency: 8,
  impl: "ws",
  targets: [...TARGETS],
  saturation: true,
};

/** Steps of the saturation search after the doubling phase. */
const BISECT_STEPS = 3;
const MAX_RATE = 200_000;
/** Seconds of each saturation probe at most. */
const PROBE_MAX_S = 5;
/** How many times, and by how much, the saturation rate steps down when its runs do not keep up. */
const CONFIRM_STEPS = 3;
const STEP_DOWN = 0.9;
const QUIET = { serversBelow: 0.2, othersBelow: 0.2 };
const QUIET_TIMEOUT_MS = 60_000;

const LABEL: Record<Target, string> = {
  bare: "bare ws",
  centrifugo: "Centrifugo v6",
  embedded: "embedded platform",
  cluster: "cluster platform",
  cluster2: "cluster platform, 2 gateways + 2 chat nodes",
  "cluster-ha": "cluster platform on a NATS cluster and a Redis Cluster",
};

export interface TargetResult {
  target: Target;
  connections: number;
  connected: number;
  connectFailed: number;
  connectFirstError?: string;
  connectSeconds: number;
  seedSeconds: number;
  setup: { p50: number; p99: number; max: number };
  memory: {
    before: MemorySample;
    after: MemorySample;
    rssPerConnKB: number;
    heapPerConnKB: number;
    /** The young generation's growth while connecting, per connection. */
    youngPerConnKB: number;
    /** V8's heap pages' growth (used or not), per connection: RSS less this and external is native memory. */
    heapTotalPerConnKB: number;
  };
  closesDuringRuns: number;
  /** The overload run before the measured ones, when asked for. */
  overload?: DriveResult & { cpu: CpuUse };
  runs: (DriveResult & { cpu: CpuUse })[];
  saturation?: {
    /** The rate of the runs: the probed rate, or a step below it where that did not hold. */
    rate: number;
    probedRate: number;
    probeS: number;
    probes: DriveResult[];
    runs: (DriveResult & { cpu: CpuUse })[];
  };
}

export interface WsMeasured {
  figures: Figure[];
  processes: ProcessInfo[];
  results: TargetResult[];
}

async function settle(s: Settings, d: Deployed, label: string): Promise<void> {
  const pids = [
    ...d.children.map((c) => c.pid),
    ...Object.values(s.infraPids).filter((p) => p !== undefined),
  ];
  if (!(await waitUntilQuiet(pids, QUIET, QUIET_TIMEOUT_MS))) {
    s.log(`${label}: the machine was still busy after ${QUIET_TIMEOUT_MS / 1000} s; running anyway`);
  }
}

async function measuredRuns(
  s: Settings,
  d: Deployed,
  clients: Client[],
  label: string,
  rate: number,
  runs: number,
): Promise<(DriveResult & { cpu: CpuUse })[]> {
  const pids = {
    runner: process.pid,
    ...Object.fromEntries(d.children.map((c) => [c.name, c.pid])),
    ...s.infraPids,
  };
  const results: (DriveResult & { cpu: CpuUse })[] = [];
  for (let i = 1; i <= runs; i++) {
    await settle(s, d, label);
    const cpu = measureCpu(pids);
    const r = await drive(clients, rate, s.durationS);
    const used = cpu();
    s.log(`${label} run ${i}/${runs}: ${describeDrive(r)}`);
    results.push({ ...r, cpu: used });
  }
  return results;
}

/**
 * Doubles the rate from `start` while runs keep up, then bisects between the last good and first
 * bad. A probe that falls behind is tried once more before its rate counts as bad: on two shared
 * cores one stall of a few hundred ms makes a 5 s probe miss, and the bisection would then settle
 * far below what the platform holds (the measured runs after it guard against the other error).
 */
async function findSaturation(s: Settings, d: Deployed, clients: Client[], label: string, start: number) {
  const probes: DriveResult[] = [];
  const probeS = Math.min(s.durationS, PROBE_MAX_S);
  const once = async (rate: number) => {
    await settle(s, d, label);
    const r = await drive(clients, rate, probeS);
    probes.push(r);
    s.log(`${label} saturation probe: ${keptUp(r) ? "kept up" : "fell behind"}; ${describeDrive(r)}`);
    return keptUp(r);
  };
  const probe = async (rate: number) => (await once(rate)) || (await once(rate));
  let good = 0;
  let bad = 0;
  let rate = start;
  if (await probe(rate)) {
    good = rate;
    while (!bad && rate < MAX_RATE) {
      rate *= 2;
      if (await probe(rate)) good = rate;
      else bad = rate;
    }
  } else {
    bad = rate;
    while (!good && rate > 1) {
      rate = Math.max(1, Math.floor(rate / 2));
      if (await probe(rate)) good = rate;
      else bad = rate;
    }
  }
  for (let i = 0; i < BISECT_STEPS && bad && good && bad - good > 1; i++) {
    const mid = Math.round((good + bad) / 2);
    if (await probe(mid)) good = mid;
    else bad = mid;
  }
  return { rate: good, probeS, probes };
}

/**
 * The measured runs at the saturation rate the probes found. A probe is short (PROBE_MAX_S); when
 * most of the longer runs at that rate do not keep up, the rate steps down (STEP_DOWN) and the
 * runs are measured again, at most CONFIRM_STEPS times: the figure is of a rate that holds.
 */
async function confirmSaturation(s: Settings, d: Deployed, clients: Client[], label: string, probed: number) {
  let rate = probed;
  let runs: (DriveResult & { cpu: CpuUse })[] = [];
  for (let step = 0; rate > 0; step++) {
    runs = await measuredRuns(s, d, clients, `${label} at saturation`, rate, s.runs);
    const kept = runs.filter(keptUp).length;
    if (kept * 2 > runs.length || step >= CONFIRM_STEPS) break;
    s.log(`${label}: ${kept} of ${runs.length} runs at ${rate}/s kept up; measuring ${STEP_DOWN} of it`);
    rate = Math.floor(rate * STEP_DOWN);
  }
  return { rate, runs };
}

async function measureTarget(s: Settings, infra: Infra, o: WsOptions, target: Target): Promise<TargetResult> {
  const label = `ws ${LABEL[target]}`;
  const d = await deploy(target, o.connections, infra, s);
  let clients: Client[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const closing = performance.now();
    await d.stop();
    s.log(`${label}: stopped in ${((performance.now() - closing) / 1000).toFixed(1)} s`);
  };
  try {
    await settle(s, d, label);
    const before = await memoryOf(d);
    s.log(`${label}: opening ${o.connections} sockets, ${o.connectConcurrency} at a time`);
    const connected = await connectClients(d, o);
    clients = connected.clients;
    const setup = [...connected.setupMs].sort((a, b) => a - b);
    s.log(
      `${label}: ${clients.length} ready in ${connected.seconds.toFixed(1)} s (${connected.failed} failed${connected.firstError ? `: ${connected.firstError}` : ""}); setup p50 ${percentile(setup, 50).toFixed(2)} ms, p99 ${percentile(setup, 99).toFixed(2)} ms`,
    );
    await settle(s, d, label);
    const after = await memoryOf(d);
    // Memory is sampled on the first gateway: per connection it holds.
    const n = Math.max(1, clients.filter((c) => c.gateway === 0).length);
    const memory = {
      before,
      after,
      rssPerConnKB: (after.rssBytes - before.rssBytes) / n / 1024,
      heapPerConnKB:
        (after.heapUsedBytes + after.externalBytes - before.heapUsedBytes - before.externalBytes) / n / 1024,
      youngPerConnKB: (after.youngBytes - before.youngBytes) / n / 1024,
      heapTotalPerConnKB: (after.heapTotalBytes - before.heapTotalBytes) / n / 1024,
    };
    const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    s.log(
      `${label}: ${d.memoryFile ? "gateway" : "server"} memory per idle connection: RSS ${memory.rssPerConnKB.toFixed(1)} KB${d.memoryFile ? `, heap+external ${memory.heapPerConnKB.toFixed(1)} KB, young generation ${memory.youngPerConnKB.toFixed(1)} KB (${mb(before.youngBytes)} -> ${mb(after.youngBytes)} MB), V8 heap pages ${memory.heapTotalPerConnKB.toFixed(1)} KB` : ""}`,
    );
    if (clients.length === 0) throw new Error(`${label}: no socket connected (${connected.firstError})`);
    s.log(`${label}: warm-up ${s.warmupS} s at ${o.rate}/s`);
    await drive(clients, o.rate, s.warmupS);
    const closesBefore = connected.closes();
    const [overload] = o.overloadRate
      ? await measuredRuns(s, d, clients, `${label} overload`, o.overloadRate, 1)
      : [];
    const runs = await measuredRuns(s, d, clients, label, o.rate, s.runs);
    const found = o.saturation ? await findSaturation(s, d, clients, label, o.rate) : undefined;
    // Counted before the sockets are closed below: those closes are the bench's own.
    const closesDuringRuns = connected.closes() - closesBefore;
    let saturation: TargetResult["saturation"];
    if (found) {
      s.log(`${label}: saturation rate ${found.rate}/s`);
      // The runs at that rate start, as the fixed-rate runs do, from a fresh deployment: the probes
      // leave the platform holding what they sent (the embedded store keeps every message in
      // memory, a million after a search), which the bare server does not.
      closeAll(clients);
      clients = [];
      await stop();
      saturation = {
        ...found,
        probedRate: found.rate,
        ...(await onFreshDeployment(s, infra, o, target, `${label} (fresh)`, (fresh, freshClients) =>
          confirmSaturation(s, fresh, freshClients, label, found.rate),
        )),
      };
    }
    return {
      target,
      connections: o.connections,
      connected: connected.clients.length,
      connectFailed: connected.failed,
      ...(connected.firstError ? { connectFirstError: connected.firstError } : {}),
      connectSeconds: connected.seconds,
      seedSeconds: d.seedS,
      setup: { p50: percentile(setup, 50), p99: percentile(setup, 99), max: setup.at(-1) ?? Number.NaN },
      memory,
      closesDuringRuns,
      ...(overload ? { overload } : {}),
      runs,
      ...(saturation ? { saturation } : {}),
    };
  } finally {
    closeAll(clients);
    await stop();
  }
}

/** The memory of the process under test: its heap too where it reports one. */
function memoryOf(d: Deployed): Promise<MemorySample> {
  return d.memoryFile ? sampleMemory(d.gatewayPid, d.memoryFile) : Promise.resolve(sampleRss(d.gatewayPid));
}

/** Opens a socket for every user of the deployment, a bounded number at a time. */
function connectClients(d: Deployed, o: WsOptions) {
  return connectAll({
    urls: d.urls,
    users: d.users,
    concurrency: o.connectConcurrency,
    impl: o.impl,
    protocol: d.protocol,
    onMessage,
  });
}

/**
 * Deploys the target again, connects every client, warms up, runs `use`, and stops it. With
 * --cpu-prof its children's profiles replace those of the first deployment (same names).
 */
async function onFreshDeployment<T>(
  s: Settings,
  infra: Infra,
  o: WsOptions,
  target: Target,
  label: string,
  use: (d: Deployed, clients: Client[]) => Promise<T>,
): Promise<T> {
  const d = await deploy(target, o.connections, infra, s);
  let clients: Client[] = [];
  try {
    await settle(s, d, label);
    const connected = await connectClients(d, o);
    clients = connected.clients;
    s.log(`${label}: ${clients.length} ready (${connected.failed} failed)`);
    if (clients.length === 0) throw new Error(`${label}: no socket connected (${connected.firstError})`);
    await drive(clients, o.rate, s.warmupS);
    return await use(d, clients);
  } finally {
    closeAll(clients);
    await d.stop();
  }
}

const sum = (runs: DriveResult[], key: "lost" | "rejected" | "unacked" | "expected") =>
  runs.reduce((n, r) => n + r[key], 0);

function outcomes(runs: DriveResult[]) {
  const lost = sum(runs, "lost");
  const refused = sum(runs, "rejected");
  const unacked = sum(runs, "unacked");
  const statusCodes: Record<string, number> = {};
  if (lost) statusCodes.lost = lost;
  if (refused) statusCodes.refused = refused;
  if (unacked) statusCodes.unacked = unacked;
  return { requests: sum(runs, "expected"), failures: lost + refused + unacked, statusCodes };
}

function figuresOf(r: TargetResult, rate: number, base: Map<string, Figure>): Figure[] {
  const id = (name: string) => `ws.${r.target}.${name}`;
  const label = LABEL[r.target];
  // Every target but bare is compared with bare; the targets are the platform's alone.
  const compared = r.target !== "bare";
  const platform = compared && r.target !== "centrifugo";
  const target = (t: FigureTarget) => (platform ? { target: t } : {});
  const server = platform ? "gateway " : r.target === "centrifugo" ? "server " : "";
  const runs = r.runs;
  const cpu = runs.map((x) => x.cpu);
  const at = `at ${rate.toLocaleString("en-US")}/s`;
  const conns = `${r.connected.toLocaleString("en-US")} connections`;
  const make = (input: Parameters<typeof figure>[0], baseId?: string) => {
    const baseline = baseId ? base.get(baseId) : undefined;
    const f = figure({ ...input, ...(compared && baseline ? { baseline } : {}) });
    if (!compared) base.set(input.id, f);
    return f;
  };
  const connectNote =
    r.connectFailed > 0
      ? `${r.connectFailed} of ${r.connections} sockets failed to connect (${r.connectFirstError})`
      : undefined;
  const figures = [
    make(
      {
        id: id("setup.p50"),
        label: `WS ${label}: connection setup p50 (${conns})`,
        unit: "ms",
        runs: [r.setup.p50],
        ...target({ on: "value", op: "<=", value: 3 }),
        requests: r.connections,
        failures: r.connectFailed,
        ...(connectNote ? { note: connectNote } : {}),
      },
      "ws.bare.setup.p50",
    ),
    make(
      { id: id("setup.p99"), label: `WS ${label}: connection setup p99`, unit: "ms", runs: [r.setup.p99] },
      "ws.bare.setup.p99",
    ),
    make(
      {
        id: id("memory.rss"),
        label: `WS ${label}: ${server}RSS per idle connection`,
        unit: "KB",
        runs: [r.memory.rssPerConnKB],
        ...target({ on: "value", op: "<=", value: 14 }),
      },
      "ws.bare.memory.rss",
    ),
    // Centrifugo's heap is not read (RSS only): no figure rather than NaN.
    ...(Number.isNaN(r.memory.heapPerConnKB)
      ? []
      : [
          make(
            {
              id: id("memory.heap"),
              label: `WS ${label}: ${server}heap + external per idle connection, after GC`,
              unit: "KB",
              runs: [r.memory.heapPerConnKB],
            },
            "ws.bare.memory.heap",
          ),
          make(
            {
              id: id("memory.young"),
              label: `WS ${label}: ${server}young generation's growth per idle connection`,
              unit: "KB",
              runs: [r.memory.youngPerConnKB],
            },
            "ws.bare.memory.young",
          ),
        ]),
    make(
      {
        id: id("delivery"),
        label: `WS ${label}: acknowledged messages' deliveries received ${at}`,
        unit: "%",
        runs: runs.map((x) => x.deliveryRatio * 100),
        ...target({ on: "value", op: ">=", value: 100 }),
        ...outcomes(runs),
        cpu,
      },
      "ws.bare.delivery",
    ),
    make(
      {
        id: id("lost"),
        label: `WS ${label}: acknowledged messages' deliveries lost, all runs ${at}`,
        unit: "deliveries",
        runs: [sum(runs, "lost")],
        ...target({ on: "value", op: "<=", value: 0 }),
        cpu,
      },
      "ws.bare.lost",
    ),
    make(
      {
        id: id("latency.p50"),
        label: `WS ${label}: delivery latency p50 ${at}`,
        unit: "ms",
        runs: runs.map((x) => x.latencyP50),
        ...target({ on: "value", op: "<=", value: 10 }),
        cpu,
      },
      "ws.bare.latency.p50",
    ),
    make(
      {
        id: id("latency.p99"),
        label: `WS ${label}: delivery latency p99 ${at}`,
        unit: "ms",
        runs: runs.map((x) => x.latencyP99),
        ...target({ on: "value", op: "<=", value: 100 }),
        cpu,
      },
      "ws.bare.latency.p99",
    ),
    make(
      {
        id: id("delivered"),
        label: `WS ${label}: deliveries/s ${at} (${Math.round(runs[0]?.offeredDeliveriesPerS ?? 0).toLocaleString("en-US")} owed/s)`,
        unit: "msgs/s",
        runs: runs.map((x) => x.deliveredPerS),
        ...outcomes(runs),
        cpu,
      },
      "ws.bare.delivered",
    ),
  ];
  const sat = r.saturation;
  if (sat) {
    const satRuns = sat.runs;
    figures.push(
      make(
        {
          id: id("saturation"),
          label: `WS ${label}: deliveries/s at its saturation rate (${sat.rate.toLocaleString("en-US")} msgs sent/s)`,
          unit: "msgs/s",
          runs: satRuns.map((x) => x.deliveredPerS),
          ...target({ on: "ratio", op: ">=", value: 0.5 }),
          ...outcomes(satRuns),
          cpu: satRuns.map((x) => x.cpu),
          note: `highest rate whose ${sat.probeS} s probe kept up with none lost: ${sat.rate}/s; probes: ${sat.probes.map((p) => `${p.rate}${keptUp(p) ? "" : " (fell behind)"}`).join(", ")}`,
        },
        "ws.bare.saturation",
      ),
      make(
        {
          id: id("saturation.p99"),
          label: `WS ${label}: delivery latency p99 at its saturation rate`,
          unit: "ms",
          runs: satRuns.map((x) => x.latencyP99),
          cpu: satRuns.map((x) => x.cpu),
        },
        "ws.bare.saturation.p99",
      ),
    );
  }
  return figures;
}

export async function wsFanout(s: Settings, infra: Infra, o: WsOptions): Promise<WsMeasured> {
  const results: TargetResult[] = [];
  const figures: Figure[] = [];
  const base = new Map<string, Figure>();
  const ordered = [...o.targets].sort((a, b) => Number(a !== "bare") - Number(b !== "bare"));
  for (const target of ordered) {
    const r = await measureTarget(s, infra, o, target);
    results.push(r);
    figures.push(...figuresOf(r, o.rate, base));
  }
  const role: Record<Target, string> = {
    bare: "bare `ws` fan-out server (the baseline), same frames, token = user id",
    centrifugo:
      "Centrifugo v6 (one node, memory engine, JSON protocol), a `chat:<id>` channel per group that its subscribers publish to; connection JWT (HS256) per user",
    embedded: "the whole platform in one process and one broker, embedded store (npm start defaults)",
    cluster:
      "gateway in one process; auth, profile and chat brokers in another; over NATS, with Redis and FerretDB",
    cluster2:
      "the cluster scaled out: two gateway processes (clients alternate between them), auth, profile and chat brokers in one process and a second chat node in another",
    "cluster-ha":
      "the cluster's two processes on a NATS cluster (three nats-server with routes; the nodes connect through the list) and a Redis Cluster (three masters with a replica each), FerretDB as the store",
  };
  return {
    figures,
    processes: ordered.map((t) => ({
      name: `ws-${t}`,
      role: `${role[t]}; ${o.connections.toLocaleString("en-US")} ${t === "centrifugo" ? "Centrifugo sockets" : "ChatSockets"} in the runner's process`,
    })),
    results,
  };
}

/** The settings of a WebSocket benchmark, for the report. */
export function wsSettings(o: WsOptions, s: Settings, platformEnv: Record<string, string>) {
  return {
    connections: o.connections,
    groupSize: GROUP_SIZE,
    rate: o.rate,
    runs: s.runs,
    durationS: s.durationS,
    warmupS: s.warmupS,
    saturationProbeS: Math.min(s.durationS, PROBE_MAX_S),
    connectConcurrency: o.connectConcurrency,
    socketImpl: o.impl,
    messageChars: MESSAGE_CHARS,
    drainS: DRAIN_MS / 1000,
    keepUpShare: KEEP_UP_SHARE,
    targets: o.targets,
    platformEnv,
  };
}

/** Seconds the runner's watchdog allows the WebSocket benchmark (seeding and connecting 10,000 included). */
export function wsBudgetS(runs: number, durationS: number): number {
  const perRun = durationS + DRAIN_MS / 1000 + QUIET_TIMEOUT_MS / 1000;
  const probes = 16;
  return WS_DEFAULTS.targets.length * (900 + (2 * runs + 1 + probes) * perRun);
}

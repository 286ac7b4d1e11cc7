/**
 * The measurements of `npm run bench`, each against servers in children of the runner's process:
 * bare node:http, the trivial moleculer-web -> NATS -> service call, argon2id hash rates, and the
 * platform's profile reads, registrations and logins through its gateway.
 */

import { readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiClient, ApiError } from "../client/rest-client.ts";
import { PLATFORM_NODE_FLAGS } from "../lib/node-flags.ts";
import type { Servers } from "../test/support/cluster.ts";
import { newUser, SERVICES, type ServiceName, tempDir } from "../test/support/platform.ts";
import { type CpuUse, type MeasuredPid, measureCpu, waitUntilQuiet } from "./cpu.ts";
import { type Figure, figure, median, type Target } from "./figures.ts";
import type { HashImpl } from "./hash-rate.ts";
import { closedLoop, type LoadResult, openLoop, openLoopInChild } from "./load.ts";
import { type BenchChild, runChild, startChild } from "./processes.ts";
import { type ProbeLine, summarizeProbe } from "./servers/probe.ts";

/** autocannon settings of every HTTP read figure. */
export const HTTP_CONNECTIONS = 64;
/** Connections of the closed-loop register and login runs: enough to keep every hash slot busy. */
export const AUTH_CONNECTIONS = 16;
/** The original spec's profile-read load: 1,000 requests/s (at p95 < 150 ms). */
export const SPEC_READ_RATE = 1_000;
/** Share of the measured hash rate offered as a fixed arrival rate. */
export const PACED_SHARE = 0.8;
/** Share of the measured hash rate offered to see the overload answered: the excess refused at once. */
export const OVERLOAD_SHARE = 1.5;
/** Profile reads are to reach this share of B's rate, and hold their p99 target there. */
const READ_SHARE_OF_B = 0.6;
/** Hashes in flight per auth node (HASH_CONCURRENCY's default): the hash rate auth is held to. */
export const SERVICE_HASH_CONCURRENCY = 2;
const HASH_CONCURRENCIES = [2, 4];
const READY_TIMEOUT_MS = 120_000;
/** Before each run the servers (together) and other processes must use fewer cores than this... */
const QUIET = { serversBelow: 0.2, othersBelow: 0.2 };
/** ...within this time, or the run starts anyway and the log says so. */
export const QUIET_TIMEOUT_MS = 60_000;

/** Waits for a quiet machine before a run (cpu.ts); logs when it did not come. */
async function settle(s: Settings, label: string, serverPids: MeasuredPid[]): Promise<void> {
  if (!(await waitUntilQuiet(serverPids, QUIET, QUIET_TIMEOUT_MS))) {
    s.log(`${label}: the machine was still busy after ${QUIET_TIMEOUT_MS / 1000} s; running anyway`);
  }
}

/** The test PostgreSQL under FerretDB, measured with its backend processes; none for an external store. */
export function postgresTree(servers: Servers): MeasuredPid {
  const pid = servers.mongo.postgres?.pid;
  return pid === undefined ? undefined : { tree: pid };
}

export interface Settings {
  runs: number;
  durationS: number;
  warmupS: number;
  /** Set: the server children write CPU profiles here. */
  cpuProfDir: string | undefined;
  /** Each broker in a child process of its own (--split), instead of one child per scenario. */
  split: boolean;
  /** Extra env of the platform nodes (--env), over the bench's own. */
  platformEnv: Record<string, string>;
  /** The platform processes' Node flags: lib/node-flags.ts's, or --node-flags (the baselines get none). */
  platformNodeFlags: readonly string[];
  /** nats-server, redis-server and ferretdb, for the CPU-by-process figures. */
  infraPids: Record<string, MeasuredPid>;
  log(message: string): void;
}

/** --node-flags "F": space-separated flags ("" for none); absent, the platform's own (lib/node-flags.ts). */
export function nodeFlagsOption(value: string | undefined): readonly string[] {
  return value === undefined ? PLATFORM_NODE_FLAGS : value.split(/\s+/).filter(Boolean);
}

export interface Infra {
  nats: string;
  redis: string;
  mongo: string;
}

/** A process the bench started, for the topology in the report. */
export interface ProcessInfo {
  name: string;
  /** Absent for short-lived measuring children (one per run). */
  pid?: number;
  role: string;
}

export interface Measured {
  figures: Figure[];
  processes: ProcessInfo[];
}

const PLATFORM_SCRIPT = "./servers/platform.ts";

/** A server child; the platform's run with its own Node flags (lib/node-flags.ts), the baselines without. */
async function startServer(s: Settings, name: string, script: string, arg: unknown): Promise<BenchChild> {
  const nodeFlags = [
    ...(script === PLATFORM_SCRIPT ? s.platformNodeFlags : []),
    ...(s.cpuProfDir
      ? ["--cpu-prof", `--cpu-prof-dir=${s.cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`]
      : []),
  ];
  return startChild(name, script, arg, { timeoutMs: READY_TIMEOUT_MS, nodeFlags });
}

/** The server processes of one scenario; `url` is the gateway's. */
interface Deployment {
  url: string;
  /** Every gateway's URL (one unless the roles name the gateway more than once). */
  urls: string[];
  children: BenchChild[];
  stop(): Promise<void>;
}

/**
 * Starts the brokers of `roles` from `script`: all in one child, or with --split one child per
 * role; the gateway (the role whose child announces a URL) starts last and stops first.
 */
async function deploy(
  s: Settings,
  name: string,
  script: string,
  arg: object,
  roles: string[],
): Promise<Deployment> {
  const groups = s.split ? roles.map((role) => [role]) : [roles];
  groups.sort((a, b) => Number(a.includes("gateway")) - Number(b.includes("gateway")));
  const children: BenchChild[] = [];
  const stop = async () => {
    for (const child of [...children].reverse()) await child.stop();
  };
  try {
    const seen = new Map<string, number>();
    for (const group of groups) {
      const base = s.split ? `${name}-${group.join("-")}` : name;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      const childName = n > 1 ? `${base}-${n}` : base;
      children.push(await startServer(s, childName, script, { ...arg, roles: group }));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const urls = children.map((c) => String(c.data.url ?? "")).filter(Boolean);
  return { url: urls[0] ?? "", urls, children, stop };
}

function processInfos(deployment: Deployment, role: string): ProcessInfo[] {
  return deployment.children.map((c) => ({ name: c.name, pid: c.pid, role }));
}

/** A measured run, with the cores each process used meanwhile. */
type Run = LoadResult & { cpu: CpuUse };

/** One warm-up run (not counted), then the measured runs, each once the machine is quiet. */
async function repeat(
  s: Settings,
  label: string,
  servers: Deployment,
  run: (durationS: number) => Promise<LoadResult>,
  describe: (r: LoadResult) => string,
): Promise<Run[]> {
  const serverPids = [
    ...servers.children.map((c) => c.pid),
    ...Object.values(s.infraPids).filter((pid) => pid !== undefined),
  ];
  s.log(`${label}: warm-up ${s.warmupS} s`);
  await run(s.warmupS);
  const pids = {
    runner: process.pid,
    ...Object.fromEntries(servers.children.map((c) => [c.name, c.pid])),
    ...s.infraPids,
  };
  const results: Run[] = [];
  for (let i = 1; i <= s.runs; i++) {
    await settle(s, label, serverPids);
    const cpu = measureCpu(pids);
    const r = await run(s.durationS);
    const used = cpu();
    s.log(`${label} run ${i}/${s.runs}: ${describe(r)}; cores: ${describeCpu(used)}`);
    results.push({ ...r, cpu: used });
  }
  return results;
}

function describeCpu(cpu: CpuUse): string {
  const named = Object.entries(cpu.processes).map(([name, cores]) => `${name} ${cores.toFixed(2)}`);
  return [...named, `others ${cpu.others.toFixed(2)}`, `steal ${cpu.steal.toFixed(2)}`].join(", ");
}

const describeHttp = (r: LoadResult) =>
  `${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.failures} failed`;
/** Describes a run whose p95 was measured (auth flows and paced runs). */
const describeLatency = (r: LoadResult) =>
  `${r.rps.toFixed(1)} req/s, p50 ${r.p50.toFixed(1)} ms, p95 ${r.p95?.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.failures} failed` +
  (r.sendLate
    ? `; sent late by p99 ${r.sendLate.p99.toFixed(1)} ms, max ${r.sendLate.max.toFixed(1)} ms`
    : "");

/** Request counts and CPU use of a set of runs, as figure inputs. */
const totals = (results: Run[]) => ({
  requests: results.reduce((n, r) => n + r.requests, 0),
  failures: results.reduce((n, r) => n + r.failures, 0),
  statusCodes: results.reduce<Record<string, number>>((sum, r) => {
    for (const [code, n] of Object.entries(r.statusCodes)) sum[code] = (sum[code] ?? 0) + n;
    return sum;
  }, {}),
  errorBodies: Object.assign({}, ...results.map((r) => r.errorBodies).reverse()) as Record<string, string>,
  cpu: results.map((r) => r.cpu),
});

/** totals of an overload run: its 503 answers are the load shed, what it asks for, not failures. */
const overloadTotals = (results: Run[]) => {
  const t = totals(results);
  return { ...t, failures: t.failures - (t.statusCodes["503"] ?? 0) };
};

function httpReads(
  s: Settings,
  name: string,
  servers: Deployment,
  url: string,
  headers?: Record<string, string>,
) {
  return repeat(
    s,
    name,
    servers,
    (durationS) => closedLoop({ url, durationS, connections: HTTP_CONNECTIONS, headers }),
    describeHttp,
  );
}

/** The req/s, p50 and p99 figures of a set of read runs. */
function readFigures(
  id: string,
  label: string,
  results: Run[],
  baselines: { rps?: Figure; p99?: Figure } = {},
  targets: { rps?: Target; p99?: Target } = {},
): Figure[] {
  const t = totals(results);
  return [
    figure({
      id: `${id}.rps`,
      label,
      unit: "req/s",
      runs: results.map((r) => r.rps),
      baseline: baselines.rps,
      target: targets.rps,
      ...t,
    }),
    figure({ id: `${id}.p50`, label: `${label} p50`, unit: "ms", runs: results.map((r) => r.p50), ...t }),
    figure({
      id: `${id}.p99`,
      label: `${label} p99`,
      unit: "ms",
      runs: results.map((r) => r.p99),
      baseline: baselines.p99,
      target: targets.p99,
      ...t,
    }),
  ];
}

/** A share of a measured rate, as a whole number of requests per second (at least 1). */
function shareOf(rate: number, share: number): number {
  return Math.max(1, Math.round((rate || 0) * share));
}

/** Baseline A: bare node:http. */
export async function bareHttp(s: Settings): Promise<Measured> {
  const child = await startServer(s, "bare-http", "./servers/bare-http.ts", {});
  const url = String(child.data.url);
  const servers: Deployment = { url, urls: [url], children: [child], stop: () => child.stop() };
  try {
    const results = await httpReads(s, "bare node:http", servers, `${servers.url}/`);
    return {
      figures: readFigures("bare", "A. bare node:http", results),
      processes: processInfos(servers, "node:http server answering a small JSON body"),
    };
  } finally {
    await servers.stop();
  }
}

/** Baseline B: moleculer-web -> NATS -> echo service, ratio to baseline A. */
export async function echoCall(
  s: Settings,
  infra: Infra,
  bare: { rps: Figure; p99: Figure },
): Promise<Measured> {
  const servers = await deploy(
    s,
    "echo-cluster",
    "./servers/echo-cluster.ts",
    { transporter: infra.nats, namespace: `bench-echo-${process.pid}` },
    ["gateway", "echo"],
  );
  try {
    const results = await httpReads(s, "moleculer-web -> NATS -> echo", servers, `${servers.url}/echo`);
    // The latency reference of the profile read's p99 target: B itself offered 60 % of its rate.
    const rate = shareOf(median(results.map((r) => r.rps).sort((a, b) => a - b)), READ_SHARE_OF_B);
    const atShare = await repeat(
      s,
      `B at ${rate}/s`,
      servers,
      // From a generator process of its own, as the platform's reads at this pace are.
      (durationS) =>
        openLoopInChild({
          url: servers.url,
          method: "GET",
          path: "/echo",
          headers: {},
          rate,
          durationS,
          maxInFlight: 1_000,
        }),
      describeLatency,
    );
    return {
      figures: [
        ...readFigures("echo", "B. moleculer-web -> NATS -> echo", results, bare),
        figure({
          id: "echo.target.p99",
          label: `B. p99 offered ${rate.toLocaleString("en-US")}/s (${READ_SHARE_OF_B * 100} % of B)`,
          unit: "ms",
          runs: atShare.map((r) => r.p99),
          ...totals(atShare),
        }),
        figure({
          id: "echo.target.late",
          label: `B. at ${rate.toLocaleString("en-US")}/s: the generator's sends late, p99 (own process)`,
          unit: "ms",
          runs: atShare.map((r) => r.sendLate?.p99 ?? Number.NaN),
          ...totals(atShare),
        }),
      ],
      processes: processInfos(
        servers,
        s.split
          ? "one broker: moleculer-web gateway (GET /echo) or the echo service, over NATS"
          : "2 brokers over NATS: moleculer-web gateway (GET /echo) and the echo service",
      ),
    };
  } finally {
    await servers.stop();
  }
}

const HASH_LABEL: Record<HashImpl, string> = {
  "argon2-npm": "argon2 (npm)",
  "node-crypto": "node:crypto argon2",
};

/** argon2id at OWASP's minimum with both implementations, at 2 and 4 hashes in flight. */
export async function hashRates(s: Settings): Promise<Measured> {
  const figures: Figure[] = [];
  const byKey = new Map<string, Figure>();
  for (const impl of ["argon2-npm", "node-crypto"] as const) {
    for (const concurrency of HASH_CONCURRENCIES) {
      const rates: number[] = [];
      const cpu: CpuUse[] = [];
      for (let i = 1; i <= s.runs; i++) {
        await settle(s, `${HASH_LABEL[impl]} x${concurrency}`, []);
        const measure = measureCpu({});
        const data = await runChild(
          `hash-${impl}-c${concurrency}`,
          "./hash-rate.ts",
          { impl, concurrency, durationS: s.durationS },
          s.durationS * 1000 + 60_000,
        );
        rates.push(Number(data.rate));
        cpu.push(measure());
        s.log(
          `${HASH_LABEL[impl]} x${concurrency} run ${i}/${s.runs}: ${Number(data.rate).toFixed(1)} hashes/s; cores: others ${cpu.at(-1)?.others.toFixed(2)}, steal ${cpu.at(-1)?.steal.toFixed(2)}`,
        );
      }
      const f = figure({
        id: `argon2.${impl}.c${concurrency}`,
        label: `argon2id ${HASH_LABEL[impl]}, ${concurrency} in flight`,
        unit: "hashes/s",
        runs: rates,
        baseline: byKey.get(`argon2-npm:${concurrency}`),
        cpu,
      });
      byKey.set(`${impl}:${concurrency}`, f);
      figures.push(f);
    }
  }
  return {
    figures,
    processes: [{ name: "hash-rate", role: "one fresh process per hash-rate run (libuv pool of 4 threads)" }],
  };
}

/** Which implementation hashed faster, at each concurrency measured. */
export function fasterHash(figures: Figure[]): { concurrency: number; faster: string; by: number }[] {
  return HASH_CONCURRENCIES.flatMap((concurrency) => {
    const npm = figures.find((f) => f.id === `argon2.argon2-npm.c${concurrency}`)?.median ?? 0;
    const node = figures.find((f) => f.id === `argon2.node-crypto.c${concurrency}`)?.median ?? 0;
    if (!npm || !node) return [];
    const npmFaster = npm >= node;
    return [
      {
        concurrency,
        faster: npmFaster ? "argon2 (npm)" : "node:crypto argon2",
        by: npmFaster ? npm / node : node / npm,
      },
    ];
  });
}

/** Every node role of the platform, one broker each; the gateway is ready once it sees the others. */
const PLATFORM_ROLES = Object.keys(SERVICES) as ServiceName[];

/** Runs `measure` against a fresh platform (its own namespace and database). */
async function withPlatform<T>(
  s: Settings,
  infra: Infra,
  name: string,
  measure: (servers: Deployment) => Promise<T>,
  roles: ServiceName[] = PLATFORM_ROLES,
  embedded = false,
  extra: { probeFile?: string } = {},
): Promise<T & { processes: ProcessInfo[] }> {
  const namespace = `${name.replace(/\W/g, "")}${process.pid}`;
  const dataDir = await tempDir("social-bench-");
  let servers: Deployment | undefined;
  try {
    servers = await deploy(
      s,
      name,
      PLATFORM_SCRIPT,
      {
        transporter: embedded ? "" : infra.nats,
        redisUrl: infra.redis,
        mongoUrl: `${infra.mongo}/${namespace}`,
        namespace,
        dataDir: dataDir.dir,
        env: s.platformEnv,
        ...extra,
      },
      roles,
    );
    const result = await measure(servers);
    const names = [...new Set(roles)].join(", ");
    const role = embedded
      ? "the embedded default (npm start): one broker with every service, the embedded store, no servers"
      : s.split
        ? `one platform broker (one of ${names}) over NATS; Redis cacher, limits and presence; FerretDB store`
        : `${roles.length} brokers over NATS: ${names}; Redis cacher, limits and presence; FerretDB store`;
    return { ...result, processes: processInfos(servers, role) };
  } finally {
    await servers?.stop();
    await dataDir.remove();
  }
}

/**
 * A set-up request (not a measured one) made right after the platform started on a busy machine:
 * a 503 (nothing kept, per the API) is retried a few times before the benchmark gives up.
 */
async function setUp<T>(request: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      if (attempt >= 5 || !(err instanceof ApiError) || err.status !== 503) throw err;
      await sleep(1_000 * attempt);
    }
  }
}

/** The full stack: `GET /users/:id` with a valid token, against baseline B. */
export async function profileReads(
  s: Settings,
  infra: Infra,
  echo: { rps: Figure; p99: Figure; targetP99: Figure },
): Promise<Measured> {
  const probeFile = path.join(os.tmpdir(), `social-bench-probe-${process.pid}-${Date.now()}.jsonl`);
  const measured = await withPlatform(
    s,
    infra,
    "platform-reads",
    async (servers) => {
      const reader = new ApiClient(servers.url);
      const { user } = await setUp(() => reader.register(newUser("read")));
      await reader.user(user.id);
      const path = `/users/${user.id}`;
      const headers = { authorization: `Bearer ${reader.accessToken}` };
      const label = "GET /users/:id full stack";
      const results = await httpReads(s, label, servers, `${servers.url}${path}`, headers);
      // The p99 target holds at the throughput target: 60 % of B's rate, offered at a fixed pace
      // (a closed loop at saturation measures its own queue: 64 connections over its rate).
      // The generator runs in a process of its own (its CPU is reported), and the server's probe
      // (servers/probe.ts) records its event-loop delay and GC pauses over each run.
      const targetRate = shareOf(echo.rps.median, READ_SHARE_OF_B);
      const windows: Array<[number, number]> = [];
      const atTarget = await repeat(
        s,
        `GET /users/:id at ${targetRate}/s`,
        servers,
        async (durationS) => {
          const from = Date.now();
          const r = await openLoopInChild({
            url: servers.url,
            method: "GET",
            path,
            headers,
            rate: targetRate,
            durationS,
            maxInFlight: 1_000,
          });
          windows.push([from, Date.now()]);
          return r;
        },
        describeLatency,
      );
      const probeLines = (await readFile(probeFile, "utf8").catch(() => ""))
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as ProbeLine);
      // The first window is the warm-up.
      const probes = windows.slice(1).map(([from, to]) => summarizeProbe(probeLines, from, to));
      for (const [i, p] of probes.entries()) {
        const gc = Object.entries(p.gc)
          .map(([kind, g]) => `${kind} ${g.count}× ${g.totalMs.toFixed(0)} ms (max ${g.maxMs.toFixed(1)})`)
          .join(", ");
        s.log(
          `GET /users/:id at ${targetRate}/s run ${i + 1}: server event-loop delay p99 ${p.eldP99Max} ms ` +
            `(worst second), max ${p.eldMax} ms; GC over ${p.seconds} s: ${gc || "none"}; generator ` +
            `${(atTarget[i]?.generatorCores ?? Number.NaN).toFixed(2)} cores`,
        );
      }
      const gcTotal = (p: (typeof probes)[number]) =>
        Object.values(p.gc).reduce((sum, g) => sum + g.totalMs, 0) / Math.max(1, p.seconds);
      const paced = await repeat(
        s,
        `GET /users/:id at ${SPEC_READ_RATE}/s`,
        servers,
        (durationS) =>
          openLoop({
            url: servers.url,
            method: "GET",
            path,
            headers,
            rate: SPEC_READ_RATE,
            durationS,
            maxInFlight: 1_000,
          }),
        describeLatency,
      );
      return {
        figures: [
          ...readFigures("profile", label, results, echo, {
            rps: { on: "ratio", op: ">=", value: READ_SHARE_OF_B },
          }),
          figure({
            id: "profile.target.p99",
            label: `GET /users/:id p99 at ${targetRate.toLocaleString("en-US")}/s (${READ_SHARE_OF_B * 100} % of B)`,
            unit: "ms",
            runs: atTarget.map((r) => r.p99),
            baseline: echo.targetP99,
            target: { on: "value", op: "<=", value: 60 },
            ...totals(atTarget),
          }),
          figure({
            id: "profile.target.eld.p99",
            label: `GET /users/:id at ${targetRate.toLocaleString("en-US")}/s: server event-loop delay p99 (worst second)`,
            unit: "ms",
            runs: probes.map((p) => p.eldP99Max),
            ...totals(atTarget),
          }),
          figure({
            id: "profile.target.gc",
            label: `GET /users/:id at ${targetRate.toLocaleString("en-US")}/s: server GC pause per second`,
            unit: "ms",
            runs: probes.map(gcTotal),
            ...totals(atTarget),
          }),
          figure({
            id: "profile.target.generator",
            label: `GET /users/:id at ${targetRate.toLocaleString("en-US")}/s: the generator's CPU (own process)`,
            unit: "cores",
            runs: atTarget.map((r) => r.generatorCores ?? Number.NaN),
            ...totals(atTarget),
          }),
          figure({
            id: "profile.target.late",
            label: `GET /users/:id at ${targetRate.toLocaleString("en-US")}/s: the generator's sends late, p99`,
            unit: "ms",
            runs: atTarget.map((r) => r.sendLate?.p99 ?? Number.NaN),
            ...totals(atTarget),
          }),
          figure({
            id: "profile.target.rps",
            label: `GET /users/:id answered/s when offered ${targetRate.toLocaleString("en-US")}/s`,
            unit: "req/s",
            runs: atTarget.map((r) => r.rps),
            ...totals(atTarget),
          }),
          figure({
            id: "profile.paced.p95",
            label: `GET /users/:id p95 at ${SPEC_READ_RATE.toLocaleString("en-US")}/s (original spec)`,
            unit: "ms",
            runs: paced.map((r) => r.p95 ?? Number.NaN),
            target: { on: "value", op: "<=", value: 150 },
            ...totals(paced),
          }),
        ],
      };
    },
    PLATFORM_ROLES,
    false,
    { probeFile },
  );
  await rm(probeFile, { force: true });
  return measured;
}

/**
 * Closed-loop throughput, then latency at PACED_SHARE of its own throughput and, last since it may
 * overload the servers, at PACED_SHARE of the hash rate.
 */
async function authFlow(
  s: Settings,
  servers: Deployment,
  hashRate: Figure,
  rate: number,
  flow: { id: string; label: string; path: string; body: () => string },
  closedOnly = false,
): Promise<Figure[]> {
  const { id, label, path, body } = flow;
  const url = servers.url;
  const json = { "content-type": "application/json" };
  const closed = await repeat(
    s,
    `POST ${path}`,
    servers,
    (durationS) =>
      closedLoop({
        url,
        durationS,
        connections: AUTH_CONNECTIONS,
        p95: true,
        requests: [
          {
            method: "POST",
            path,
            headers: json,
            setupRequest: (request) => ({ ...request, body: body() }),
          },
        ],
      }),
    describeLatency,
  );
  const closedFigures = [
    figure({
      id: `${id}.rps`,
      label: `${label} (${AUTH_CONNECTIONS} connections)`,
      unit: "req/s",
      runs: closed.map((r) => r.rps),
      baseline: hashRate,
      target: { on: "ratio", op: ">=", value: 0.85 },
      ...totals(closed),
    }),
    figure({
      id: `${id}.p95`,
      label: `${label} p95 (${AUTH_CONNECTIONS} connections)`,
      unit: "ms",
      runs: closed.map((r) => r.p95 ?? Number.NaN),
      ...totals(closed),
    }),
  ];
  if (closedOnly) return closedFigures;
  const pacedAt = (r: number) => (durationS: number) =>
    openLoop({ url, method: "POST", path, headers: json, body, rate: r, durationS, maxInFlight: 1_000 });
  const closedRps = median(closed.map((r) => r.rps).sort((a, b) => a - b));
  const ownRate = shareOf(closedRps, PACED_SHARE);
  const own = await repeat(s, `POST ${path} at ${ownRate}/s`, servers, pacedAt(ownRate), describeLatency);
  const paced = await repeat(s, `POST ${path} at ${rate}/s`, servers, pacedAt(rate), describeLatency);
  // Overload: OVERLOAD_SHARE of the hash rate. The excess is to be refused at once (503), the rest
  // served at the closed loop's throughput, and no request left waiting for long.
  const overRate = shareOf(hashRate.median, OVERLOAD_SHARE);
  const over = await repeat(s, `POST ${path} at ${overRate}/s`, servers, pacedAt(overRate), describeLatency);
  const overLabel = `${label} at ${overRate}/s (${OVERLOAD_SHARE * 100} % of hash rate)`;
  return [
    ...closedFigures,
    figure({
      id: `${id}.over.rps`,
      label: `${overLabel}: accepted/s`,
      unit: "req/s",
      runs: over.map((r) => r.rps),
      baseline: hashRate,
      target: { on: "ratio", op: ">=", value: 0.85 },
      ...overloadTotals(over),
    }),
    figure({
      id: `${id}.over.max`,
      label: `${overLabel}: slowest answer, any status`,
      unit: "ms",
      runs: over.map((r) => r.maxMs ?? Number.NaN),
      target: { on: "value", op: "<=", value: 2_000 },
      ...overloadTotals(over),
    }),
    figure({
      id: `${id}.over.shed.p99`,
      label: `${overLabel}: p99 of the 503 answers`,
      unit: "ms",
      runs: over.map((r) => r.shed?.p99 ?? Number.NaN),
      target: { on: "value", op: "<=", value: 50 },
      ...overloadTotals(over),
    }),
    figure({
      id: `${id}.over.shed.share`,
      label: `${overLabel}: share answered 503`,
      unit: "ratio",
      runs: over.map((r) => (r.shed?.count ?? 0) / Math.max(1, r.requests)),
      ...overloadTotals(over),
    }),
    figure({
      id: `${id}.paced.p95`,
      label: `${label} p95 at ${rate}/s (${PACED_SHARE * 100} % of hash rate)`,
      unit: "ms",
      runs: paced.map((r) => r.p95 ?? Number.NaN),
      target: { on: "value", op: "<=", value: 250 },
      ...totals(paced),
    }),
    figure({
      id: `${id}.paced.rps`,
      label: `${label} answered at ${rate}/s offered`,
      unit: "req/s",
      runs: paced.map((r) => r.rps),
      ...totals(paced),
    }),
    figure({
      id: `${id}.own.mean`,
      label: `${label} mean at ${ownRate}/s`,
      unit: "ms",
      runs: own.map((r) => r.mean),
      ...totals(own),
    }),
    figure({
      id: `${id}.own.p95`,
      label: `${label} p95 at ${ownRate}/s (${PACED_SHARE * 100} % of its own closed-loop rate)`,
      unit: "ms",
      runs: own.map((r) => r.p95 ?? Number.NaN),
      ...totals(own),
    }),
  ];
}

/**
 * Registrations and logins through the gateway, each against a fresh platform (its own database),
 * so neither depends on what the other left behind: closed loop for throughput, then at a fixed
 * arrival rate of PACED_SHARE of the measured hash rate, and of its own throughput, for latency.
 */
export async function authFlows(s: Settings, infra: Infra, hashRate: Figure) {
  const rate = shareOf(hashRate.median, PACED_SHARE);
  const register = await withPlatform(s, infra, "platform-register", async (servers) => ({
    figures: await authFlow(s, servers, hashRate, rate, {
      id: "register",
      label: "POST /auth/register",
      path: "/auth/register",
      body: () => JSON.stringify(newUser("reg")),
    }),
  }));
  const login = await withPlatform(s, infra, "platform-login", async (servers) => {
    const account = newUser("login");
    await setUp(() => new ApiClient(servers.url).register(account));
    const body = JSON.stringify({ username: account.username, password: account.password });
    return {
      figures: await authFlow(s, servers, hashRate, rate, {
        id: "login",
        label: "POST /auth/login",
        path: "/auth/login",
        body: () => body,
      }),
    };
  });
  // The same closed loops on the embedded default, where no store server shares the two cores.
  const embedded = await withPlatform(
    s,
    infra,
    "embedded-auth",
    async (servers) => {
      const account = newUser("elogin");
      await setUp(() => new ApiClient(servers.url).register(account));
      const loginBody = JSON.stringify({ username: account.username, password: account.password });
      const flow = (id: string, label: string, path: string, body: () => string) =>
        authFlow(s, servers, hashRate, rate, { id, label, path, body }, true);
      return {
        figures: [
          ...(await flow("register.embedded", "POST /auth/register, embedded", "/auth/register", () =>
            JSON.stringify(newUser("ereg")),
          )),
          ...(await flow("login.embedded", "POST /auth/login, embedded", "/auth/login", () => loginBody)),
        ],
      };
    },
    PLATFORM_ROLES,
    true,
  );
  return {
    figures: [...register.figures, ...login.figures, ...embedded.figures],
    processes: [...register.processes, ...login.processes, ...embedded.processes],
    pacedRate: rate,
  };
}

/** Runs of several closed loops at once, one per gateway, counted as one. */
function combined(results: LoadResult[]): LoadResult {
  const statusCodes: Record<string, number> = {};
  for (const r of results)
    for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const requests = results.reduce((n, r) => n + r.requests, 0);
  return {
    rps: results.reduce((n, r) => n + r.rps, 0),
    // Percentiles of separate loops do not add up: the slowest gateway's are reported.
    p50: Math.max(...results.map((r) => r.p50)),
    p95: undefined,
    p99: Math.max(...results.map((r) => r.p99)),
    mean: results.reduce((n, r) => n + r.mean * r.requests, 0) / Math.max(1, requests),
    requests,
    failures: results.reduce((n, r) => n + r.failures, 0),
    statusCodes,
    errorBodies: Object.assign({}, ...results.map((r) => r.errorBodies)),
  };
}

/**
 * Scaling: `GET /users/:id` through one and then two instances of every role (each instance a
 * process of its own, as with --split), the same 64 connections spread over the gateways.
 */
export async function scalingReads(s: Settings, infra: Infra, echo: Figure): Promise<Measured> {
  const figures: Figure[] = [];
  const processes: ProcessInfo[] = [];
  for (const instances of [1, 2]) {
    const roles = Array.from({ length: instances }, () => PLATFORM_ROLES).flat();
    const measured = await withPlatform(
      { ...s, split: true },
      infra,
      `scale-x${instances}`,
      async (servers) => {
        const reader = new ApiClient(servers.url);
        const { user } = await setUp(() => reader.register(newUser("scale")));
        await reader.user(user.id);
        const headers = { authorization: `Bearer ${reader.accessToken}` };
        const per = Math.ceil(HTTP_CONNECTIONS / servers.urls.length);
        const label = `GET /users/:id, ${instances} instance${instances > 1 ? "s" : ""} of each role`;
        const results = await repeat(
          s,
          label,
          servers,
          async (durationS) =>
            combined(
              await Promise.all(
                servers.urls.map((url) =>
                  closedLoop({ url: `${url}/users/${user.id}`, durationS, connections: per, headers }),
                ),
              ),
            ),
          describeHttp,
        );
        return { figures: readFigures(`scale.x${instances}`, label, results, { rps: echo }) };
      },
      roles,
    );
    figures.push(...measured.figures);
    processes.push(...measured.processes);
  }
  return { figures, processes };
}

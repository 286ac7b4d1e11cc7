/**
 * The two load generators, both in the runner's process (the servers under test run in children):
 * autocannon for closed-loop throughput (a fixed number of connections, each sending its next
 * request when the last one is answered), and a paced open-loop generator for a fixed arrival rate.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon, { type Request } from "autocannon";
import { runChild } from "./processes.ts";

const REQUEST_TIMEOUT_S = 10;
const ERROR_BODY_CHARS = 300;
/** Time allowed beyond the planned duration before a run is cut off. */
const OVERRUN_MS = 30_000;

export interface LoadResult {
  /** Successful (2xx) responses per second (for the paced generator: until the last answer). */
  rps: number;
  /** Latency percentiles of successful responses, in ms. */
  p50: number;
  p95: number | undefined;
  p99: number;
  mean: number;
  requests: number;
  /** Non-2xx answers, socket errors, timeouts and requests dropped by the pacer. */
  failures: number;
  /** Answers by HTTP status, and requests that got none: "timeout", "error", "dropped", "unanswered". */
  statusCodes: Record<string, number>;
  /** The start of the first body answered with each non-2xx status (not kept for plain reads). */
  errorBodies: Record<string, string>;
  /** Paced runs: 503 answers (load shed) and their latency percentiles, in ms. */
  shed?: { count: number; p50: number; p99: number; max: number };
  /** Paced runs: the slowest answer of any status, in ms. */
  maxMs?: number;
  /** The generator's own CPU, in cores, when it ran in a process of its own (openLoopInChild). */
  generatorCores?: number;
  /**
   * Paced runs: how late the generator sent its requests after they were due (its own timers and
   * pauses), p99 and max in ms. Latency counts from the due time, so this part of it is the
   * generator's, not the server's.
   */
  sendLate?: { p99: number; max: number };
}

export interface ClosedLoop {
  url: string;
  durationS: number;
  connections: number;
  headers?: Record<string, string>;
  requests?: Request[];
  /** Keep every 2xx latency to compute p95 (autocannon's own histogram has no p95) and error bodies. */
  p95?: boolean;
}

/** Keeps the start of the first body of each non-2xx status. */
function keepErrorBody(bodies: Record<string, string>, status: number, body: string): void {
  if ((status < 200 || status >= 300) && !(status in bodies))
    bodies[status] = body.slice(0, ERROR_BODY_CHARS);
}

export function closedLoop(options: ClosedLoop): Promise<LoadResult> {
  const samples: number[] = [];
  const errorBodies: Record<string, string> = {};
  const onResponse = (status: number, body: string) => keepErrorBody(errorBodies, status, body);
  const requests = options.p95
    ? (options.requests ?? [{}]).map((r) => ({ ...r, onResponse }))
    : options.requests;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        duration: options.durationS,
        timeout: REQUEST_TIMEOUT_S,
        headers: options.headers,
        requests,
      },
      (err, result) => {
        clearTimeout(cutoff);
        if (err) {
          reject(err);
          return;
        }
        const statusCodes: Record<string, number> = {};
        for (const [code, stat] of Object.entries(result.statusCodeStats)) statusCodes[code] = stat.count;
        if (result.timeouts) statusCodes.timeout = result.timeouts;
        if (result.errors) statusCodes.error = result.errors;
        const sorted = samples.sort((a, b) => a - b);
        resolve({
          rps: result["2xx"] / result.duration,
          p50: options.p95 ? percentile(sorted, 50) : result.latency.p50,
          p95: options.p95 ? percentile(sorted, 95) : undefined,
          p99: options.p95 ? percentile(sorted, 99) : result.latency.p99,
          mean: options.p95 ? mean(sorted) : result.latency.mean,
          requests: result.requests.total,
          failures: result.non2xx + result.errors + result.timeouts,
          statusCodes,
          errorBodies,
        });
      },
    );
    if (options.p95) {
      instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
        if (status >= 200 && status < 300) samples.push(ms);
      });
    }
    const cutoff = setTimeout(() => instance.stop(), options.durationS * 1000 + OVERRUN_MS);
  });
}

export interface OpenLoop {
  url: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  /** A fresh body per request; none for a GET. */
  body?: () => string;
  /** Requests per second, sent evenly spaced whatever the answers. */
  rate: number;
  durationS: number;
  /** Requests in flight beyond this are not sent and count as failures. */
  maxInFlight: number;
}

/**
 * Sends requests at fixed intervals regardless of answers (an open workload, so a slow server
 * cannot slow the arrivals down) and measures each latency from the time the request was due, so a
 * late timer counts against the server, never for it.
 */
export async function openLoop(options: OpenLoop): Promise<LoadResult> {
  const { hostname, port } = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxInFlight });
  const samples: number[] = [];
  const shedSamples: number[] = [];
  let maxMs = 0;
  const statusCodes: Record<string, number> = {};
  const errorBodies: Record<string, string> = {};
  let failures = 0;
  let requests = 0;
  /** Answers that come after the run was cut off are not counted (they already count as failures). */
  let counting = true;
  let lastAnswer = 0;
  const inFlight = new Set<Promise<void>>();
  /** A request that got no answer. */
  const count = (outcome: string) => {
    failures += 1;
    statusCodes[outcome] = (statusCodes[outcome] ?? 0) + 1;
  };

  const send = (due: number) =>
    new Promise<void>((resolve) => {
      const body = options.body?.() ?? "";
      const req = http.request(
        {
          agent,
          host: hostname,
          port,
          method: options.method,
          path: options.path,
          headers: body ? { ...options.headers, "content-length": Buffer.byteLength(body) } : options.headers,
          timeout: REQUEST_TIMEOUT_S * 1000,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            if (status >= 300 && text.length < ERROR_BODY_CHARS) text += chunk;
          });
          res.on("end", () => {
            if (counting) {
              keepErrorBody(errorBodies, status, text);
              statusCodes[status] = (statusCodes[status] ?? 0) + 1;
              lastAnswer = performance.now();
              const ms = lastAnswer - due;
              maxMs = Math.max(maxMs, ms);
              if (status >= 200 && status < 300) samples.push(ms);
              else failures += 1;
              if (status === 503) shedSamples.push(ms);
            }
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (err) => {
        if (counting) count(err.message === "timeout" ? "timeout" : "error");
        resolve();
      });
      req.end(body);
    });

  const interval = 1000 / options.rate;
  const late: number[] = [];
  const start = performance.now();
  const end = start + options.durationS * 1000;
  for (let i = 0; ; i++) {
    const due = start + i * interval;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    requests += 1;
    late.push(Math.max(0, performance.now() - due));
    if (inFlight.size >= options.maxInFlight) {
      count("dropped");
      continue;
    }
    const pending = send(due).then(() => {
      inFlight.delete(pending);
    });
    inFlight.add(pending);
  }
  await Promise.race([Promise.all(inFlight), sleep(OVERRUN_MS, undefined, { ref: false })]);
  counting = false;
  if (inFlight.size) {
    failures += inFlight.size;
    statusCodes.unanswered = inFlight.size;
  }
  agent.destroy();
  const sorted = samples.sort((a, b) => a - b);
  const shedSorted = shedSamples.sort((a, b) => a - b);
  const lateSorted = late.sort((a, b) => a - b);
  const elapsedS = Math.max(options.durationS, (lastAnswer - start) / 1000);
  return {
    rps: samples.length / elapsedS,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    mean: mean(sorted),
    p99: percentile(sorted, 99),
    requests,
    failures,
    statusCodes,
    errorBodies,
    shed: {
      count: shedSorted.length,
      p50: percentile(shedSorted, 50),
      p99: percentile(shedSorted, 99),
      max: shedSorted.at(-1) ?? Number.NaN,
    },
    sendLate: { p99: percentile(lateSorted, 99), max: lateSorted.at(-1) ?? Number.NaN },
    maxMs:
      statusCodes.timeout || statusCodes.unanswered || statusCodes.error ? Number.POSITIVE_INFINITY : maxMs,
  };
}

function mean(values: number[]): number {
  return values.length ? values.reduce((sum, v) => sum + v, 0) / values.length : Number.NaN;
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** Seconds a generator process sends at its rate, unmeasured, before its measured run. */
const CHILD_WARMUP_S = 2;

/**
 * openLoop in a child process (bench/open-loop-child.ts): bodiless requests, with the generator's
 * CPU; the child warms up at the same rate first (CHILD_WARMUP_S), so its cold start is not
 * counted as the server's latency.
 */
export async function openLoopInChild(options: Omit<OpenLoop, "body">): Promise<LoadResult> {
  const timeoutMs =
    (CHILD_WARMUP_S + options.durationS + 2 * REQUEST_TIMEOUT_S) * 1000 + 2 * OVERRUN_MS + 30_000;
  const data = await runChild(
    "open-loop",
    "./open-loop-child.ts",
    { ...options, warmupS: CHILD_WARMUP_S },
    timeoutMs,
  );
  return { ...(data.result as LoadResult), generatorCores: data.cores as number };
}

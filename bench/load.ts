/**
 * The two load generators, both in the runner's process (the servers under test run in children):
 * autocannon for closed-loop throughput (a fixed number of connections, each sending its next
 * request when the last one is answered), and a paced open-loop generator for a fixed arrival rate.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon, { type Request } from "autocannon";

const REQUEST_TIMEOUT_S = 10;
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
  statusCodes: Record<string, number>;
}

export interface ClosedLoop {
  url: string;
  durationS: number;
  connections: number;
  headers?: Record<string, string>;
  requests?: Request[];
  /** Keep every 2xx latency to compute p95 (autocannon's own histogram has no p95). */
  p95?: boolean;
}

export function closedLoop(options: ClosedLoop): Promise<LoadResult> {
  const samples: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        duration: options.durationS,
        timeout: REQUEST_TIMEOUT_S,
        headers: options.headers,
        requests: options.requests,
      },
      (err, result) => {
        clearTimeout(cutoff);
        if (err) {
          reject(err);
          return;
        }
        const statusCodes: Record<string, number> = {};
        for (const [code, stat] of Object.entries(result.statusCodeStats)) statusCodes[code] = stat.count;
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
  const statusCodes: Record<string, number> = {};
  let failures = 0;
  let requests = 0;
  /** Answers that come after the run was cut off are not counted (they already count as failures). */
  let counting = true;
  let lastAnswer = 0;
  const inFlight = new Set<Promise<void>>();

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
          res.resume();
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            if (counting) {
              statusCodes[status] = (statusCodes[status] ?? 0) + 1;
              lastAnswer = performance.now();
              if (status >= 200 && status < 300) samples.push(lastAnswer - due);
              else failures += 1;
            }
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => {
        if (counting) failures += 1;
        resolve();
      });
      req.end(body);
    });

  const interval = 1000 / options.rate;
  const start = performance.now();
  const end = start + options.durationS * 1000;
  for (let i = 0; ; i++) {
    const due = start + i * interval;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    requests += 1;
    if (inFlight.size >= options.maxInFlight) {
      failures += 1;
      continue;
    }
    const pending = send(due).then(() => {
      inFlight.delete(pending);
    });
    inFlight.add(pending);
  }
  await Promise.race([Promise.all(inFlight), sleep(OVERRUN_MS, undefined, { ref: false })]);
  counting = false;
  failures += inFlight.size;
  agent.destroy();
  const sorted = samples.sort((a, b) => a - b);
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

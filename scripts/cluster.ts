/**
 * `npm run cluster`: a local multi-process cluster. Starts nats-server, redis-server and FerretDB
 * (free ports, data in temp dirs; NATS_URL, REDIS_URL, MONGO_URL name external ones instead), then
 * every node with moleculer-runner and the env broker.config.ts reads, waits until each worker has
 * joined the bus and /health/ready answers 200, prints the URL and runs until SIGINT or SIGTERM.
 * Stopping goes gateways first, then services, then servers, then the temp dir. Options:
 * `npm run cluster -- --help`. `startCluster()` does the same for other scripts (artillery/run.ts).
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort, type ServerHandle, startFerret, startNats, startRedis } from "../test/harness/servers.ts";
import { ClusterObserver } from "./cluster-observer.ts";
import { type ClusterOptions, LOAD_LIMITS, parseClusterOptions, USAGE } from "./cluster-options.ts";
import { RunnerProcess } from "./runner-process.ts";

export interface Cluster {
  /** http://HOST:PORT of the gateways (one port, shared by every gateway worker). */
  url: string;
  /** The env every node got (TRANSPORTER, MONGO_URL, REDIS_URL, NAMESPACE, ...). */
  env: Record<string, string>;
  runners: RunnerProcess[];
  /** Runners that exited while they were meant to run. */
  failures: string[];
  stop(): Promise<void>;
}

type Log = (line: string) => void;

/** Starts servers and nodes and resolves once the cluster is ready; on failure stops what it started. */
export async function startCluster(options: ClusterOptions, log: Log = () => undefined): Promise<Cluster> {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) throw new Error(`Node ${process.versions.node}: run with Node 24 (npm run / npx node)`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), "social-cluster-"));
  const logDir = options.logDir ? path.resolve(options.logDir) : path.join(tmp, "logs");
  await mkdir(logDir, { recursive: true });
  await mkdir(path.join(tmp, "data"), { recursive: true });
  const servers: ServerHandle[] = [];
  const runners: RunnerProcess[] = [];
  const failures: string[] = [];
  let observer: ClusterObserver | undefined;
  let stopping = false;

  const stop = async () => {
    stopping = true;
    // The harness unrefs its servers; this keeps the process alive until they have exited.
    const keepAlive = setInterval(() => undefined, 1_000);
    const gateways = runners.filter((r) => r.spec.services.includes("gateway"));
    await Promise.all(gateways.map((r) => r.stop()));
    await Promise.all(runners.map((r) => r.stop()));
    await observer?.stop().catch(() => undefined);
    await Promise.all(servers.map((s) => (s.external ? undefined : s.stop().catch(() => undefined))));
    await rm(tmp, { recursive: true, force: true });
    clearInterval(keepAlive);
  };

  try {
    const port = options.port === 0 ? await freePort() : options.port;
    await assertPortFree(options.host, port);
    const [nats, redis, mongo] = await Promise.all([startNats(), startRedis(), startFerret()]);
    servers.push(nats, redis, mongo);
    for (const s of [nats, redis, mongo]) {
      log(`${s.external ? "using" : "started"} ${s.url}${s.pid ? ` (pid ${s.pid})` : ""}`);
    }
    const namespace = process.env.NAMESPACE ?? "social";
    const metrics = (process.env.METRICS_ENABLED ?? "true") !== "false";
    const env: Record<string, string> = {
      ...(options.load ? withoutSet(LOAD_LIMITS) : {}),
      NAMESPACE: namespace,
      TRANSPORTER: nats.url,
      MONGO_URL: mongo.external ? mongo.url : `${mongo.url}/social`,
      REDIS_URL: redis.url,
      DATA_DIR: path.join(tmp, "data"),
      HOST: options.host,
      PORT: String(port),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
      METRICS_ENABLED: String(metrics),
    };
    observer = await ClusterObserver.start(namespace, nats.url);
    await prepareStore(env, logDir, observer, options.readyTimeoutMs, log);
    for (const spec of options.runners) {
      // Workers of one runner share its metrics port through the cluster module, as gateways share PORT.
      const metricsPort: Record<string, string> = metrics ? { METRICS_PORT: String(await freePort()) } : {};
      const runner = RunnerProcess.start(spec, { ...env, ...metricsPort }, logDir);
      runners.push(runner);
      log(
        `started ${spec.id}: ${spec.services.join("+")} x${spec.instances} (pid ${runner.pid}` +
          `${metrics ? `, metrics :${metricsPort.METRICS_PORT}` : ""})`,
      );
      void runner.exited.then((code) => {
        if (stopping || runner.stopping) return;
        const failure = `${spec.id} (pid ${runner.pid}) exited with ${code}; its output ends with:\n${runner.tail()}`;
        failures.push(failure);
        log(`node ${failure}`);
      });
    }
    const url = `http://${options.host === "0.0.0.0" ? "127.0.0.1" : options.host}:${port}`;
    await waitUntilUp(runners, observer, url, options.readyTimeoutMs, failures);
    return { url, env, runners, failures, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Starts one node hosting every service that has a store, alone, so it creates the collections and
 * indexes, and stops it. FerretDB 1.24 drops the connection (a panic in its SQLite handler) when
 * two clients create the indexes of one new collection at the same moment, which is what the
 * workers of `--instances` would otherwise do; once the indexes exist, nodes only list them.
 */
async function prepareStore(
  env: Record<string, string>,
  logDir: string,
  observer: ClusterObserver,
  timeoutMs: number,
  log: Log,
): Promise<void> {
  const spec = { id: "store-setup", services: ["auth", "profile", "chat"], instances: 1 } as const;
  const runner = RunnerProcess.start(
    { ...spec, services: [...spec.services] },
    { ...env, METRICS_ENABLED: "false" },
    logDir,
  );
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (!runner.running) {
        throw new Error(`the store setup node exited; its output ends with:\n${runner.tail()}`);
      }
      if (Date.now() > deadline) throw new Error("the store setup node did not start in time");
      const node = observer.nodes().find((n) => n.id === spec.id);
      if (node && spec.services.every((s) => node.services.includes(s))) break;
      await sleep(200);
    }
  } finally {
    await runner.stop();
  }
  log("collections and indexes ready");
}

/** Every worker on the bus with its services, then /health/ready 200 from every gateway worker. */
async function waitUntilUp(
  runners: RunnerProcess[],
  observer: ClusterObserver,
  url: string,
  timeoutMs: number,
  failures: string[],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const check = () => {
    if (failures.length > 0) throw new Error(`a node died while starting: ${failures[0]}`);
    if (Date.now() > deadline) throw new Error(`the cluster was not ready within ${timeoutMs / 1000} s`);
  };
  for (;;) {
    check();
    const joined = new Map(observer.nodes().map((n) => [n.id, n.services]));
    const missing = runners.flatMap((r) =>
      r.nodeIds.filter((id) => !r.spec.services.every((s) => joined.get(id)?.includes(s))),
    );
    if (missing.length === 0) break;
    await sleep(250);
  }
  // The gateway workers share one port; a fresh connection per probe lets each of them answer.
  const gatewayWorkers = runners.find((r) => r.spec.services.includes("gateway"))?.spec.instances ?? 1;
  let inARow = 0;
  while (inARow < gatewayWorkers * 3) {
    check();
    inARow = (await readyStatus(`${url}/health/ready`)) === 200 ? inARow + 1 : 0;
    if (inARow === 0) await sleep(250);
  }
}

function readyStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", (err) => reject(new Error(`port ${port} on ${host} is taken (${err.message})`)));
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

function withoutSet(vars: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(vars).filter(([name]) => process.env[name] === undefined));
}

async function main(): Promise<void> {
  let options: ClusterOptions | "help";
  try {
    options = parseClusterOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const log = (line: string) => process.stdout.write(`[cluster] ${line}\n`);
  let cluster: Cluster | undefined;
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = signal;
    log(`${signal}: stopping`);
    if (!cluster) return;
    void cluster.stop().then(() => {
      log("stopped");
      process.exit(cluster?.failures.length ? 1 : 0);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const started = Date.now();
  try {
    cluster = await startCluster(options, log);
  } catch (err) {
    process.stderr.write(`[cluster] ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (signalled) {
    await cluster.stop();
    process.exit(0);
  }
  log(
    `ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${cluster.url} (WebSocket ${cluster.url.replace(/^http/, "ws")}/ws)`,
  );
  log(`logs: ${path.dirname(cluster.runners[0]?.logFile ?? "")}; Ctrl-C stops everything`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}

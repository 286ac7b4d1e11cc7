/**
 * The servers a WebSocket benchmark runs against, each seeded and started in child processes:
 * the bare `ws` baseline, the embedded platform (one process, one broker with every service and
 * the embedded store, as `npm start` runs it) and the cluster (a gateway process, and auth,
 * profile and chat brokers in another, over NATS with Redis and FerretDB) and the same cluster
 * scaled out (`cluster2`: two gateway processes, and a second chat node in a process of its own;
 * the clients alternate between the gateways); and Centrifugo v6 (bench/servers/centrifugo.ts), a
 * real-time server of another make, with the same users and groups, its own protocol and a
 * connection JWT per user. `gatewayPid` is the process whose memory per connection is measured
 * (the first gateway; Centrifugo's process, of which only the RSS is read).
 */
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { loadConfig } from "../../lib/config.ts";
import { startNatsCluster, startRedisCluster } from "../../test/harness/clusters.ts";
import { type ServiceName, tempDir } from "../../test/support/platform.ts";
import { type BenchChild, startChild } from "../processes.ts";
import type { Infra, Settings } from "../scenarios.ts";
import { connectionToken, startCentrifugo } from "../servers/centrifugo.ts";
import type { BenchUser, Protocol } from "./clients.ts";
import { GROUP_SIZE, seed } from "./seed.ts";

export const TARGETS = ["bare", "centrifugo", "embedded", "cluster", "cluster2", "cluster-ha"] as const;
export type Target = (typeof TARGETS)[number];

export interface Deployed {
  target: Target;
  /** The gateways; user i connects to urls[i % urls.length]. */
  urls: string[];
  users: BenchUser[];
  protocol: Protocol;
  gatewayPid: number;
  /** Where gatewayPid reports its heap (memory.ts); none for Centrifugo, whose RSS alone is read. */
  memoryFile: string | undefined;
  children: BenchChild[];
  /** Seconds spent seeding users, sessions, tokens and chats. */
  seedS: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 180_000;
const NODE_FLAGS = ["--expose-gc"];

/**
 * Settings an operator of a 10,000-connection deployment would set: tokens that outlive the run
 * (the clients hold minted tokens and never refresh), and a per-connection frame limit above what
 * random senders may burst to at the highest rates the saturation search offers. Origins,
 * heartbeat and buffers keep their defaults (the clients send no Origin).
 */
export const BENCH_ENV: Record<string, string> = {
  HOST: "127.0.0.1",
  PORT: "0",
  METRICS_ENABLED: "false",
  LOG_LEVEL: "warn",
  ACCESS_TOKEN_TTL_S: "86400",
  WS_RATE_LIMIT: "1000/10",
};

const SERVICE_BROKERS: ServiceName[][] = [["auth"], ["profile"], ["chat"]];

export async function deploy(
  target: Target,
  connections: number,
  infra: Infra,
  s: Pick<Settings, "platformEnv" | "log" | "cpuProfDir" | "platformNodeFlags">,
): Promise<Deployed> {
  const { platformEnv: extraEnv, log, cpuProfDir, platformNodeFlags: platformFlags } = s;
  /**
   * Node flags of one child: --expose-gc, a platform node's own (PLATFORM_NODE_FLAGS unless the
   * run says otherwise), and a CPU profile named after it when asked.
   */
  const flags = (name: string, platform = true) => [
    ...NODE_FLAGS,
    ...(platform ? platformFlags : []),
    ...(cpuProfDir
      ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`]
      : []),
  ];
  /** Where a child dumps its brokers' metrics (with --cpu-prof; they exist with METRICS_ENABLED=true). */
  const metricsOf = (name: string) => (cpuProfDir ? path.join(cpuProfDir, `${name}.metrics`) : undefined);
  const dir = await tempDir(`social-bench-ws-${target}-`);
  const memoryFile = path.join(dir.dir, "memory.json");
  const children: BenchChild[] = [];
  const haStops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const child of [...children].reverse()) await child.stop();
    await Promise.all(haStops.map((s) => s()));
    await dir.remove();
  };
  /** The deployment, served by `urls`, of which `under` is measured. */
  const deployed = (
    urls: string[],
    users: BenchUser[],
    under: BenchChild,
    seedS: number,
    protocol: Protocol = "platform",
  ): Deployed => ({
    target,
    urls,
    users,
    protocol,
    gatewayPid: under.pid,
    memoryFile: protocol === "platform" ? memoryFile : undefined,
    children,
    seedS,
    stop,
  });
  try {
    if (target === "bare") {
      const users = bareUsers(connections);
      const groupsFile = path.join(dir.dir, "groups.json");
      await writeFile(groupsFile, JSON.stringify(groupsOf(users)));
      const child = await startChild(
        "ws-bare",
        "./servers/bare-ws.ts",
        { groupsFile, memoryFile },
        {
          timeoutMs: READY_TIMEOUT_MS,
          nodeFlags: flags("ws-bare", false),
        },
      );
      children.push(child);
      return deployed([String(child.data.url)], users, child, 0);
    }
    if (target === "centrifugo") {
      const server = await startCentrifugo(dir.dir, READY_TIMEOUT_MS);
      children.push(server.child);
      const started = performance.now();
      const users = bareUsers(connections).map((u) => ({
        ...u,
        token: connectionToken(server.hmacSecret, u.id),
      }));
      return deployed([server.url], users, server.child, (performance.now() - started) / 1000, "centrifugo");
    }
    const namespace = `benchws${target.replace(/\W/g, "")}${process.pid}`;
    // cluster-ha: the cluster's processes on a NATS cluster (three servers with routes) and a Redis
    // Cluster (three masters, a replica each), started for this deployment and stopped with it.
    let ha: { nats: string; redisNodes: string } | undefined;
    if (target === "cluster-ha") {
      const [nats, redis] = await Promise.all([startNatsCluster(3), startRedisCluster()]);
      haStops.push(
        () => nats.stop(),
        () => redis.stop(),
      );
      ha = { nats: nats.url, redisNodes: redis.nodes };
    }
    const env: Record<string, string> = {
      ...BENCH_ENV,
      DATA_DIR: path.join(dir.dir, "data"),
      NAMESPACE: namespace,
      ...(ha
        ? {
            TRANSPORTER: ha.nats,
            MONGO_URL: `${infra.mongo}/${namespace}`,
            REDIS_CLUSTER_NODES: ha.redisNodes,
          }
        : target !== "embedded"
          ? { TRANSPORTER: infra.nats, MONGO_URL: `${infra.mongo}/${namespace}`, REDIS_URL: infra.redis }
          : {}),
      ...extraEnv,
    };
    log(`${target}: seeding ${connections} users and ${Math.ceil(connections / GROUP_SIZE)} groups`);
    const seeded = await seed(loadConfig(env), connections, log);
    log(`${target}: seeded in ${seeded.seconds.toFixed(1)} s`);
    const users = seeded.users.map((u) => ({ id: u.id, token: u.token, chatId: u.chatId }));
    if (target === "embedded") {
      const child = await startChild(
        "ws-embedded",
        "./ws/node.ts",
        {
          brokers: [["auth", "profile", "chat", "gateway"]],
          env,
          memoryFile,
          metricsFile: metricsOf("ws-embedded"),
        },
        { timeoutMs: READY_TIMEOUT_MS, nodeFlags: flags("ws-embedded") },
      );
      children.push(child);
      return deployed([String(child.data.url)], users, child, seeded.seconds);
    }
    const scaled = target === "cluster2";
    const gatewayBrokers: ServiceName[][] = [["gateway"]];
    const nodes = [
      { name: "ws-cluster-services", brokers: SERVICE_BROKERS, gateway: false },
      ...(scaled
        ? [{ name: "ws-cluster-chat-2", brokers: [["chat"]] as ServiceName[][], gateway: false }]
        : []),
      { name: "ws-cluster-gateway", brokers: gatewayBrokers, gateway: true },
      ...(scaled ? [{ name: "ws-cluster-gateway-2", brokers: gatewayBrokers, gateway: true }] : []),
    ];
    const gateways: BenchChild[] = [];
    for (const { name, brokers, gateway } of nodes) {
      // The first gateway's memory is the one measured per connection.
      const memory = gateway && gateways.length === 0 ? memoryFile : `${memoryFile}.${name}`;
      const child = await startChild(
        name,
        "./ws/node.ts",
        { brokers, env, memoryFile: memory, metricsFile: metricsOf(name) },
        { timeoutMs: READY_TIMEOUT_MS, nodeFlags: flags(name) },
      );
      children.push(child);
      if (gateway) gateways.push(child);
    }
    return deployed(
      gateways.map((g) => String(g.data.url)),
      users,
      gateways[0] as BenchChild,
      seeded.seconds,
    );
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Users of the bare baseline (and of Centrifugo, which gets a JWT instead): the same id shapes and
 * groups; the token is the user id.
 */
function bareUsers(count: number): BenchUser[] {
  const users: BenchUser[] = [];
  for (let i = 0; i < count; i += GROUP_SIZE) {
    const chatId = randomUUID();
    for (let j = i; j < Math.min(count, i + GROUP_SIZE); j++) {
      const id = randomUUID();
      users.push({ id, token: id, chatId });
    }
  }
  return users;
}

function groupsOf(users: BenchUser[]): { id: string; members: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const u of users) groups.set(u.chatId, [...(groups.get(u.chatId) ?? []), u.id]);
  return [...groups].map(([id, members]) => ({ id, members }));
}

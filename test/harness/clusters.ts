/**
 * Clustered test servers, on free ports of 127.0.0.1 like those of servers.ts: a NATS cluster
 * (nats-server processes joined by routes) and a Redis Cluster (three masters with a replica
 * each). Each member is a ManagedServer of its own, so a test can kill one with SIGKILL and start
 * it again on the same ports with the same dir (a Redis node then rejoins with the identity in
 * its nodes.conf, as a replica of whoever took over its slots).
 */
import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { findBinary } from "./binaries.ts";
import { expectLine } from "./probes.ts";
import { ManagedServer, type ServerHandle } from "./server-process.ts";
import { freePort } from "./servers.ts";

const run = promisify(execFile);
const FORMED_TIMEOUT_MS = 30_000;

export interface NatsClusterHandle {
  /** The client URLs of every server, comma-separated: a TRANSPORTER value. */
  readonly url: string;
  /** One handle per server: `url` is that server's client URL alone. */
  readonly servers: readonly ServerHandle[];
  /** Resolves once every running server has a route to every other running one. */
  routed(timeoutMs?: number): Promise<void>;
  /** Client connections of each server (-1: not answering), in the order of `servers`. */
  connections(): Promise<number[]>;
  stop(): Promise<void>;
}

/**
 * `n` nats-server processes in one cluster: each listens for clients on a free port and for
 * routes on another (`--cluster`), names the route ports of the others (`--routes`), and serves
 * its monitoring endpoint on a third, which `routed()` reads (`/routez`).
 */
export async function startNatsCluster(n = 3): Promise<NatsClusterHandle> {
  const command = findBinary("nats-server");
  const name = `test-${process.pid}-${Date.now().toString(36)}`;
  const members = await Promise.all(
    Array.from({ length: n }, async () => ({
      client: await freePort(),
      route: await freePort(),
      monitor: await freePort(),
    })),
  );
  const servers: ManagedServer[] = [];
  try {
    for (const [i, m] of members.entries()) {
      const routes = members
        .filter((_, j) => j !== i)
        .map((o) => `nats://127.0.0.1:${o.route}`)
        .join(",");
      servers.push(
        await ManagedServer.start(
          {
            name: "nats-server",
            command,
            args: (port) => [
              ...["-a", "127.0.0.1", "-p", String(port), "-m", String(m.monitor)],
              ...["--cluster", `nats://127.0.0.1:${m.route}`, "--cluster_name", name, "--routes", routes],
            ],
            url: (port) => `nats://127.0.0.1:${port}`,
            probe: (port) => expectLine(port, undefined, (line) => line.startsWith("INFO ")),
          },
          m.client,
        ),
      );
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  const routed = async (timeoutMs = FORMED_TIMEOUT_MS) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const up = members.filter((_, i) => servers[i]?.pid !== undefined);
      const counts = await Promise.all(
        up.map(async (m) => {
          try {
            const res = await fetch(`http://127.0.0.1:${m.monitor}/routez`);
            return ((await res.json()) as { num_routes: number }).num_routes;
          } catch {
            return -1;
          }
        }),
      );
      if (counts.every((c) => c >= up.length - 1)) return;
      if (Date.now() > deadline) throw new Error(`NATS routes not formed: ${counts.join(", ")}`);
      await sleep(100);
    }
  };
  try {
    await routed();
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return {
    url: servers.map((s) => s.url).join(","),
    servers,
    routed,
    connections: () =>
      Promise.all(
        members.map(async (m) => {
          try {
            const res = await fetch(`http://127.0.0.1:${m.monitor}/varz`);
            return ((await res.json()) as { connections: number }).connections;
          } catch {
            return -1;
          }
        }),
      ),
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

export interface RedisNodeInfo {
  port: number;
  id: string;
  role: "master" | "replica";
  /** Of a replica: the id of its master. */
  masterId: string | undefined;
  /** Slot ranges of a master, as [first, last]. */
  slots: [number, number][];
  /** Flagged failed (or not connected) by the node asked. */
  failed: boolean;
}

export interface RedisClusterHandle {
  /** 127.0.0.1:port of every node, comma-separated: a REDIS_CLUSTER_NODES value. */
  readonly nodes: string;
  readonly servers: readonly ServerHandle[];
  /** Runs one command on the node on this port (redis-cli), answering its raw output. */
  command(port: number, ...args: string[]): Promise<string>;
  /** The cluster as a running node sees it (`CLUSTER NODES`). */
  topology(): Promise<RedisNodeInfo[]>;
  /** The slot a key hashes to (`CLUSTER KEYSLOT`). */
  slotOf(key: string): Promise<number>;
  /** The master serving this slot now, by a running node's view. */
  masterOf(slot: number): Promise<RedisNodeInfo>;
  /** The server of a port. */
  server(port: number): ServerHandle;
  /** Resolves once every running node says cluster_state:ok and sees the same masters. */
  healthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Six redis-server processes with cluster mode on, joined by `redis-cli --cluster create` into
 * three masters with one replica each. A node is taken for failed after 2 s without an answer
 * (`cluster-node-timeout`), and a replica takes over however long it was cut off from its master
 * (`cluster-replica-validity-factor 0`: availability over the last writes a stale replica lacks).
 * `cluster-require-full-coverage no` lets the other masters answer for their slots while one set
 * of slots has no master, as a cache and rate limits want; nothing is kept on disk but nodes.conf.
 */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const command = findBinary("redis-server");
  const cli = findBinary("redis-cli");
  const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const servers: ManagedServer[] = [];
  const stopAll = () => Promise.all(servers.map((s) => s.stop()));
  const redis = async (port: number, ...args: string[]) =>
    (await run(cli, ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 5_000 })).stdout;
  try {
    for (const port of ports) {
      servers.push(
        await ManagedServer.start(
          {
            name: "redis-server",
            command,
            args: (p, dir) => [
              ...["--port", String(p), "--bind", "127.0.0.1", "--dir", dir],
              ...["--cluster-enabled", "yes", "--cluster-config-file", `${dir}/nodes.conf`],
              ...["--cluster-node-timeout", "2000", "--cluster-replica-validity-factor", "0"],
              ...["--cluster-require-full-coverage", "no"],
              ...["--appendonly", "no", "--save", ""],
            ],
            url: (p) => `redis://127.0.0.1:${p}`,
            probe: (p) => expectLine(p, "PING\r\n", (line) => line === "+PONG"),
          },
          port,
        ),
      );
    }
    await run(
      cli,
      [
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        "1",
        "--cluster-yes",
      ],
      { timeout: 60_000 },
    );
  } catch (err) {
    await stopAll();
    throw err;
  }
  const running = () => servers.filter((s) => s.pid !== undefined);
  /** Runs the command on the first running node that answers it. */
  const anyNode = async (...args: string[]): Promise<string> => {
    let lastError: unknown;
    for (const s of running()) {
      try {
        return await redis(s.port, ...args);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError ?? new Error("no Redis Cluster node runs");
  };
  const topology = async () => parseClusterNodes(await anyNode("cluster", "nodes"));
  const masterOf = async (slot: number) => {
    const master = (await topology()).find(
      (n) => n.role === "master" && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return master;
  };
  const healthy = async (timeoutMs = FORMED_TIMEOUT_MS) => {
    const deadline = Date.now() + timeoutMs;
    let seen = "";
    for (;;) {
      try {
        const up = running();
        const states = await Promise.all(up.map((s) => redis(s.port, "cluster", "info")));
        const views = await Promise.all(up.map((s) => redis(s.port, "cluster", "nodes")));
        const masters = views.map((v) =>
          parseClusterNodes(v)
            .filter((n) => n.role === "master" && !n.failed && n.slots.length > 0)
            .map((n) => `${n.port}`)
            .sort()
            .join(","),
        );
        seen = `${states.map((s) => /cluster_state:(\w+)/.exec(s)?.[1]).join(",")} masters ${masters.join(" | ")}`;
        // Every node's view also has the three replicas attached: right after `--cluster create`
        // the nodes to be replicas still show as masters without slots for a moment.
        const replicasAttached = views.every(
          (v) => parseClusterNodes(v).filter((n) => n.role === "replica" && !n.failed).length === 3,
        );
        const ok = states.every((s) => s.includes("cluster_state:ok"));
        if (ok && replicasAttached && new Set(masters).size === 1 && masters[0]?.split(",").length === 3)
          return;
      } catch (err) {
        seen = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`Redis Cluster not healthy: ${seen}`);
      await sleep(100);
    }
  };
  try {
    await healthy();
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(","),
    servers,
    command: redis,
    topology,
    slotOf: async (key) => Number((await anyNode("cluster", "keyslot", key)).trim()),
    masterOf,
    server: (port) => {
      const server = servers.find((s) => s.port === port);
      if (!server) throw new Error(`no Redis Cluster node on port ${port}`);
      return server;
    },
    healthy,
    stop: async () => {
      await stopAll();
    },
  };
}

/** `CLUSTER NODES`: id addr flags master ping pong epoch link slot... */
function parseClusterNodes(text: string): RedisNodeInfo[] {
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => {
      const [id = "", addr = "", flags = "", master = "-", , , , link = "", ...slots] = line
        .trim()
        .split(" ");
      const port = Number(/:(\d+)@/.exec(addr)?.[1] ?? /:(\d+)$/.exec(addr)?.[1]);
      const flagList = flags.split(",");
      return {
        port,
        id,
        role: flagList.includes("master") ? "master" : "replica",
        masterId: master === "-" ? undefined : master,
        slots: slots
          .filter((s) => !s.startsWith("["))
          .map((s) => {
            const [a, b] = s.split("-").map(Number);
            return [a as number, (b ?? a) as number];
          }),
        failed: flagList.includes("fail") || flagList.includes("fail?") || link !== "connected",
      } satisfies RedisNodeInfo;
    });
}

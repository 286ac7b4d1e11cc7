/**
 * Redis clients for rate limits and presence. They fail fast while Redis is away (no offline
 * queue, one try per command) so callers can fall back at once instead of waiting.
 *
 * One Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES, its seed nodes): createRedis
 * takes the config (or any object with both settings) and gives an ioredis `Redis` or `Cluster`,
 * or undefined when neither is set. A Cluster fails fast the same way: no offline queue on the
 * cluster client, one try per command on each node's connection, and a command for a slot whose
 * master is gone fails at once (the caller falls back) until the replica that takes over is found
 * by the slot refresh that the failure starts. Keys of one multi-key command or script must share
 * a hash tag (`{...}`), so they hash to one slot.
 */
import { Cluster, type ClusterNode, Redis, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

/** Where Redis is: PlatformConfig and PlatformConfig["ws"] both fit. */
export interface RedisSettings {
  redisUrl: string | undefined;
  redisClusterNodes: string[];
}

const NODE_OPTIONS = {
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  commandTimeout: 1_000,
} satisfies RedisOptions;

export function createRedis(url: string, name: string): Redis;
export function createRedis(settings: RedisSettings, name: string): RedisClient | undefined;
export function createRedis(target: string | RedisSettings, name: string): RedisClient | undefined {
  if (typeof target !== "string") {
    if (target.redisClusterNodes.length > 0) return createCluster(target.redisClusterNodes, name);
    if (!target.redisUrl) return undefined;
    target = target.redisUrl;
  }
  return new Redis(target, {
    ...NODE_OPTIONS,
    connectionName: name,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
}

function createCluster(seeds: string[], name: string): Cluster {
  const { nodes, auth } = clusterNodes(seeds);
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    // The cluster client reconnects to the seeds (all of them down), as one Redis client does.
    clusterRetryStrategy: (times) => Math.min(times * 200, 2_000),
    // A failed command for a slot (its master gone: "Connection is closed", or CLUSTERDOWN while
    // the cluster notices and promotes the replica) is retried once after this, not 16 times.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    maxRedirections: 3,
    slotsRefreshTimeout: 1_000,
    // The slot map is refreshed on a MOVED answer or a lost node, and this often besides.
    slotsRefreshInterval: 5_000,
    redisOptions: { ...NODE_OPTIONS, ...auth, connectionName: name },
  });
}

/**
 * REDIS_CLUSTER_NODES (host:port or redis:// URLs) as ioredis seed nodes. The user, password and
 * TLS of the first URL that has them apply to every node, which the cluster tells the client of.
 */
export function clusterNodes(seeds: string[]): { nodes: ClusterNode[]; auth: RedisOptions } {
  const auth: RedisOptions = {};
  const nodes = seeds.map((seed) => {
    if (!seed.includes("://")) {
      const at = seed.lastIndexOf(":");
      return { host: seed.slice(0, at), port: Number(seed.slice(at + 1)) };
    }
    const url = new URL(seed);
    if (url.password && auth.password === undefined) {
      auth.password = decodeURIComponent(url.password);
      if (url.username) auth.username = decodeURIComponent(url.username);
    }
    if (url.protocol === "rediss:") auth.tls ??= {};
    return { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port) || 6379 };
  });
  return { nodes, auth };
}

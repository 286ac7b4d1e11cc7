/**
 * Redis clients for rate limits and presence. They fail fast while Redis is away (no offline
 * queue, one try per command) so callers can fall back at once instead of waiting.
 */
import { Redis } from "ioredis";

export function createRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 1_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
}

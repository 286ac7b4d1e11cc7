/**
 * Fixed-window rate limits from rate-limiter-flexible: in memory on a lone node, in Redis when
 * REDIS_URL (or REDIS_CLUSTER_NODES: one key per limit and client, so a Redis Cluster serves it
 * as is) is set so every node of the cluster counts against the same budget. While Redis is
 * away each node falls back to its own in-memory limiter (the insurance limiter): limits stay on,
 * per node, rather than failing open (no limit) or closed (nobody can log in).
 *
 * Every refusal counts in social_rate_limit_rejections_total{limit="<name>"} of the node whose
 * service built the limit in its started() (lib/metrics.ts), or of the metrics given.
 */
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import type { Rate } from "./config.ts";
import { RateLimitedError } from "./errors.ts";
import { metricsInScope, type PlatformMetrics } from "./metrics.ts";
import type { RedisClient } from "./redis.ts";

export class RateLimit {
  private readonly limiter: RateLimiterAbstract;
  private readonly metrics: PlatformMetrics | undefined;
  private readonly labels: Readonly<{ limit: string }>;

  constructor(
    name: string,
    rate: Rate,
    redis: RedisClient | undefined,
    namespace: string,
    metrics: PlatformMetrics | undefined = metricsInScope(),
  ) {
    this.metrics = metrics;
    this.labels = Object.freeze({ limit: name });
    const options = { keyPrefix: `${namespace}:rl:${name}`, points: rate.points, duration: rate.duration };
    this.limiter = redis
      ? new RateLimiterRedis({
          ...options,
          storeClient: redis,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new RateLimiterMemory(options),
        })
      : new RateLimiterMemory(options);
  }

  /** Counts one hit for the key; throws RateLimitedError (429) when the budget is spent. */
  async consume(key: string, points = 1): Promise<void> {
    try {
      await this.limiter.consume(key, points);
    } catch (res) {
      if (res instanceof RateLimiterRes) throw this.refused(res.msBeforeNext);
      throw res;
    }
  }

  /** Throws RateLimitedError when the key's budget is already spent, without counting a hit. */
  async check(key: string): Promise<void> {
    const res = await this.limiter.get(key);
    if (res && res.remainingPoints <= 0) throw this.refused(res.msBeforeNext);
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(key);
  }

  private refused(msBeforeNext: number): RateLimitedError {
    this.metrics?.rateLimitRejections.increment(this.labels);
    return new RateLimitedError(msBeforeNext / 1000);
  }
}

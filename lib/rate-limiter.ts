/**
 * Fixed-window rate limits from rate-limiter-flexible: in memory on a lone node, in Redis when
 * REDIS_URL is set so every node of the cluster counts against the same budget. While Redis is
 * away each node falls back to its own in-memory limiter (the insurance limiter): limits stay on,
 * per node, rather than failing open (no limit) or closed (nobody can log in).
 */
import type { Redis } from "ioredis";
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import type { Rate } from "./config.ts";
import { RateLimitedError } from "./errors.ts";

export class RateLimit {
  private readonly limiter: RateLimiterAbstract;

  constructor(name: string, rate: Rate, redis: Redis | undefined, namespace: string) {
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
      if (res instanceof RateLimiterRes) throw new RateLimitedError(res.msBeforeNext / 1000);
      throw res;
    }
  }

  /** Throws RateLimitedError when the key's budget is already spent, without counting a hit. */
  async check(key: string): Promise<void> {
    const res = await this.limiter.get(key);
    if (res && res.remainingPoints <= 0) throw new RateLimitedError(res.msBeforeNext / 1000);
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(key);
  }
}

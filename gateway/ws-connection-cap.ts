/**
 * The cap on each user's WebSocket connections (WS_MAX_CONNECTIONS_PER_USER): counted across the
 * cluster in Redis when REDIS_URL (or REDIS_CLUSTER_NODES) is set, on this gateway alone otherwise.
 *
 * In Redis each user has a hash `{<ns>:ws}:conns:<userId>`, one field per gateway process holding
 * how many of the user's sockets that process has. The field is named by a random id of the
 * process, not its node id, so a gateway restarted under the same node id does not inherit the
 * count of the one that died. Gateways keep themselves alive in the sorted set `{<ns>:ws}:gateways`
 * (score: when, by Redis's clock, their entry lapses), renewed every RENEW_MS; the field of a
 * process whose entry lapsed does not count and is deleted when next seen. A gateway killed with
 * SIGKILL therefore stops counting at most ALIVE_TTL_MS after its last renewal: the bus's heartbeat
 * timeout (broker.config.ts), when the other nodes take it for dead too. One that stops cleanly
 * removes its entry at once.
 *
 * A gateway writes its own count of a user as a value, not an increment, one change of a user at a
 * time, so a write lost while Redis was away is put right by the next one. The renewal rewrites the
 * users whose write failed, and every user once an hour or when Redis had lost this gateway's entry
 * (restarted empty). While Redis is away a gateway admits by its own count alone.
 *
 * Every key starts with the hash tag `{<ns>:ws}`: in a Redis Cluster only the tag is hashed, so
 * all of them live in one slot. The acquire script reads a user's hash and the gateways' set
 * together, and a script (or MULTI) may only touch keys of one slot (CROSSSLOT otherwise); the
 * gateways' set is one for all users, so every user's hash goes into its slot. That puts the
 * connection counts on one master of the cluster (a small load: one script per socket opened or
 * closed); while that master fails over, gateways count their own, as with one Redis away. The
 * tag names other keys than the untagged ones of before: gateways of both versions running at
 * once count apart until the old ones are gone (old keys lapse unwritten after USER_TTL_MS).
 */
import { randomUUID } from "node:crypto";
import { createRedis, type RedisClient } from "../lib/redis.ts";

/** How long a gateway's entry lives without renewal: the bus's heartbeat timeout. */
export const ALIVE_TTL_MS = 15_000;
/** How often a live gateway renews it: the bus's heartbeat interval. */
export const RENEW_MS = 5_000;
/** How often every user's count is written again, and how long a user's hash lives unwritten. */
const REWRITE_ALL_MS = 3_600_000;
const USER_TTL_MS = 3 * REWRITE_ALL_MS;
/** Users rewritten at once. */
const REWRITE_BATCH = 500;

export interface ConnectionCounter {
  /** Takes a place for one more socket of the user; false when the user is at the cap. */
  acquire(userId: string): Promise<boolean>;
  /** Gives back a place taken by acquire. */
  release(userId: string): void;
  stop(): Promise<void>;
}

export function connectionCounter(options: {
  max: number;
  redisUrl: string | undefined;
  /** REDIS_CLUSTER_NODES: count in that Redis Cluster instead. */
  redisClusterNodes?: string[] | undefined;
  namespace: string;
  onError?: (err: Error) => void;
}): ConnectionCounter {
  const redis = createRedis(
    { redisUrl: options.redisUrl, redisClusterNodes: options.redisClusterNodes ?? [] },
    "gateway-ws-connections",
  );
  return redis
    ? new RedisConnectionCounter(options.max, redis, {
        namespace: options.namespace,
        onError: options.onError,
      })
    : new LocalConnectionCounter(options.max);
}

/** One gateway's count of each user's sockets. */
export class LocalConnectionCounter implements ConnectionCounter {
  protected readonly max: number;
  protected readonly counts = new Map<string, number>();

  constructor(max: number) {
    this.max = max;
  }

  acquire(userId: string): Promise<boolean> {
    const count = (this.counts.get(userId) ?? 0) + 1;
    if (count > this.max) return Promise.resolve(false);
    this.counts.set(userId, count);
    return Promise.resolve(true);
  }

  release(userId: string): void {
    this.lower(userId);
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  /** One socket fewer; resolves the user's count after. */
  protected lower(userId: string): number {
    const count = Math.max(0, (this.counts.get(userId) ?? 0) - 1);
    if (count === 0) this.counts.delete(userId);
    else this.counts.set(userId, count);
    return count;
  }
}

/**
 * KEYS: the user's hash, the gateways' set. ARGV: this process, its count of the user with the new
 * socket, the cap, ALIVE_TTL_MS, USER_TTL_MS. Answers {admitted, whether this process had no entry}.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fresh = redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
local total = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local lapses = redis.call('ZSCORE', KEYS[2], fields[i])
    if lapses and tonumber(lapses) > now then
      total = total + tonumber(fields[i + 1])
    else
      redis.call('HDEL', KEYS[1], fields[i])
    end
  end
end
if total > tonumber(ARGV[3]) then return {0, fresh} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, fresh}
`;

/** KEYS: the gateways' set. ARGV: this process, ALIVE_TTL_MS. Answers 1 when it had no entry. */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
`;

interface Scripts {
  wsAcquire(
    userKey: string,
    gatewaysKey: string,
    instance: string,
    count: number,
    max: number,
    aliveTtlMs: number,
    userTtlMs: number,
  ): Promise<[number, number]>;
  wsRenew(gatewaysKey: string, instance: string, aliveTtlMs: number): Promise<number>;
}

export class RedisConnectionCounter extends LocalConnectionCounter {
  /** This process's name in Redis. */
  readonly instance = randomUUID();
  private readonly redis: RedisClient & Scripts;
  private readonly prefix: string;
  private readonly gatewaysKey: string;
  private readonly onError: ((err: Error) => void) | undefined;
  /** Each user's changes, one at a time. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Users whose count in Redis may be wrong (a write failed). */
  private readonly dirty = new Set<string>();
  private rewriteAllDue = true;
  private rewroteAllAt = 0;
  private renewing: Promise<void> | undefined;
  private stopped = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    max: number,
    redis: RedisClient,
    options: { namespace: string; onError?: ((err: Error) => void) | undefined },
  ) {
    super(max);
    this.redis = redis as RedisClient & Scripts;
    this.redis.defineCommand("wsAcquire", { numberOfKeys: 2, lua: ACQUIRE });
    this.redis.defineCommand("wsRenew", { numberOfKeys: 1, lua: RENEW });
    // One hash tag for every key the scripts touch together (see the header).
    this.prefix = `{${options.namespace}:ws}:conns:`;
    this.gatewaysKey = `{${options.namespace}:ws}:gateways`;
    this.onError = options.onError;
    this.timer = setInterval(() => void this.renew(), RENEW_MS);
    this.timer.unref();
  }

  override acquire(userId: string): Promise<boolean> {
    return this.serial(userId, async () => {
      const count = (this.counts.get(userId) ?? 0) + 1;
      if (count > this.max) return false;
      let admitted = true;
      try {
        const [ok, fresh] = await this.redis.wsAcquire(
          this.prefix + userId,
          this.gatewaysKey,
          this.instance,
          count,
          this.max,
          ALIVE_TTL_MS,
          USER_TTL_MS,
        );
        admitted = ok === 1;
        if (fresh === 1) this.rewriteAllDue = true;
        if (admitted) this.dirty.delete(userId);
      } catch (err) {
        this.failed(userId, err);
      }
      if (admitted) this.counts.set(userId, count);
      return admitted;
    });
  }

  override release(userId: string): void {
    void this.serial(userId, async () => {
      const count = this.lower(userId);
      // After stop() this process counts nowhere: its entry is gone.
      if (this.stopped) return;
      try {
        await this.write(userId, count);
        this.dirty.delete(userId);
      } catch (err) {
        this.failed(userId, err);
      }
    });
  }

  /** Takes this gateway out of the count at once, then closes the client. */
  override async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.chains.values()]);
    await this.redis.zrem(this.gatewaysKey, this.instance).catch(() => undefined);
    this.redis.disconnect();
  }

  /** Keeps this gateway's entry alive, and rewrites the counts that may be wrong in Redis. */
  renew(): Promise<void> {
    this.renewing ??= (async () => {
      try {
        if ((await this.redis.wsRenew(this.gatewaysKey, this.instance, ALIVE_TTL_MS)) === 1) {
          this.rewriteAllDue = true;
        }
        if (Date.now() - this.rewroteAllAt > REWRITE_ALL_MS) this.rewriteAllDue = true;
        const all = this.rewriteAllDue;
        this.rewriteAllDue = false;
        if (all) this.rewroteAllAt = Date.now();
        const users = all ? new Set([...this.counts.keys(), ...this.dirty]) : new Set(this.dirty);
        await this.rewrite([...users]);
      } catch (err) {
        this.onError?.(err as Error);
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  private async rewrite(users: string[]): Promise<void> {
    for (let i = 0; i < users.length; i += REWRITE_BATCH) {
      await Promise.all(
        users.slice(i, i + REWRITE_BATCH).map((userId) =>
          this.serial(userId, async () => {
            try {
              await this.write(userId, this.counts.get(userId) ?? 0);
              this.dirty.delete(userId);
            } catch (err) {
              this.failed(userId, err);
            }
          }),
        ),
      );
    }
  }

  /** Sets this gateway's count of the user in Redis. */
  private async write(userId: string, count: number): Promise<void> {
    const key = this.prefix + userId;
    const multi = this.redis.multi();
    if (count > 0) multi.hset(key, this.instance, count).pexpire(key, USER_TTL_MS);
    else multi.hdel(key, this.instance);
    const results = await multi.exec();
    const failed = results?.find(([err]) => err)?.[0];
    if (!results || failed) throw failed ?? new Error("The Redis transaction was discarded");
  }

  private failed(userId: string, err: unknown): void {
    this.dirty.add(userId);
    this.onError?.(err as Error);
  }

  /** Runs fn after every change of the user queued before it. */
  private serial<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.chains.get(userId) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => undefined);
    this.chains.set(userId, tail);
    void tail.then(() => {
      if (this.chains.get(userId) === tail) this.chains.delete(userId);
    });
    return run;
  }
}

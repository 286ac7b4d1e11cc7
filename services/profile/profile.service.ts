/**
 * The profile service: public profiles, the owner's own view, username lookup and prefix search.
 *
 * A read is one action call. Its record comes from two cache levels: an in-process LRU of each
 * profile node (PROFILE_LOCAL_CACHE_TTL_S, a few seconds), then Moleculer's cacher (Redis when
 * REDIS_URL is set, shared by every node), then the store. Every change drops the record from
 * the shared cacher and, through the `profile.cache.clean` broadcast, from every node's local
 * cache (Moleculer's documented pattern for clearing caches across nodes); a node that missed a
 * broadcast (the bus was down) serves the old record for at most the local lifetime.
 */
import { type Context, Service, type ServiceBroker } from "moleculer";
import {
  broadcast,
  type CallMeta,
  type OwnProfile,
  PARAMS,
  type PublicProfile,
} from "../../lib/contracts.ts";
import { NotFoundError, UnauthorizedError, ValidationFailedError } from "../../lib/errors.ts";
import { LocalCache } from "../../lib/local-cache.ts";
import { type PlatformMetrics, platformMetrics } from "../../lib/metrics.ts";
import { platformConfig } from "../../lib/platform.ts";
import { openStore } from "../../lib/store/index.ts";
import type { Store } from "../../lib/store/types.ts";
import { type Profile, type ProfileChanges, ProfilesRepository } from "./profiles.repo.ts";

type Ctx<P = Record<string, never>> = Context<P, CallMeta>;

/** The cacher's own key builder, so dropped keys are exactly the ones it stored. */
interface CacheKeys {
  getCacheKey(action: { name: string }, opts: { keys: string[] }, ctx: { params: { id: string } }): string;
}

/** The name the shared cacher's keys are built under (kept from when records had an action of their own). */
const RECORD_KEY_NAME = "profile.record";
const DEFAULT_PAGE = 20;
/** Records held by one node's local cache at most. */
const LOCAL_CACHE_MAX = 10_000;

/** The stored record as cached: plain JSON, so the Redis cacher round-trips it. */
interface ProfileRecord extends Omit<Profile, "createdAt" | "updatedAt"> {
  createdAt: string;
  updatedAt: string;
}

export default class ProfileService extends Service {
  private store!: Store;
  private profiles!: ProfilesRepository;
  private readonly local: LocalCache<ProfileRecord>;
  private readonly metrics: PlatformMetrics | undefined;
  private readonly sharedTtlS: number;

  constructor(broker: ServiceBroker) {
    super(broker);
    const config = platformConfig(broker);
    this.sharedTtlS = config.profileCacheTtlS;
    this.local = new LocalCache({ ttlMs: config.profileLocalCacheTtlS * 1000, max: LOCAL_CACHE_MAX });
    this.metrics = platformMetrics(broker);
    this.parseServiceSchema({
      name: "profile",
      settings: {},
      actions: {
        create: {
          params: {
            $$strict: true,
            id: "string|min:1|max:64",
            email: "string|max:254",
            username: "string|min:1|max:32",
            displayName: "string|min:1|max:64",
            // The account's creation time (auth), so register and GET /users/me answer the same one.
            createdAt: { type: "string", optional: true, pattern: "^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$" },
          },
          handler: async (
            ctx: Ctx<{
              id: string;
              email: string;
              username: string;
              displayName: string;
              createdAt?: string;
            }>,
          ) => toOwn(toRecord(await this.profiles.create(ctx.params))),
        },
        remove: {
          params: { $$strict: true, id: "string|min:1|max:64" },
          handler: async (ctx: Ctx<{ id: string }>) => {
            const removed = (await this.profiles.remove(ctx.params.id)) > 0;
            await this.dropCached([ctx.params.id]);
            return { removed };
          },
        },
        // Called by the auth service when an address is verified or changed.
        setEmail: {
          visibility: "public",
          params: PARAMS["profile.setEmail"],
          handler: async (ctx: Ctx<{ id: string; email: string; emailVerified: boolean }>) => {
            await this.profiles.setEmail(ctx.params.id, ctx.params.email, ctx.params.emailVerified);
            await this.dropCached([ctx.params.id]);
            return null;
          },
        },
        // Called by the auth service's account deletion; repeating it changes nothing.
        erase: {
          visibility: "public",
          params: PARAMS["profile.erase"],
          handler: async (ctx: Ctx<{ id: string }>) => {
            await this.profiles.erase(ctx.params.id);
            await this.dropCached([ctx.params.id]);
            return null;
          },
        },
        me: {
          params: PARAMS["profile.me"],
          handler: async (ctx: Ctx) => toOwn(await this.record(userIdOf(ctx))),
        },
        update: {
          params: PARAMS["profile.update"],
          handler: async (ctx: Ctx<ProfileChanges>) => {
            const id = userIdOf(ctx);
            const changes = validChanges(ctx.params);
            const updated = await this.profiles.update(id, changes);
            if (!updated) throw new NotFoundError("User", "USER_NOT_FOUND");
            await this.dropCached([id]);
            return toOwn(toRecord(updated));
          },
        },
        get: {
          params: PARAMS["profile.get"],
          handler: async (ctx: Ctx<{ id: string }>) => toPublic(await this.record(ctx.params.id)),
        },
        // The public profiles of many users at once (the chat service's block list); unknown ids are left out.
        getMany: {
          params: PARAMS["profile.getMany"],
          handler: async (ctx: Ctx<{ ids: string[] }>) => {
            const found = await Promise.all(
              [...new Set(ctx.params.ids)].map((id) =>
                this.record(id).then(toPublic, (err: { code?: number }) => {
                  if (err.code === 404) return null;
                  throw err;
                }),
              ),
            );
            return { profiles: found.filter((p) => p !== null) };
          },
        },
        byUsername: {
          params: PARAMS["profile.byUsername"],
          handler: async (ctx: Ctx<{ username: string }>) => {
            const profile = await this.profiles.findByUsername(ctx.params.username);
            if (!profile) throw new NotFoundError("User", "USER_NOT_FOUND");
            return toPublic(await this.record(profile._id));
          },
        },
        search: {
          params: PARAMS["profile.search"],
          handler: async (ctx: Ctx<{ q: string; limit?: number; cursor?: string }>) => {
            const limit = ctx.params.limit ?? DEFAULT_PAGE;
            const after = ctx.params.cursor ? decodeCursor(ctx.params.cursor) : undefined;
            const found = await this.profiles.searchByPrefix(ctx.params.q, after, limit + 1);
            // A deleted account's username (`~id`) is no name to find anyone by.
            const page = found.slice(0, limit);
            const last = page.at(-1);
            return {
              users: page.filter((p) => !p.deleted).map((p) => toPublic(toRecord(p))),
              nextCursor: found.length > limit && last ? encodeCursor(last.usernameLower) : null,
            };
          },
        },
        ready: {
          handler: async () => {
            await this.store.ping();
            return { ok: true };
          },
        },
      },
      events: {
        "profile.cache.clean": {
          handler: (ctx: Context<{ ids: string[] }>) => this.dropLocal(ctx.params.ids),
        },
      },
      started: () => this.start(),
      stopped: () => this.store?.close(),
    });
  }

  private async start(): Promise<void> {
    const config = platformConfig(this.broker);
    this.store = await openStore(config, this.logger);
    this.profiles = new ProfilesRepository(this.store.collection("profiles"));
    await this.profiles.init();
  }

  /** The record of a profile: from this node's cache, else the shared cacher, else the store. */
  private async record(id: string): Promise<ProfileRecord> {
    if (this.local.enabled) {
      const cached = this.local.get(id);
      this.metrics?.profileLocalLookup(cached !== undefined);
      if (cached) return cached;
    }
    // A record read before a drop (from the shared cacher or the store) is not cached after it.
    const mark = this.local.mark();
    // As Moleculer's cache middleware does, a cacher that lost its server is passed by: reads go
    // to the store, and a failed write to the cache does not fail the read.
    const cacher = this.broker.cacher?.connected === false ? undefined : this.broker.cacher;
    const key = cacher ? this.sharedKey(id) : "";
    // A read the cacher fails (a Redis Cluster master gone, until its replica takes over) is a miss.
    let record = cacher ? ((await cacher.get(key).catch(() => null)) as ProfileRecord | null) : null;
    if (!record) {
      const profile = await this.profiles.findById(id);
      if (!profile) throw new NotFoundError("User", "USER_NOT_FOUND");
      record = toRecord(profile);
      if (cacher && this.local.unchanged(mark)) {
        cacher.set(key, record, this.sharedTtlS).catch((err: Error) => {
          this.logger.debug("A profile record was not cached", err.message);
        });
      }
    }
    this.local.set(id, record, mark);
    return record;
  }

  private sharedKey(id: string): string {
    return (this.broker.cacher as unknown as CacheKeys).getCacheKey(
      { name: RECORD_KEY_NAME },
      { keys: ["id"] },
      { params: { id } },
    );
  }

  /** Drops the cached records here and, through the broadcast, on every other node. */
  private async dropCached(ids: string[]): Promise<void> {
    await this.dropLocal(ids);
    await broadcast(this.broker, "profile.cache.clean", { ids });
  }

  /** Drops the records from this node's cache and from the shared cacher. */
  private async dropLocal(ids: string[]): Promise<void> {
    this.local.drop(ids);
    const cacher = this.broker.cacher;
    // One key per DEL: in a Redis Cluster the keys of one command must share a slot.
    if (cacher) await Promise.all(ids.map((id) => cacher.del(this.sharedKey(id))));
  }
}

function userIdOf(ctx: Ctx<unknown>): string {
  if (!ctx.meta.user) throw new UnauthorizedError();
  return ctx.meta.user.id;
}

function validChanges(params: ProfileChanges): ProfileChanges {
  const changes: ProfileChanges = {};
  if (params.displayName !== undefined) changes.displayName = params.displayName;
  if (params.bio !== undefined) changes.bio = params.bio === null ? null : params.bio.trim();
  if (params.avatarUrl !== undefined) {
    if (params.avatarUrl !== null && !isHttpsUrl(params.avatarUrl)) {
      throw new ValidationFailedError([
        { field: "avatarUrl", type: "url", message: "avatarUrl must be an https URL" },
      ]);
    }
    changes.avatarUrl = params.avatarUrl;
  }
  if (Object.keys(changes).length === 0) {
    throw new ValidationFailedError([
      { field: "displayName", type: "required", message: "Give at least one of displayName, bio, avatarUrl" },
    ]);
  }
  return changes;
}

function isHttpsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "https:" && url.hostname.length > 0 && !url.username && !url.password;
  } catch {
    return false;
  }
}

function encodeCursor(usernameLower: string): string {
  return Buffer.from(usernameLower, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  const value = Buffer.from(cursor, "base64url").toString("utf8");
  if (!/^[a-z0-9_]{1,32}$/.test(value)) {
    throw new ValidationFailedError([{ field: "cursor", type: "cursor", message: "Invalid cursor" }]);
  }
  return value;
}

function toRecord(p: Profile): ProfileRecord {
  return { ...p, createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString() };
}

function toPublic(r: ProfileRecord): PublicProfile {
  const view: PublicProfile = {
    id: r._id,
    username: r.username,
    displayName: r.displayName,
    bio: r.bio,
    avatarUrl: r.avatarUrl,
    createdAt: r.createdAt,
  };
  if (r.deleted) view.deleted = true;
  return view;
}

function toOwn(r: ProfileRecord): OwnProfile {
  return { ...toPublic(r), email: r.email, emailVerified: r.emailVerified === true, updatedAt: r.updatedAt };
}

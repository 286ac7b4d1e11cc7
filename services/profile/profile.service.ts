/**
 * The profile service: public profiles, the owner's own view, username lookup and prefix search.
 * Reads go through Moleculer's cacher (`profile.record`, keyed by id); every change drops the
 * cached record on every node through the `profile.cache.clean` broadcast.
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
import { platformConfig } from "../../lib/platform.ts";
import { openStore } from "../../lib/store/index.ts";
import type { Store } from "../../lib/store/types.ts";
import { type Profile, type ProfileChanges, ProfilesRepository } from "./profiles.repo.ts";

type Ctx<P = Record<string, never>> = Context<P, CallMeta>;

/** The cacher's own key builder, so dropped keys are exactly the ones it stored. */
interface CacheKeys {
  getCacheKey(action: { name: string }, opts: { keys: string[] }, ctx: { params: { id: string } }): string;
}

const RECORD_ACTION = "profile.record";
const DEFAULT_PAGE = 20;

/** The stored record as cached: plain JSON, so the Redis cacher round-trips it. */
interface ProfileRecord extends Omit<Profile, "createdAt" | "updatedAt"> {
  createdAt: string;
  updatedAt: string;
}

export default class ProfileService extends Service {
  private store!: Store;
  private profiles!: ProfilesRepository;

  constructor(broker: ServiceBroker) {
    super(broker);
    const config = platformConfig(broker);
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
          },
          handler: async (ctx: Ctx<{ id: string; email: string; username: string; displayName: string }>) =>
            toOwn(toRecord(await this.profiles.create(ctx.params))),
        },
        remove: {
          params: { $$strict: true, id: "string|min:1|max:64" },
          handler: async (ctx: Ctx<{ id: string }>) => {
            const removed = (await this.profiles.remove(ctx.params.id)) > 0;
            await this.dropCached([ctx.params.id]);
            return { removed };
          },
        },
        record: {
          visibility: "protected",
          cache: { keys: ["id"], ttl: config.profileCacheTtlS },
          params: { id: "string|min:1|max:64" },
          handler: async (ctx: Ctx<{ id: string }>): Promise<ProfileRecord> => {
            const profile = await this.profiles.findById(ctx.params.id);
            if (!profile) throw new NotFoundError("User", "USER_NOT_FOUND");
            return toRecord(profile);
          },
        },
        me: {
          params: PARAMS["profile.me"],
          handler: async (ctx: Ctx) => toOwn(await this.record(ctx, userIdOf(ctx))),
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
          handler: async (ctx: Ctx<{ id: string }>) => toPublic(await this.record(ctx, ctx.params.id)),
        },
        byUsername: {
          params: PARAMS["profile.byUsername"],
          handler: async (ctx: Ctx<{ username: string }>) => {
            const profile = await this.profiles.findByUsername(ctx.params.username);
            if (!profile) throw new NotFoundError("User", "USER_NOT_FOUND");
            return toPublic(await this.record(ctx, profile._id));
          },
        },
        search: {
          params: PARAMS["profile.search"],
          handler: async (ctx: Ctx<{ q: string; limit?: number; cursor?: string }>) => {
            const limit = ctx.params.limit ?? DEFAULT_PAGE;
            const after = ctx.params.cursor ? decodeCursor(ctx.params.cursor) : undefined;
            const found = await this.profiles.searchByPrefix(ctx.params.q, after, limit + 1);
            const page = found.slice(0, limit);
            const last = page.at(-1);
            return {
              users: page.map((p) => toPublic(toRecord(p))),
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
    this.store = await openStore({ mongoUrl: config.mongoUrl, dataDir: config.dataDir });
    this.profiles = new ProfilesRepository(this.store.collection("profiles"));
    await this.profiles.init();
  }

  private record(ctx: Ctx<unknown>, id: string): Promise<ProfileRecord> {
    return ctx.call(RECORD_ACTION, { id });
  }

  /** Drops the cached records here and, through the broadcast, on every other node. */
  private async dropCached(ids: string[]): Promise<void> {
    await this.dropLocal(ids);
    await broadcast(this.broker, "profile.cache.clean", { ids });
  }

  private async dropLocal(ids: string[]): Promise<void> {
    const cacher = this.broker.cacher;
    if (!cacher) return;
    const keyOf = (id: string) =>
      (cacher as unknown as CacheKeys).getCacheKey(
        { name: RECORD_ACTION },
        { keys: ["id"] },
        { params: { id } },
      );
    await cacher.del(ids.map(keyOf));
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
  return {
    id: r._id,
    username: r.username,
    displayName: r.displayName,
    bio: r.bio,
    avatarUrl: r.avatarUrl,
    createdAt: r.createdAt,
  };
}

function toOwn(r: ProfileRecord): OwnProfile {
  return { ...toPublic(r), email: r.email, updatedAt: r.updatedAt };
}

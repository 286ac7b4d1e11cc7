/**
 * The gateway's copy of the public profiles it read from another node (`profile.get`, behind
 * `GET /users/:id`): a hit answers without a round trip over the bus. It keeps them as the profile
 * node keeps its records (lib/local-cache.ts): for PROFILE_LOCAL_CACHE_TTL_S at most, dropped when
 * the `profile.cache.clean` broadcast says a profile changed, and a read that a drop overtook is
 * not kept. A Moleculer middleware on the remote action: a `profile.get` served by this node's own
 * profile service (the embedded default) is left to that service's cache.
 *
 * Only a call whose params are exactly `{ id }`, addressed to no node in particular, is answered
 * here, and only with what such a call answered before: the profile node's validator has seen those
 * params, so anything it would refuse (another field, an id of the wrong shape) still goes to it and
 * gets its error.
 */
import type { Context, Middleware } from "moleculer";
import type { PublicProfile } from "../lib/contracts.ts";
import { LocalCache } from "../lib/local-cache.ts";

const ACTION = "profile.get";
/** Profiles a gateway keeps at most (the profile node's own cache keeps as many). */
const MAX = 10_000;

export class PublicProfiles {
  readonly #cache: LocalCache<PublicProfile>;
  readonly #onLookup: ((hit: boolean) => void) | undefined;

  constructor(options: { ttlMs: number; onLookup?: (hit: boolean) => void }) {
    this.#cache = new LocalCache({ ttlMs: options.ttlMs, max: MAX });
    this.#onLookup = options.onLookup;
  }

  /** Drops the profiles a `profile.cache.clean` broadcast names. */
  drop(ids: Iterable<string>): void {
    this.#cache.drop(ids);
  }

  /** The middleware to add to the gateway's broker before the profile nodes are discovered. */
  middleware(): Middleware {
    return {
      name: "GatewayPublicProfiles",
      remoteAction: (next: (ctx: Context) => Promise<unknown>, action: { name: string }) => {
        if (!this.#cache.enabled || action.name !== ACTION) return next;
        return (ctx: Context) => {
          // A call addressed to one node asks that node.
          const id = ctx.options?.nodeID === undefined ? idOnly(ctx.params) : undefined;
          if (id === undefined) return next(ctx);
          const cached = this.#cache.get(id);
          this.#onLookup?.(cached !== undefined);
          if (cached) return Promise.resolve(cached);
          const mark = this.#cache.mark();
          return next(ctx).then((profile) => {
            this.#cache.set(id, profile as PublicProfile, mark);
            return profile;
          });
        };
      },
    } as unknown as Middleware;
  }
}

/** The id of params that hold it and nothing else. */
function idOnly(params: unknown): string | undefined {
  if (typeof params !== "object" || params === null) return undefined;
  const keys = Object.keys(params);
  if (keys.length !== 1 || keys[0] !== "id") return undefined;
  const id = (params as { id: unknown }).id;
  return typeof id === "string" ? id : undefined;
}

/**
 * Who is on the other side of a block with whom, for the frequent checks (sends into direct chats,
 * typing, presence): each user's set is read once and kept for the member cache's lifetime, and a
 * block or unblock drops both users' sets here and, through `chat.blocks.changed`, on every chat
 * node. A node that missed that broadcast uses the old set for at most the cache's lifetime.
 */
import { LocalCache } from "../../lib/local-cache.ts";
import type { BlocksRepository } from "./blocks.repo.ts";

const CACHED_USERS = 10_000;

export class BlockList {
  private readonly repo: BlocksRepository;
  private readonly cache: LocalCache<{ users: Set<string> }>;

  constructor(repo: BlocksRepository, ttlMs: number) {
    this.repo = repo;
    this.cache = new LocalCache({ ttlMs, max: CACHED_USERS });
  }

  /** Everyone the user blocks or is blocked by. */
  async relatedTo(userId: string): Promise<Set<string>> {
    return (await this.relatedToEach([userId])).get(userId) ?? new Set();
  }

  /** The same for many users, reading those not cached in one go. */
  async relatedToEach(userIds: string[]): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    const missing: string[] = [];
    for (const id of new Set(userIds)) {
      const hit = this.cache.get(id);
      if (hit) out.set(id, hit.users);
      else missing.push(id);
    }
    if (missing.length > 0) {
      const mark = this.cache.mark();
      for (const [id, users] of await this.repo.relatedOfEach(missing)) {
        this.cache.set(id, { users }, mark);
        out.set(id, users);
      }
    }
    return out;
  }

  /** Whether a block stands between the two, either way. */
  async between(a: string, b: string): Promise<boolean> {
    return (await this.relatedTo(a)).has(b);
  }

  forget(userIds: Iterable<string>): void {
    this.cache.drop(userIds);
  }
}

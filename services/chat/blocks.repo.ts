import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** `blockerId` blocks `blockedId`; `_id` is `blockerId|blockedId`. */
export interface Block {
  _id: string;
  blockerId: string;
  blockedId: string;
  createdAt: Date;
  updatedAt: Date;
}

/** Blocks a user makes at most; more is refused (422). */
export const MAX_BLOCKS = 1_000;

export class BlocksRepository extends BaseRepository<Block> {
  indexes(): IndexSpec[] {
    return [
      { name: "blocker_time", fields: { blockerId: 1, createdAt: -1 } },
      { name: "blocked", fields: { blockedId: 1 } },
    ];
  }

  /** Resolves false when the block existed already. */
  add(blockerId: string, blockedId: string): Promise<boolean> {
    return this.insertIfNew({ _id: idOf(blockerId, blockedId), blockerId, blockedId });
  }

  async remove(blockerId: string, blockedId: string): Promise<boolean> {
    return (await this.collection.deleteOne({ _id: idOf(blockerId, blockedId) })) === 1;
  }

  /** Up to `limit` of the blocks the user made or that were made of them. */
  async involving(userId: string, limit: number): Promise<Block[]> {
    const made = await this.collection.find({ blockerId: userId }, { limit });
    if (made.length >= limit) return made;
    const received = await this.collection.find({ blockedId: userId }, { limit: limit - made.length });
    return [...made, ...received];
  }

  /** Deletes these blocks, in one request. */
  async removeIds(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.collection.deleteMany({ _id: { $in: ids } });
  }

  count(blockerId: string): Promise<number> {
    return this.collection.count({ blockerId });
  }

  /** Whom the user blocks, newest block first. */
  blockedBy(blockerId: string): Promise<Block[]> {
    return this.collection.find({ blockerId }, { sort: { createdAt: -1, _id: -1 }, limit: MAX_BLOCKS });
  }

  /**
   * For each user, everyone on the other side of a block with them (either way), in two queries
   * for all of them.
   */
  async relatedOfEach(userIds: string[]): Promise<Map<string, Set<string>>> {
    const related = new Map(userIds.map((id) => [id, new Set<string>()]));
    if (userIds.length === 0) return related;
    const [made, received] = await Promise.all([
      this.collection.find({ blockerId: { $in: userIds } }),
      this.collection.find({ blockedId: { $in: userIds } }),
    ]);
    for (const b of made) related.get(b.blockerId)?.add(b.blockedId);
    for (const b of received) related.get(b.blockedId)?.add(b.blockerId);
    return related;
  }
}

function idOf(blockerId: string, blockedId: string): string {
  return `${blockerId}|${blockedId}`;
}

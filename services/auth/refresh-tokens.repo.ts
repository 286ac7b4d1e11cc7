import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/**
 * Spent refresh tokens, kept (as their SHA-256, the `_id`) until their session would have expired,
 * so a token that comes back after it was rotated is recognised as reuse. A session's current
 * token is held by the session itself (sessions.repo.ts).
 *
 * A record without `usedAt` is a live token of a session made before sessions held their current
 * token; it is spent and moved into its session on its next use.
 */
export interface RefreshTokenRecord {
  _id: string;
  sessionId: string;
  userId: string;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date;
  usedAt?: Date;
}

export class RefreshTokensRepository extends BaseRepository<RefreshTokenRecord> {
  indexes(): IndexSpec[] {
    return [
      { name: "session", fields: { sessionId: 1 } },
      { name: "expires_ttl", fields: { expiresAt: 1 }, expireAfterSeconds: 0 },
    ];
  }

  find(hash: string): Promise<RefreshTokenRecord | null> {
    return this.collection.findOne({ _id: hash });
  }

  /** Records a token as spent; a second record of the same token (a concurrent refresh) is a no-op. */
  async recordSpent(record: Omit<RefreshTokenRecord, "createdAt" | "updatedAt">): Promise<void> {
    try {
      await this.collection.insertOne(this.stampNew(record) as RefreshTokenRecord);
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
    }
  }

  /** Compare-and-set on a live record of the older layout: exactly one caller spends it. */
  async spend(hash: string, now: Date): Promise<boolean> {
    const n = await this.collection.updateOne(
      { _id: hash, usedAt: { $exists: false } },
      this.stampUpdate({ $set: { usedAt: now } }),
    );
    return n === 1;
  }
}

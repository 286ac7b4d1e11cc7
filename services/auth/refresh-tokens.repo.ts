import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** Refresh tokens are stored only as their SHA-256 (the `_id`); the token itself is never kept. */
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

  insert(record: Omit<RefreshTokenRecord, "createdAt" | "updatedAt">): Promise<RefreshTokenRecord> {
    return this.collection.insertOne(this.stampNew(record) as RefreshTokenRecord);
  }

  find(hash: string): Promise<RefreshTokenRecord | null> {
    return this.collection.findOne({ _id: hash });
  }

  /** Compare-and-set: exactly one caller spends a given token. */
  async spend(hash: string, now: Date): Promise<boolean> {
    const n = await this.collection.updateOne(
      { _id: hash, usedAt: { $exists: false } },
      this.stampUpdate({ $set: { usedAt: now } }),
    );
    return n === 1;
  }
}

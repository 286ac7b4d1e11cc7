import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** A session is one refresh-token family: one login on one device. */
export interface Session {
  _id: string;
  userId: string;
  userAgent: string;
  ip: string;
  createdAt: Date;
  updatedAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  revokedAt?: Date;
}

export class SessionsRepository extends BaseRepository<Session> {
  indexes(): IndexSpec[] {
    return [
      { name: "user_sessions", fields: { userId: 1, createdAt: -1 } },
      { name: "revoked_at", fields: { revokedAt: 1 }, sparse: true },
      { name: "expires_ttl", fields: { expiresAt: 1 }, expireAfterSeconds: 0 },
    ];
  }

  create(session: Omit<Session, "createdAt" | "updatedAt">): Promise<Session> {
    return this.collection.insertOne(this.stampNew(session) as Session);
  }

  findLive(id: string, now: Date): Promise<Session | null> {
    return this.collection.findOne({ _id: id, revokedAt: { $exists: false }, expiresAt: { $gt: now } });
  }

  listLive(userId: string, now: Date): Promise<Session[]> {
    return this.collection.find(
      { userId, revokedAt: { $exists: false }, expiresAt: { $gt: now } },
      { sort: { createdAt: -1 }, limit: 200 },
    );
  }

  touch(id: string, now: Date): Promise<number> {
    return this.collection.updateOne({ _id: id }, this.stampUpdate({ $set: { lastUsedAt: now } }));
  }

  /** Revokes one session of a user; resolves whether it was live. */
  async revoke(userId: string, id: string, now: Date): Promise<boolean> {
    const n = await this.collection.updateOne(
      { _id: id, userId, revokedAt: { $exists: false } },
      this.stampUpdate({ $set: { revokedAt: now } }),
    );
    return n > 0;
  }

  /** Revokes every live session of a user; resolves their ids. */
  async revokeAll(userId: string, now: Date): Promise<string[]> {
    const live = await this.collection.find({ userId, revokedAt: { $exists: false } }, { limit: 10_000 });
    await this.collection.updateMany(
      { userId, revokedAt: { $exists: false } },
      this.stampUpdate({ $set: { revokedAt: now } }),
    );
    return live.map((s) => s._id);
  }

  revokedSince(since: Date): Promise<Session[]> {
    return this.collection.find({ revokedAt: { $gt: since } }, { limit: 100_000 });
  }
}

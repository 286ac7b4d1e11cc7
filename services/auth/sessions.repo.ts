import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec, Update } from "../../lib/store/types.ts";

/**
 * A session is one refresh-token family: one login on one device. It holds the SHA-256 of its
 * current refresh token, so signing in and refreshing write one document, not a session and a
 * token record (sessions made before this have none until their next refresh).
 *
 * `previous` is the token the last refresh spent and the pair it answered, sealed under that token
 * (refresh-successor.ts): a retry of that refresh within REFRESH_REUSE_GRACE_MS gets the same pair.
 * The next refresh replaces it, so a session holds at most one.
 */
export interface Session {
  _id: string;
  userId: string;
  tokenHash?: string;
  userAgent: string;
  ip: string;
  createdAt: Date;
  updatedAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  revokedAt?: Date;
  previous?: PreviousToken;
}

export interface PreviousToken {
  tokenHash: string;
  sealedPair: string;
  rotatedAt: Date;
}

export class SessionsRepository extends BaseRepository<Session> {
  indexes(): IndexSpec[] {
    return [
      { name: "user_sessions", fields: { userId: 1, createdAt: -1 } },
      { name: "token_hash", fields: { tokenHash: 1 }, sparse: true },
      { name: "revoked_at", fields: { revokedAt: 1 }, sparse: true },
      { name: "expires_ttl", fields: { expiresAt: 1 }, expireAfterSeconds: 0 },
    ];
  }

  create(session: Omit<Session, "createdAt" | "updatedAt">): Promise<Session> {
    return this.collection.insertOne(this.stampNew(session) as Session);
  }

  /** The session whose current refresh token this is (live or not). */
  findByToken(tokenHash: string): Promise<Session | null> {
    return this.collection.findOne({ tokenHash });
  }

  /**
   * Compare-and-set of the current refresh token: exactly one of concurrent refreshes with the
   * same token moves it on, and records `previous` (or drops the last one). Resolves whether this
   * one did.
   */
  async rotate(
    id: string,
    from: string | undefined,
    to: string,
    now: Date,
    previous: PreviousToken | undefined,
  ): Promise<boolean> {
    const update: Update = previous
      ? { $set: { tokenHash: to, lastUsedAt: now, previous } }
      : { $set: { tokenHash: to, lastUsedAt: now }, $unset: { previous: true } };
    const n = await this.collection.updateOne(
      { _id: id, tokenHash: from === undefined ? { $exists: false } : from, revokedAt: { $exists: false } },
      this.stampUpdate(update),
    );
    return n === 1;
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

  /** Revokes every live session of a user but one; resolves their ids. */
  async revokeOthers(userId: string, keepId: string, now: Date): Promise<string[]> {
    const live = await this.collection.find({ userId, revokedAt: { $exists: false } }, { limit: 10_000 });
    const others = live.filter((s) => s._id !== keepId).map((s) => s._id);
    if (others.length === 0) return [];
    await this.collection.updateMany(
      { _id: { $in: others }, userId, revokedAt: { $exists: false } },
      this.stampUpdate({ $set: { revokedAt: now } }),
    );
    return others;
  }

  revokedSince(since: Date): Promise<Session[]> {
    return this.collection.find({ revokedAt: { $gt: since } }, { limit: 100_000 });
  }
}

/**
 * Single-use tokens of the account flows: the links mailed for email verification, email change and
 * password reset. Only the SHA-256 of a
 * token is stored (its `_id`), so a copy of the store opens nothing. A token is spent by one
 * compare-and-set (`usedAt` not set, not expired), so two uses racing end with one winner.
 */
import { createHash, randomBytes } from "node:crypto";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

export type TokenKind = "verify" | "email" | "reset";

export interface MailedToken {
  _id: string;
  kind: TokenKind;
  userId: string;
  /** The address it was mailed to (verify: the account's; email: the new one). */
  email?: string;
  expiresAt: Date;
  usedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

/** 32 random bytes (256 bits), base64url: 43 characters. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export class MailedTokensRepository extends BaseRepository<MailedToken> {
  indexes(): IndexSpec[] {
    return [
      { name: "user_kind", fields: { userId: 1, kind: 1 } },
      { name: "expires_ttl", fields: { expiresAt: 1 }, expireAfterSeconds: 0 },
    ];
  }

  /** Stores a new token; answers the token itself, which only its mail or answer carries. */
  async issue(input: Omit<MailedToken, "_id" | "createdAt" | "updatedAt" | "expiresAt">, ttlS: number) {
    const token = newToken();
    await this.collection.insertOne(
      this.stampNew({
        ...input,
        _id: hashToken(token),
        expiresAt: new Date(Date.now() + ttlS * 1000),
      }) as MailedToken,
    );
    return token;
  }

  /** The live token of that kind, not spent. */
  findLive(token: string, kind: TokenKind, now = new Date()): Promise<MailedToken | null> {
    return this.collection.findOne({
      _id: hashToken(token),
      kind,
      usedAt: { $exists: false },
      expiresAt: { $gt: now },
    });
  }

  /** Spends the token; resolves whether this call did (once per token, whatever races it). */
  async spend(id: string, now = new Date()): Promise<boolean> {
    const n = await this.collection.updateOne(
      { _id: id, usedAt: { $exists: false }, expiresAt: { $gt: now } },
      this.stampUpdate({ $set: { usedAt: now } }),
    );
    return n === 1;
  }

  /** Spends every live token of a user of these kinds (a reset voids the other reset links). */
  async spendAll(userId: string, kinds: TokenKind[], now = new Date()): Promise<void> {
    for (const kind of kinds) {
      await this.collection.updateMany(
        { userId, kind, usedAt: { $exists: false } },
        this.stampUpdate({ $set: { usedAt: now } }),
      );
    }
  }
}

/**
 * Refresh-token rotation (RFC 9700, section 4.14.2): each refresh spends its token and answers a new
 * pair; a spent token that comes back means someone holds a copy, and the whole session (the token
 * family) is revoked.
 *
 * One repeat is forgiven: the token the session's last refresh spent, sent again within
 * REFRESH_REUSE_GRACE_MS (a client retrying a refresh whose answer it lost, or sending two at once),
 * gets the pair that refresh answered, sealed under that token on the session (refresh-successor.ts),
 * instead of a revocation. Any other spent token, or that one later, still revokes. The session's
 * document arbitrates, so this holds across auth nodes sharing the store.
 */
import { createHash, randomBytes } from "node:crypto";
import { InvalidRefreshTokenError } from "../../lib/errors.ts";
import { openPair, sealPair } from "./refresh-successor.ts";
import type { RefreshTokensRepository } from "./refresh-tokens.repo.ts";
import type { Session, SessionsRepository } from "./sessions.repo.ts";

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface RotationDeps {
  sessions: SessionsRepository;
  refreshTokens: RefreshTokensRepository;
  /** A fresh refresh token and an access token signed for the session. */
  newPair(userId: string, sessionId: string): Promise<TokenPair>;
  revokeFamily(userId: string, sessionId: string, now: Date): Promise<void>;
  /** How long the token a refresh spent may repeat that refresh; 0: never. */
  graceMs: number;
  accessTtlS: number;
}

export function hashRefreshToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** An opaque refresh token: 256 random bits. */
export function newRefreshToken(): string {
  return randomBytes(32).toString("base64url");
}

export class RefreshRotation {
  private readonly d: RotationDeps;

  constructor(deps: RotationDeps) {
    this.d = deps;
  }

  async refresh(refreshToken: string, now = new Date()): Promise<TokenPair> {
    const hash = hashRefreshToken(refreshToken);
    const session = await this.d.sessions.findByToken(hash);
    if (session) {
      if (session.revokedAt || session.expiresAt <= now) throw new InvalidRefreshTokenError();
      // Recorded as spent before it is rotated: a crash between leaves it current, and a retry
      // with it still works.
      await this.d.refreshTokens.recordSpent({
        _id: hash,
        sessionId: session._id,
        userId: session.userId,
        expiresAt: session.expiresAt,
        usedAt: now,
      });
      return this.rotate(session, refreshToken, hash, session.tokenHash, now);
    }
    const record = await this.d.refreshTokens.find(hash);
    if (!record || record.expiresAt <= now) throw new InvalidRefreshTokenError();
    if (record.usedAt) return this.repeat(record.userId, record.sessionId, refreshToken, hash, now);
    // A live token of the older layout: spent, then moved into its session; of concurrent
    // refreshes with it, the session's compare-and-set lets one through (rotate below).
    await this.d.refreshTokens.spend(hash, now);
    const legacy = await this.d.sessions.findLive(record.sessionId, now);
    if (!legacy) throw new InvalidRefreshTokenError();
    return this.rotate(legacy, refreshToken, hash, legacy.tokenHash, now);
  }

  /** Moves the session to a new refresh token; a concurrent refresh that won is a repeat. */
  private async rotate(
    session: Session,
    spent: string,
    spentHash: string,
    from: string | undefined,
    now: Date,
  ): Promise<TokenPair> {
    const pair = await this.d.newPair(session.userId, session._id);
    const previous =
      this.d.graceMs > 0
        ? {
            tokenHash: spentHash,
            sealedPair: sealPair(spent, { accessToken: pair.accessToken, refreshToken: pair.refreshToken }),
            rotatedAt: now,
          }
        : undefined;
    const to = hashRefreshToken(pair.refreshToken);
    if (await this.d.sessions.rotate(session._id, from, to, now, previous)) return pair;
    return this.repeat(session.userId, session._id, spent, spentHash, now);
  }

  /**
   * A spent token again: the same pair if it is the one the session's last refresh spent and that
   * was within the grace window; otherwise two parties hold the family, and it is revoked.
   */
  private async repeat(
    userId: string,
    sessionId: string,
    spent: string,
    spentHash: string,
    now: Date,
  ): Promise<TokenPair> {
    const previous = (await this.d.sessions.findLive(sessionId, now))?.previous;
    if (previous?.tokenHash === spentHash && now.getTime() - previous.rotatedAt.getTime() < this.d.graceMs) {
      const pair = openPair(spent, previous.sealedPair);
      if (pair) return { ...pair, expiresIn: this.d.accessTtlS };
    }
    await this.d.revokeFamily(userId, sessionId, now);
    throw new InvalidRefreshTokenError();
  }
}

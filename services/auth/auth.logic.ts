/**
 * Accounts, logins and sessions, free of Moleculer: the service schema adapts it to the bus.
 */
import { randomUUID } from "node:crypto";
import {
  InvalidCredentialsError,
  NotFoundError,
  ServiceUnavailableError,
  ValidationFailedError,
  WeakPasswordError,
} from "../../lib/errors.ts";
import { isMailAddress } from "../../lib/mail/index.ts";
import type { RateLimit } from "../../lib/rate-limiter.ts";
import type { Account, AccountsRepository } from "./accounts.repo.ts";
import { isCommonPassword, type PasswordHasher, passwordLengthIssue } from "./passwords.ts";
import { hashRefreshToken, newRefreshToken, RefreshRotation, type TokenPair } from "./refresh-rotation.ts";
import type { RefreshTokensRepository } from "./refresh-tokens.repo.ts";
import type { SessionsRepository } from "./sessions.repo.ts";
import type { SigningKeys } from "./signing-keys.ts";

export { hashRefreshToken, type TokenPair };

/** An address the email rule lets through but no mail can be sent to (quotes, several addresses). */
export function undeliverable(field: string): ValidationFailedError {
  return new ValidationFailedError([
    {
      field,
      type: "emailUndeliverable",
      message: `The '${field}' field must be one plain address mail can be sent to`,
    },
  ]);
}

export interface PublicUser {
  id: string;
  email: string;
  emailVerified: boolean;
  username: string;
  displayName: string;
  createdAt: string;
}

export interface ClientInfo {
  ip: string;
  userAgent: string;
}

/** What auth needs from the profile service, as plain functions. */
export interface ProfilePort {
  create(profile: {
    id: string;
    email: string;
    username: string;
    displayName: string;
    createdAt: string;
  }): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface AuthDeps {
  accounts: AccountsRepository;
  sessions: SessionsRepository;
  refreshTokens: RefreshTokensRepository;
  hasher: Pick<PasswordHasher, "hash" | "verify" | "verifyNothing" | "needsRehash">;
  keys: SigningKeys;
  profiles: ProfilePort;
  limits: { registerIp: RateLimit; loginIp: RateLimit; loginAccount: RateLimit };
  accessTtlS: number;
  refreshTtlS: number;
  /** How long a just-rotated refresh token may repeat its refresh (REFRESH_REUSE_GRACE_MS). */
  refreshReuseGraceMs: number;
  /** Told of every revoked session so gateways stop accepting its access tokens at once. */
  onRevoked(sessionIds: string[]): Promise<void>;
  /**
   * REQUIRE_EMAIL_VERIFICATION: access tokens carry the `ev` claim (whether the address is
   * verified), which the chat service checks before sends and new chats.
   */
  signEmailVerified: boolean;
  /** After a registration: mails the verification link (never throws, never waits). */
  onRegistered(account: Account, displayName: string): void;
  /** A login of an account with two-factor on answers this challenge instead of tokens. */
  mfaChallenge(account: Account): Promise<MfaChallenge>;
}

export interface MfaChallenge {
  mfaRequired: true;
  mfaToken: string;
  expiresIn: number;
}

export class AuthLogic {
  private readonly d: AuthDeps;
  private readonly rotation: RefreshRotation;

  constructor(deps: AuthDeps) {
    this.d = deps;
    this.rotation = new RefreshRotation({
      sessions: deps.sessions,
      refreshTokens: deps.refreshTokens,
      newPair: (userId, sessionId) => this.pair(userId, sessionId, newRefreshToken()),
      revokeFamily: (userId, sessionId, now) => this.revokeFamily(userId, sessionId, now),
      graceMs: deps.refreshReuseGraceMs,
      accessTtlS: deps.accessTtlS,
    });
  }

  async register(
    input: { email: string; username: string; password: string; displayName?: string },
    client: ClientInfo,
  ): Promise<{ user: PublicUser } & TokenPair> {
    await this.d.limits.registerIp.consume(client.ip);
    const lengthIssue = passwordLengthIssue(input.password);
    if (lengthIssue) throw new ValidationFailedError([lengthIssue]);
    if (isCommonPassword(input.password)) throw new WeakPasswordError();
    const email = input.email.trim().toLowerCase();
    if (!isMailAddress(email)) throw undeliverable("email");
    const displayName = input.displayName?.trim() || input.username;
    const passwordHash = await this.d.hasher.hash(input.password);
    const account = await this.d.accounts.insertPending({
      _id: randomUUID(),
      email,
      username: input.username,
      usernameLower: input.username.toLowerCase(),
      passwordHash,
    });
    try {
      await this.d.profiles.create({
        id: account._id,
        email,
        username: account.username,
        displayName,
        // One timestamp per user: the profile is made at the account's moment, not its own.
        createdAt: account.createdAt.toISOString(),
      });
      if ((await this.d.accounts.activate(account._id)) !== 1)
        throw new Error("The account vanished mid-registration");
    } catch (err) {
      await this.undoRegistration(account._id);
      throw new ServiceUnavailableError(
        "Registration could not complete; nothing was kept",
        "SERVICE_UNAVAILABLE",
        err,
      );
    }
    this.d.onRegistered(account, displayName);
    const tokens = await this.openSession(account._id, client, false);
    return { user: toPublicUser(account, displayName), ...tokens };
  }

  /** Removes what a failed registration made; a stale-pending sweep catches what this misses. */
  async undoRegistration(accountId: string): Promise<void> {
    await this.d.profiles.remove(accountId).catch(() => undefined);
    await this.d.accounts.remove(accountId).catch(() => undefined);
  }

  async sweepStalePending(olderThan: Date): Promise<number> {
    const stale = await this.d.accounts.findStalePending(olderThan);
    for (const account of stale) await this.undoRegistration(account._id);
    return stale.length;
  }

  async login(
    input: { email?: string; username?: string; password: string },
    client: ClientInfo,
    displayNameOf: (id: string, username: string) => Promise<string>,
  ): Promise<({ user: PublicUser } & TokenPair) | MfaChallenge> {
    await this.d.limits.loginIp.consume(client.ip);
    const email = input.email?.trim().toLowerCase();
    const username = input.username ?? "";
    const account = email
      ? await this.d.accounts.findActiveByEmail(email)
      : await this.d.accounts.findActiveByUsername(username);
    // Failed logins count per account, by whichever name it was given. A name of no account counts
    // on its own, with the same budget, work and answers, so the limit does not tell them apart.
    const accountKey = account ? `a:${account._id}` : email ? `e:${email}` : `u:${username.toLowerCase()}`;
    await this.d.limits.loginAccount.check(accountKey);
    const ok = account
      ? await this.d.hasher.verify(account.passwordHash, input.password)
      : await this.d.hasher.verifyNothing(input.password);
    if (!account || !ok) {
      await this.d.limits.loginAccount.consume(accountKey);
      throw new InvalidCredentialsError();
    }
    if (this.d.hasher.needsRehash(account.passwordHash)) {
      await this.d.accounts.setPasswordHash(account._id, await this.d.hasher.hash(input.password));
    }
    if (account.mfa) return this.d.mfaChallenge(account);
    const tokens = await this.openSession(account._id, client, account.emailVerified === true);
    return { user: toPublicUser(account, await displayNameOf(account._id, account.username)), ...tokens };
  }

  refresh(refreshToken: string): Promise<TokenPair> {
    return this.rotation.refresh(refreshToken);
  }

  private async revokeFamily(userId: string, sessionId: string, now: Date): Promise<void> {
    if (await this.d.sessions.revoke(userId, sessionId, now)) await this.d.onRevoked([sessionId]);
  }

  async logout(userId: string, sessionId: string): Promise<void> {
    if (await this.d.sessions.revoke(userId, sessionId, new Date())) await this.d.onRevoked([sessionId]);
  }

  async logoutAll(userId: string): Promise<void> {
    const ids = await this.d.sessions.revokeAll(userId, new Date());
    if (ids.length > 0) await this.d.onRevoked(ids);
  }

  async listSessions(userId: string, currentSessionId: string) {
    const sessions = await this.d.sessions.listLive(userId, new Date());
    return sessions.map((s) => ({
      id: s._id,
      createdAt: s.createdAt.toISOString(),
      lastUsedAt: s.lastUsedAt.toISOString(),
      userAgent: s.userAgent,
      current: s._id === currentSessionId,
    }));
  }

  async revokeSession(userId: string, sessionId: string): Promise<void> {
    if (!(await this.d.sessions.revoke(userId, sessionId, new Date()))) throw new NotFoundError("Session");
    await this.d.onRevoked([sessionId]);
  }

  /** Sessions revoked recently enough that access tokens signed for them may still be unexpired. */
  async recentRevocations(now = new Date()): Promise<{ sessionId: string; until: string }[]> {
    const since = new Date(now.getTime() - this.d.accessTtlS * 1000);
    const revoked = await this.d.sessions.revokedSince(since);
    return revoked.map((s) => ({
      sessionId: s._id,
      until: new Date((s.revokedAt ?? now).getTime() + this.d.accessTtlS * 1000).toISOString(),
    }));
  }

  /** Opens a session (one login on one device) and signs its first pair. */
  async openSession(userId: string, client: ClientInfo, emailVerified?: boolean): Promise<TokenPair> {
    const now = new Date();
    const refreshToken = newRefreshToken();
    const session = await this.d.sessions.create({
      _id: randomUUID(),
      userId,
      tokenHash: hashRefreshToken(refreshToken),
      userAgent: client.userAgent.slice(0, 256),
      ip: client.ip,
      lastUsedAt: now,
      expiresAt: new Date(now.getTime() + this.d.refreshTtlS * 1000),
    });
    return this.pair(userId, session._id, refreshToken, emailVerified);
  }

  /**
   * A new pair for a session. With REQUIRE_EMAIL_VERIFICATION the access token states whether the
   * address is verified, read from the account unless the caller knows it (a refresh reads it, so
   * the token after a verification carries it).
   */
  private async pair(
    userId: string,
    sessionId: string,
    refreshToken: string,
    emailVerified?: boolean,
  ): Promise<TokenPair> {
    let ev: boolean | undefined;
    if (this.d.signEmailVerified) {
      ev = emailVerified ?? (await this.d.accounts.findActiveById(userId))?.emailVerified === true;
    }
    const accessToken = await this.d.keys.sign(
      ev === undefined ? { userId, sessionId } : { userId, sessionId, emailVerified: ev },
    );
    return { accessToken, refreshToken, expiresIn: this.d.accessTtlS };
  }
}

export function toPublicUser(account: Account, displayName: string): PublicUser {
  return {
    id: account._id,
    email: account.email,
    emailVerified: account.emailVerified === true,
    username: account.username,
    displayName,
    createdAt: account.createdAt.toISOString(),
  };
}

/**
 * The auth service: accounts, passwords, tokens, sessions and signing keys. The schema validates
 * and hands off to AuthLogic; see lib/contracts.ts for the params of each action.
 */

import path from "node:path";
import { type Context, Service, type ServiceBroker } from "moleculer";
import { broadcast, type CallMeta, call, PARAMS } from "../../lib/contracts.ts";
import { UnauthorizedError, ValidationFailedError } from "../../lib/errors.ts";
import { createMailer, type Mailer } from "../../lib/mail/index.ts";
import { platformMetrics } from "../../lib/metrics.ts";
import { platformConfig } from "../../lib/platform.ts";
import { RateLimit } from "../../lib/rate-limiter.ts";
import { createRedis, type RedisClient } from "../../lib/redis.ts";
import { openStore } from "../../lib/store/index.ts";
import type { Store } from "../../lib/store/types.ts";
import { AccountSecurity } from "./account-security.ts";
import { type Account, AccountsRepository } from "./accounts.repo.ts";
import { type AuthDeps, AuthLogic, type ClientInfo, toPublicUser } from "./auth.logic.ts";
import { HashAdmission } from "./hash-admission.ts";
import { MailedTokensRepository } from "./mailed-tokens.repo.ts";
import { PasswordHasher } from "./passwords.ts";
import { RefreshTokensRepository } from "./refresh-tokens.repo.ts";
import { SessionsRepository } from "./sessions.repo.ts";
import { SigningKeysRepository } from "./signing-keys.repo.ts";
import { SigningKeys } from "./signing-keys.ts";

const HOUSEKEEPING_INTERVAL_MS = 30_000;
/** A registration still pending after this long was cut off by a failure; it is undone. */
const STALE_PENDING_MS = 120_000;

type Ctx<P = Record<string, never>> = Context<P, CallMeta>;

export default class AuthService extends Service {
  private store!: Store;
  private redis: RedisClient | undefined;
  private keys!: SigningKeys;
  private logic!: AuthLogic;
  private housekeeping: NodeJS.Timeout | undefined;
  private hasher!: PasswordHasher;
  private admission!: HashAdmission;
  private security!: AccountSecurity;
  private mailer: Mailer | undefined;
  private exportLimit!: RateLimit;

  constructor(broker: ServiceBroker) {
    super(broker);
    const noRetry = { enabled: false };
    this.parseServiceSchema({
      name: "auth",
      settings: {},
      actions: {
        register: {
          params: PARAMS["auth.register"],
          retryPolicy: noRetry,
          handler: (
            ctx: Ctx<{ email: string; username: string; password: string; displayName?: string }>,
          ) => {
            // Refused before its rate limit and its checks when its hash would be (see check()).
            this.admission.check();
            return this.logic.register(ctx.params, clientOf(ctx));
          },
        },
        login: {
          params: PARAMS["auth.login"],
          retryPolicy: noRetry,
          handler: (ctx: Ctx<{ email?: string; username?: string; password: string }>) => {
            const { email, username } = ctx.params;
            if ((email === undefined) === (username === undefined)) {
              throw new ValidationFailedError([
                { field: "email", type: "required", message: "Give either email or username, not both" },
              ]);
            }
            this.admission.check();
            return this.logic.login(ctx.params, clientOf(ctx), (id, username) =>
              this.displayNameOf(ctx, id, username),
            );
          },
        },
        refresh: {
          params: PARAMS["auth.refresh"],
          retryPolicy: noRetry,
          handler: (ctx: Ctx<{ refreshToken: string }>) => this.logic.refresh(ctx.params.refreshToken),
        },
        logout: {
          params: PARAMS["auth.logout"],
          handler: async (ctx: Ctx) => {
            const user = userOf(ctx);
            await this.logic.logout(user.id, user.sessionId);
            return null;
          },
        },
        logoutAll: {
          params: PARAMS["auth.logoutAll"],
          handler: async (ctx: Ctx) => {
            await this.logic.logoutAll(userOf(ctx).id);
            return null;
          },
        },
        sessions: {
          params: PARAMS["auth.sessions"],
          handler: async (ctx: Ctx) => {
            const user = userOf(ctx);
            return { sessions: await this.logic.listSessions(user.id, user.sessionId) };
          },
        },
        revokeSession: {
          params: PARAMS["auth.revokeSession"],
          handler: async (ctx: Ctx<{ id: string }>) => {
            await this.logic.revokeSession(userOf(ctx).id, ctx.params.id);
            return null;
          },
        },
        jwks: { params: PARAMS["auth.jwks"], handler: () => this.keys.jwks() },
        verifyEmail: {
          params: PARAMS["auth.verifyEmail"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx<{ token: string }>) => {
            await this.security.verifyEmail(ctx.params.token, clientOf(ctx));
            return null;
          },
        },
        resendVerification: {
          params: PARAMS["auth.resendVerification"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx) => {
            await this.security.resendVerification(userOf(ctx).id, clientOf(ctx));
            return null;
          },
        },
        changeEmail: {
          params: PARAMS["auth.changeEmail"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx<{ newEmail: string; password: string }>) => {
            await this.security.changeEmail(userOf(ctx).id, ctx.params, clientOf(ctx));
            return null;
          },
        },
        requestPasswordReset: {
          params: PARAMS["auth.requestPasswordReset"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx<{ email: string }>) => {
            await this.security.requestPasswordReset(ctx.params.email, clientOf(ctx));
            return null;
          },
        },
        confirmPasswordReset: {
          params: PARAMS["auth.confirmPasswordReset"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx<{ token: string; password: string }>) => {
            await this.security.confirmPasswordReset(ctx.params.token, ctx.params.password, clientOf(ctx));
            return null;
          },
        },
        changePassword: {
          params: PARAMS["auth.changePassword"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx<{ currentPassword: string; newPassword: string }>) => {
            const user = userOf(ctx);
            await this.security.changePassword(user.id, user.sessionId, ctx.params);
            return null;
          },
        },
        account: {
          params: PARAMS["auth.account"],
          handler: async (ctx: Ctx) => this.security.view(await this.security.account(userOf(ctx).id)),
        },
        mfaSetup: {
          params: PARAMS["auth.mfaSetup"],
          retryPolicy: noRetry,
          handler: (ctx: Ctx) => this.security.mfaSetup(userOf(ctx).id),
        },
        mfaEnable: {
          params: PARAMS["auth.mfaEnable"],
          retryPolicy: noRetry,
          handler: (ctx: Ctx<{ code: string }>) => this.security.mfaEnable(userOf(ctx).id, ctx.params.code),
        },
        mfaVerify: {
          params: PARAMS["auth.mfaVerify"],
          retryPolicy: noRetry,
          handler: (ctx: Ctx<{ mfaToken: string; code?: string; recoveryCode?: string }>) =>
            this.security.mfaVerify(ctx.params, clientOf(ctx)),
        },
        mfaDisable: {
          params: PARAMS["auth.mfaDisable"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx<{ password: string; code: string }>) => {
            await this.security.mfaDisable(userOf(ctx).id, ctx.params);
            return null;
          },
        },
        deleteAccount: {
          params: PARAMS["auth.deleteAccount"],
          retryPolicy: noRetry,
          handler: async (ctx: Ctx<{ password: string; code?: string; eraseMessages?: boolean }>) => {
            await this.security.deleteAccount(userOf(ctx).id, ctx.params);
            return null;
          },
        },
        exportAccount: {
          params: PARAMS["auth.exportAccount"],
          handler: async (ctx: Ctx) => {
            const user = userOf(ctx);
            await this.exportLimit.consume(user.id);
            return {
              account: this.security.view(await this.security.account(user.id)),
              sessions: await this.logic.listSessions(user.id, user.sessionId),
            };
          },
        },
        revocations: { handler: async () => ({ revocations: await this.logic.recentRevocations() }) },
        rotateKeys: {
          handler: async () => {
            await this.keys.rotate();
            await broadcast(this.broker, "auth.keys.rotated", {});
            return { keys: this.keys.jwks().keys.length };
          },
        },
        ready: {
          handler: async () => {
            await this.store.ping();
            return { ok: true };
          },
        },
      },
      events: {
        "auth.keys.rotated": { handler: () => this.keys.refresh().then(() => undefined) },
      },
      started: () => this.start(),
      stopped: () => this.stop(),
    });
  }

  private async start(): Promise<void> {
    const config = platformConfig(this.broker);
    this.hasher = new PasswordHasher(config.hashing);
    const metrics = platformMetrics(this.broker);
    this.admission = new HashAdmission({
      slots: config.hashing.concurrency,
      maxWaitMs: config.hashing.maxWaitMs,
      maxQueue: config.hashing.queueSize,
      initialHashMs: 50,
      onShed: () => metrics?.hashShed(),
      onQueue: (waiting) => metrics?.hashQueued(waiting),
    });
    // One hash timed before the first request, so the first foreseen waits use this machine's time.
    await this.admission.calibrate(() => this.hasher.hash("calibration of the hashing admission"));
    this.store = await openStore(config, this.logger);
    const accounts = new AccountsRepository(this.store.collection("accounts"));
    const sessions = new SessionsRepository(this.store.collection("sessions"));
    const refreshTokens = new RefreshTokensRepository(this.store.collection("refresh_tokens"));
    const keysRepo = new SigningKeysRepository(this.store.collection("signing_keys"));
    const mailedTokens = new MailedTokensRepository(this.store.collection("mailed_tokens"));
    await Promise.all([
      accounts.init(),
      sessions.init(),
      refreshTokens.init(),
      keysRepo.init(),
      mailedTokens.init(),
    ]);
    this.keys = new SigningKeys(keysRepo, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      accessTtlS: config.jwt.accessTtlS,
      keyRotationS: config.jwt.keyRotationS,
    });
    this.redis = createRedis(config, `${config.nodeId}-auth`);
    const limit = (name: string, rate: { points: number; duration: number }) =>
      new RateLimit(name, rate, this.redis, config.namespace);
    this.mailer = createMailer({
      smtpUrl: config.mail.smtpUrl,
      from: config.mail.from,
      outboxDir: path.join(config.dataDir, "outbox"),
      logger: this.logger,
      metrics: platformMetrics(this.broker),
    });
    const displayNameOf = async (account: Account) => {
      try {
        return (await call(this.broker, "profile.get", { id: account._id })).displayName;
      } catch {
        return account.username;
      }
    };
    const loginAccount = limit("login-account", config.rateLimits.loginAccount);
    this.exportLimit = limit("export-user", config.account.exportRate);
    this.security = new AccountSecurity({
      accounts,
      sessions,
      tokens: mailedTokens,
      hasher: this.boundedHasher(),
      mail: this.mailer,
      publicUrl: config.mail.publicUrl,
      issuer: config.jwt.issuer,
      usernameHoldDays: config.account.usernameHoldDays,
      limits: {
        mailAddress: limit("mail-address", config.account.mailAddressRate),
        mailIp: limit("mail-ip", config.account.mailIpRate),
        tokenIp: limit("token-ip", config.account.tokenIpRate),
        loginAccount,
      },
      displayNameOf,
      signMfa: (claims, ttlS) => this.keys.signMfa(claims, ttlS),
      verifyMfa: (token) => this.keys.verifyMfa(token),
      openSession: (userId, client) => this.logic.openSession(userId, client, undefined),
      publicUser: async (account) => toPublicUser(account, await displayNameOf(account)),
      onRevoked: (ids) => this.announceRevoked(ids),
      profiles: {
        setEmail: async (id, email, emailVerified) => {
          await call(this.broker, "profile.setEmail", { id, email, emailVerified });
        },
        erase: async (id) => {
          await call(this.broker, "profile.erase", { id });
        },
      },
      chat: {
        eraseUser: async (userId, eraseMessages) => {
          await call(this.broker, "chat.eraseUser", { userId, eraseMessages });
        },
      },
      warn: (message, err) => this.logger.warn(message, err),
    });
    this.logic = new AuthLogic({
      accounts,
      sessions,
      refreshTokens,
      hasher: this.boundedHasher(),
      keys: this.keys,
      profiles: {
        create: async (profile) => {
          await call(this.broker, "profile.create", profile);
        },
        remove: async (id) => {
          await call(this.broker, "profile.remove", { id });
        },
      },
      limits: {
        registerIp: limit("register-ip", config.rateLimits.registerIp),
        loginIp: limit("login-ip", config.rateLimits.loginIp),
        loginAccount,
      },
      accessTtlS: config.jwt.accessTtlS,
      refreshTtlS: config.jwt.refreshTtlS,
      refreshReuseGraceMs: config.jwt.refreshReuseGraceMs,
      onRevoked: (ids) => this.announceRevoked(ids),
      signEmailVerified: config.account.requireEmailVerification,
      onRegistered: (account, displayName) => this.security.sendVerification(account, displayName),
      mfaChallenge: (account) => this.security.mfaChallenge(account),
    });
    if ((await this.keys.refresh()).rotated) await broadcast(this.broker, "auth.keys.rotated", {});
    this.housekeeping = setInterval(() => void this.tidy(), HOUSEKEEPING_INTERVAL_MS);
    this.housekeeping.unref();
  }

  private async stop(): Promise<void> {
    clearInterval(this.housekeeping);
    await this.mailer?.drain(5_000).catch(() => undefined);
    await this.mailer?.close();
    this.redis?.disconnect();
    await this.store?.close();
  }

  private async tidy(): Promise<void> {
    try {
      if ((await this.keys.refresh()).rotated) await broadcast(this.broker, "auth.keys.rotated", {});
      const swept = await this.logic.sweepStalePending(new Date(Date.now() - STALE_PENDING_MS));
      if (swept > 0) this.logger.warn(`Undid ${swept} registrations that never completed`);
      const finished = await this.security.sweepDeletions();
      if (finished > 0) this.logger.info(`Finished ${finished} account deletions or username holds`);
    } catch (err) {
      this.logger.warn("Auth housekeeping failed; it runs again shortly", err);
    }
  }

  private async announceRevoked(sessionIds: string[]): Promise<void> {
    const until = new Date(Date.now() + platformConfig(this.broker).jwt.accessTtlS * 1000).toISOString();
    await broadcast(this.broker, "auth.sessions.revoked", {
      revocations: sessionIds.map((sessionId) => ({ sessionId, until })),
    });
  }

  /**
   * The hashing for AuthLogic, through this node's admission gate (hash-admission.ts): at most
   * HASH_CONCURRENCY hashes at once, a bounded wait, 503 at once beyond it.
   */
  private boundedHasher(): AuthDeps["hasher"] {
    const gate = this.admission;
    return {
      hash: (password) => gate.run(() => this.hasher.hash(password)),
      verify: (hash, password) => gate.run(() => this.hasher.verify(hash, password)),
      verifyNothing: (password) => gate.run(() => this.hasher.verifyNothing(password)),
      needsRehash: (hash) => this.hasher.needsRehash(hash),
    };
  }

  private async displayNameOf(ctx: Ctx<unknown>, id: string, username: string): Promise<string> {
    try {
      return (await call(ctx, "profile.get", { id })).displayName;
    } catch (err) {
      this.logger.warn("Profile unavailable at login; answering with the username", err);
      return username;
    }
  }
}

function clientOf(ctx: Ctx<unknown>): ClientInfo {
  return { ip: ctx.meta.clientIp ?? "internal", userAgent: ctx.meta.userAgent ?? "" };
}

function userOf(ctx: Ctx<unknown>) {
  if (!ctx.meta.user) throw new UnauthorizedError();
  return ctx.meta.user;
}

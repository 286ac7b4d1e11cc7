/**
 * What keeps an account its owner's: email verification and change, password reset and change,
 * two-factor authentication (TOTP and recovery codes) and deletion. Free of Moleculer like
 * AuthLogic, which it shares the sessions and token signing of.
 *
 * Every mailed link carries a token of 256 random bits that the store keeps only as a SHA-256
 * (mailed-tokens.repo.ts), spent once by compare-and-set; expired, spent and forged tokens all get
 * the same 400. Mails are queued (lib/mail) and never hold up an answer.
 */

import { createHash } from "node:crypto";
import { Errors } from "moleculer";
import type { AccountView } from "../../lib/contracts.ts";
import {
  ConflictError,
  ForbiddenError,
  ServiceUnavailableError,
  UnauthorizedError,
  ValidationFailedError,
  WeakPasswordError,
} from "../../lib/errors.ts";
import type { MailKind, OutgoingMail } from "../../lib/mail/index.ts";
import { isMailAddress, renderMail } from "../../lib/mail/index.ts";
import type { RateLimit } from "../../lib/rate-limiter.ts";
import type { Account, AccountsRepository, MfaState } from "./accounts.repo.ts";
import { type ClientInfo, type PublicUser, type TokenPair, undeliverable } from "./auth.logic.ts";
import type { MailedTokensRepository } from "./mailed-tokens.repo.ts";
import { isCommonPassword, type PasswordHasher, passwordLengthIssue } from "./passwords.ts";
import type { SessionsRepository } from "./sessions.repo.ts";
import type { MfaClaims } from "./signing-keys.ts";
import {
  findRecoveryCode,
  hashRecoveryCode,
  looksLikeTotp,
  newRecoveryCodes,
  newTotpSecret,
  totpStep,
  totpUri,
} from "./two-factor.ts";

export const RESET_TTL_S = 30 * 60;
export const VERIFY_TTL_S = 48 * 3600;
export const MFA_TOKEN_TTL_S = 5 * 60;
/** A setup not confirmed within this is forgotten: enable answers MFA_NOT_SET_UP. */
const MFA_SETUP_TTL_MS = 15 * 60_000;

export interface SecurityDeps {
  accounts: AccountsRepository;
  sessions: SessionsRepository;
  tokens: MailedTokensRepository;
  hasher: Pick<PasswordHasher, "hash" | "verify">;
  mail: { send(mail: OutgoingMail): void };
  publicUrl: string;
  issuer: string;
  usernameHoldDays: number;
  limits: { mailAddress: RateLimit; mailIp: RateLimit; tokenIp: RateLimit; loginAccount: RateLimit };
  /** The display name mails greet the user by (falls back to the username). */
  displayNameOf(account: Account): Promise<string>;
  signMfa(claims: MfaClaims, ttlS: number): Promise<string>;
  verifyMfa(token: string): Promise<MfaClaims | undefined>;
  /** Opens a session and signs its pair (AuthLogic's). */
  openSession(userId: string, client: ClientInfo): Promise<TokenPair>;
  publicUser(account: Account): Promise<PublicUser>;
  /** Tells gateways that these sessions are revoked (their sockets close with 4001). */
  onRevoked(sessionIds: string[]): Promise<void>;
  profiles: {
    setEmail(id: string, email: string, emailVerified: boolean): Promise<void>;
    erase(id: string): Promise<void>;
  };
  chat: { eraseUser(userId: string, eraseMessages: boolean): Promise<void> };
  /** Where work started by an answer that did not wait for it reports failures. */
  warn(message: string, err: unknown): void;
}

export class InvalidMailedTokenError extends Errors.MoleculerClientError {
  constructor() {
    super("The link is invalid, expired or already used", 400, "INVALID_TOKEN");
  }
}

function wrongPassword(): ForbiddenError {
  return new ForbiddenError("The password is wrong", "WRONG_PASSWORD");
}

function wrongCode(): ForbiddenError {
  return new ForbiddenError("The code is wrong or was already used", "INVALID_MFA_CODE");
}

export class AccountSecurity {
  private readonly d: SecurityDeps;
  private readonly backlog: (() => Promise<void>)[] = [];
  private preparing = 0;

  constructor(deps: SecurityDeps) {
    this.d = deps;
  }

  view(account: Account): AccountView {
    return {
      id: account._id,
      email: account.email,
      emailVerified: account.emailVerified === true,
      mfaEnabled: account.mfa !== undefined,
      recoveryCodesLeft: account.mfa?.recovery.length ?? 0,
      createdAt: account.createdAt.toISOString(),
    };
  }

  async account(userId: string): Promise<Account> {
    const account = await this.d.accounts.findActiveById(userId);
    if (!account) throw new UnauthorizedError("The account no longer exists", "ACCOUNT_GONE");
    return account;
  }

  // ---- email verification and change ----

  /** Mails the verification link of a new account (registration; never throws). */
  sendVerification(account: Account, displayName: string): void {
    this.later(async () => {
      const token = await this.d.tokens.issue(
        { kind: "verify", userId: account._id, email: account.email },
        VERIFY_TTL_S,
      );
      this.mail("verify-email", account.email, displayName, { link: this.link("verify-email", token) });
    });
  }

  async resendVerification(userId: string, client: ClientInfo): Promise<void> {
    const account = await this.account(userId);
    if (account.emailVerified) {
      throw new ConflictError("The email address is already verified", "EMAIL_ALREADY_VERIFIED", "email");
    }
    await this.d.limits.mailIp.consume(client.ip);
    await this.d.limits.mailAddress.consume(account.email);
    await this.d.tokens.spendAll(userId, ["verify"]);
    const token = await this.d.tokens.issue({ kind: "verify", userId, email: account.email }, VERIFY_TTL_S);
    this.mail("verify-email", account.email, await this.d.displayNameOf(account), {
      link: this.link("verify-email", token),
    });
  }

  /** Confirms an address with a mailed token: a registration's, or an email change's. */
  async verifyEmail(token: string, client: ClientInfo): Promise<void> {
    await this.d.limits.tokenIp.consume(client.ip);
    const found =
      (await this.d.tokens.findLive(token, "verify")) ?? (await this.d.tokens.findLive(token, "email"));
    if (!found?.email) throw new InvalidMailedTokenError();
    const account = await this.d.accounts.findActiveById(found.userId);
    if (!account) throw new InvalidMailedTokenError();
    if (found.kind === "verify") {
      // A link to an address the account has since left verifies nothing.
      if (account.email !== found.email) throw new InvalidMailedTokenError();
      if (!(await this.d.tokens.spend(found._id))) throw new InvalidMailedTokenError();
      await this.d.accounts.setEmailVerified(account._id, found.email);
    } else {
      const holder = await this.d.accounts.findByEmail(found.email);
      if (holder && holder._id !== account._id) {
        throw new ConflictError("This email is already registered", "EMAIL_TAKEN", "email");
      }
      if (!(await this.d.tokens.spend(found._id))) throw new InvalidMailedTokenError();
      await this.d.accounts.changeEmail(account._id, found.email);
      await this.d.tokens.spendAll(account._id, ["verify", "email"]);
    }
    await this.d.profiles.setEmail(account._id, found.email, true);
  }

  async changeEmail(
    userId: string,
    input: { newEmail: string; password: string },
    client: ClientInfo,
  ): Promise<void> {
    const account = await this.account(userId);
    const newEmail = input.newEmail.trim().toLowerCase();
    await this.checkPassword(account, input.password);
    if (!isMailAddress(newEmail)) throw undeliverable("newEmail");
    if (newEmail === account.email) {
      throw new ValidationFailedError([
        { field: "newEmail", type: "emailSame", message: "This is the account's address already" },
      ]);
    }
    if (await this.d.accounts.findByEmail(newEmail)) {
      throw new ConflictError("This email is already registered", "EMAIL_TAKEN", "newEmail");
    }
    await this.d.limits.mailIp.consume(client.ip);
    await this.d.limits.mailAddress.consume(newEmail);
    await this.d.tokens.spendAll(userId, ["email"]);
    const token = await this.d.tokens.issue({ kind: "email", userId, email: newEmail }, VERIFY_TTL_S);
    const name = await this.d.displayNameOf(account);
    this.mail("email-change", newEmail, name, { link: this.link("verify-email", token), newEmail });
    this.mail("email-change-notice", account.email, name, { newEmail });
  }

  // ---- passwords ----

  /**
   * Answers the same whether or not the address has an account, after the same work: the rate
   * limits. Finding the account, the token and the mail happen after the answer.
   */
  async requestPasswordReset(email: string, client: ClientInfo): Promise<void> {
    const address = email.trim().toLowerCase();
    await this.d.limits.mailIp.consume(client.ip);
    await this.d.limits.mailAddress.consume(address);
    this.later(async () => {
      const account = await this.d.accounts.findActiveByEmail(address);
      if (!account) return;
      const token = await this.d.tokens.issue(
        { kind: "reset", userId: account._id, email: address },
        RESET_TTL_S,
      );
      this.mail("password-reset", address, await this.d.displayNameOf(account), {
        link: this.link("reset-password", token),
      });
    });
  }

  async confirmPasswordReset(token: string, password: string, client: ClientInfo): Promise<void> {
    await this.d.limits.tokenIp.consume(client.ip);
    const found = await this.d.tokens.findLive(token, "reset");
    const account = found ? await this.d.accounts.findActiveById(found.userId) : null;
    if (!found || !account || account.email !== found.email) throw new InvalidMailedTokenError();
    checkNewPassword(password, "password");
    const passwordHash = await this.d.hasher.hash(password);
    if (!(await this.d.tokens.spend(found._id))) throw new InvalidMailedTokenError();
    await this.d.accounts.setPasswordHash(account._id, passwordHash);
    // The link proved the mailbox is the owner's.
    await this.d.accounts.setEmailVerified(account._id, account.email);
    await this.d.tokens.spendAll(account._id, ["reset"]);
    await this.revoke(await this.d.sessions.revokeAll(account._id, new Date()));
    this.mail("password-changed", account.email, await this.d.displayNameOf(account), {});
  }

  async changePassword(
    userId: string,
    sessionId: string,
    input: { currentPassword: string; newPassword: string },
  ): Promise<void> {
    const account = await this.account(userId);
    await this.checkPassword(account, input.currentPassword);
    checkNewPassword(input.newPassword, "newPassword");
    await this.d.accounts.setPasswordHash(userId, await this.d.hasher.hash(input.newPassword));
    await this.d.tokens.spendAll(userId, ["reset"]);
    await this.revoke(await this.d.sessions.revokeOthers(userId, sessionId, new Date()));
    this.mail("password-changed", account.email, await this.d.displayNameOf(account), {});
  }

  // ---- two-factor authentication ----

  async mfaSetup(userId: string): Promise<{ secret: string; uri: string }> {
    const account = await this.account(userId);
    if (account.mfa) {
      throw new ConflictError("Two-factor authentication is already on", "MFA_ALREADY_ENABLED", "code");
    }
    const secret = newTotpSecret();
    await this.d.accounts.setMfaPending(userId, secret);
    return { secret, uri: totpUri(secret, account.email, this.d.issuer) };
  }

  async mfaEnable(userId: string, code: string): Promise<{ recoveryCodes: string[] }> {
    const account = await this.account(userId);
    if (account.mfa) {
      throw new ConflictError("Two-factor authentication is already on", "MFA_ALREADY_ENABLED", "code");
    }
    const pending = account.mfaPending;
    if (!pending || Date.now() - pending.createdAt.getTime() > MFA_SETUP_TTL_MS) {
      throw new ConflictError("Start with POST /auth/2fa/setup", "MFA_NOT_SET_UP", "code");
    }
    await this.d.limits.loginAccount.check(`a:${userId}`);
    const step = totpStep(pending.secret, code);
    if (step === undefined) {
      await this.d.limits.loginAccount.consume(`a:${userId}`);
      throw wrongCode();
    }
    const recoveryCodes = newRecoveryCodes();
    const mfa: MfaState = {
      secret: pending.secret,
      lastStep: step,
      recovery: recoveryCodes.map(hashRecoveryCode),
      enabledAt: new Date(),
    };
    if (!(await this.d.accounts.writeMfa(account, mfa))) {
      throw new ConflictError(
        "Two-factor authentication changed meanwhile; try again",
        "MFA_NOT_SET_UP",
        "code",
      );
    }
    return { recoveryCodes };
  }

  async mfaDisable(userId: string, input: { password: string; code: string }): Promise<void> {
    const account = await this.account(userId);
    if (!account.mfa) throw new ConflictError("Two-factor authentication is off", "MFA_NOT_ENABLED", "code");
    await this.checkPassword(account, input.password);
    const after = await this.spendCode(account, input.code);
    if (!after) return this.refuseCode(account);
    if (!(await this.d.accounts.writeMfa(after, undefined))) throw wrongCode();
  }

  /**
   * What a login answers for an account with two-factor on: a short-lived token signed as an
   * mfaToken (never an access token; signing-keys.ts), bound to the account's two-factor revision
   * and password. Nothing is stored for it: a sign-in it finishes moves the revision on (the code
   * or recovery code is spent by compare-and-set on it), which voids it and every other mfaToken of
   * the account, as a password change does.
   */
  async mfaChallenge(account: Account) {
    const mfaToken = await this.d.signMfa(
      { userId: account._id, rev: account.mfaRev ?? 0, pw: passwordFingerprint(account.passwordHash) },
      MFA_TOKEN_TTL_S,
    );
    return { mfaRequired: true as const, mfaToken, expiresIn: MFA_TOKEN_TTL_S };
  }

  async mfaVerify(
    input: { mfaToken: string; code?: string; recoveryCode?: string },
    client: ClientInfo,
  ): Promise<{ user: PublicUser } & TokenPair> {
    await this.d.limits.tokenIp.consume(client.ip);
    const claims = await this.d.verifyMfa(input.mfaToken);
    const account = claims ? await this.d.accounts.findActiveById(claims.userId) : null;
    if (
      !claims ||
      !account?.mfa ||
      (account.mfaRev ?? 0) !== claims.rev ||
      passwordFingerprint(account.passwordHash) !== claims.pw
    ) {
      throw invalidMfaToken();
    }
    const key = `a:${account._id}`;
    await this.d.limits.loginAccount.check(key);
    const code = input.code ?? input.recoveryCode ?? "";
    const spent =
      input.code !== undefined
        ? await this.spendTotp(account, code)
        : await this.spendRecovery(account, code);
    if (!spent) {
      await this.d.limits.loginAccount.consume(key);
      // Another sign-in with this token won meanwhile: the token is spent, not the code wrong.
      const now = await this.d.accounts.findActiveById(account._id);
      if ((now?.mfaRev ?? 0) !== claims.rev) throw invalidMfaToken();
      throw new UnauthorizedError("The code is wrong or was already used", "INVALID_MFA_CODE");
    }
    const tokens = await this.d.openSession(account._id, client);
    return { user: await this.d.publicUser(account), ...tokens };
  }

  /** A wrong second factor of a signed-in user counts toward the account's login limit, as at login. */
  private async refuseCode(account: Account): Promise<never> {
    await this.d.limits.loginAccount.consume(`a:${account._id}`);
    throw wrongCode();
  }

  /** Takes a TOTP code or a recovery code; the account as written after, or undefined when wrong. */
  private async spendCode(account: Account, code: string): Promise<Account | undefined> {
    return looksLikeTotp(code) ? this.spendTotp(account, code.trim()) : this.spendRecovery(account, code);
  }

  /** Accepts the code once: its time step must be after the last one taken, set by compare-and-set. */
  private async spendTotp(account: Account, code: string): Promise<Account | undefined> {
    let current: Account | null = account;
    for (let attempt = 0; attempt < 3 && current?.mfa; attempt++) {
      const mfa: MfaState = current.mfa;
      const step = totpStep(mfa.secret, code);
      if (step === undefined || step <= mfa.lastStep) return undefined;
      const next = { ...mfa, lastStep: step };
      if (await this.d.accounts.writeMfa(current, next))
        return { ...current, mfa: next, mfaRev: (current.mfaRev ?? 0) + 1 };
      current = await this.d.accounts.findActiveById(account._id);
    }
    return undefined;
  }

  private async spendRecovery(account: Account, code: string): Promise<Account | undefined> {
    let current: Account | null = account;
    for (let attempt = 0; attempt < 3 && current?.mfa; attempt++) {
      const mfa: MfaState = current.mfa;
      const at = findRecoveryCode(mfa.recovery, code);
      if (at === -1) return undefined;
      const next = { ...mfa, recovery: mfa.recovery.filter((_, i) => i !== at) };
      if (await this.d.accounts.writeMfa(current, next))
        return { ...current, mfa: next, mfaRev: (current.mfaRev ?? 0) + 1 };
      current = await this.d.accounts.findActiveById(account._id);
    }
    return undefined;
  }

  // ---- deletion ----

  async deleteAccount(
    userId: string,
    input: { password: string; code?: string; eraseMessages?: boolean },
  ): Promise<void> {
    const account = await this.account(userId);
    await this.checkPassword(account, input.password);
    if (account.mfa && (input.code === undefined || !(await this.spendCode(account, input.code)))) {
      return this.refuseCode(account);
    }
    const name = await this.d.displayNameOf(account);
    if (!(await this.d.accounts.markDeleting(userId, input.eraseMessages === true))) {
      throw new UnauthorizedError("The account no longer exists", "ACCOUNT_GONE");
    }
    this.mail("account-deleted", account.email, name, {});
    try {
      await this.finishDeletion({
        ...account,
        state: "deleting",
        eraseMessages: input.eraseMessages === true,
      });
    } catch (err) {
      // The account is marked; housekeeping finishes what failed here. Its sessions must be gone
      // before the answer, though: a 503 tells the client to try again.
      const live = await this.d.sessions.listLive(userId, new Date()).catch(() => [{}]);
      if (live.length > 0) {
        throw new ServiceUnavailableError(
          "The account could not be deleted yet; try again",
          "SERVICE_UNAVAILABLE",
          err,
        );
      }
      this.d.warn("Account deletion left work for housekeeping", err);
    }
  }

  /** Every step of a deletion, each safe to repeat: the first call and housekeeping's. */
  async finishDeletion(account: Account): Promise<void> {
    const id = account._id;
    await this.revoke(await this.d.sessions.revokeAll(id, new Date()));
    await this.d.tokens.spendAll(id, ["verify", "email", "reset"]);
    await this.d.profiles.erase(id);
    await this.d.chat.eraseUser(id, account.eraseMessages === true);
    const releaseAt = new Date(Date.now() + this.d.usernameHoldDays * 86_400_000);
    await this.d.accounts.finishDeletion(id, releaseAt);
  }

  /** Housekeeping: finishes cut-off deletions and frees usernames whose hold passed. */
  async sweepDeletions(now = new Date()): Promise<number> {
    let done = 0;
    for (const account of await this.d.accounts.findDeleting()) {
      await this.finishDeletion(account);
      done += 1;
    }
    for (const account of await this.d.accounts.findUsernamesDue(now)) {
      done += await this.d.accounts.releaseUsername(account._id);
    }
    return done;
  }

  // ---- shared ----

  /** A password check of a signed-in user: wrong ones count toward the account's login limit. */
  private async checkPassword(account: Account, password: string): Promise<void> {
    const key = `a:${account._id}`;
    await this.d.limits.loginAccount.check(key);
    if (!(await this.d.hasher.verify(account.passwordHash, password))) {
      await this.d.limits.loginAccount.consume(key);
      throw wrongPassword();
    }
  }

  private async revoke(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.d.onRevoked(ids);
  }

  private link(fragment: "verify-email" | "reset-password", token: string): string {
    return `${this.d.publicUrl}/#${fragment}=${token}`;
  }

  private mail(
    kind: MailKind,
    to: string,
    displayName: string,
    extra: { link?: string; newEmail?: string },
  ): void {
    const body = renderMail(kind, { displayName, ...extra });
    this.d.mail.send({ kind, to, ...body, ...(extra.link ? { link: extra.link } : {}) });
  }

  /**
   * Work an answer does not wait for (the token and mail of a reset), run PREPARING_AT_ONCE at a
   * time: a burst of asks queues here instead of taking the event loop from other requests.
   */
  private later(work: () => Promise<void>): void {
    this.backlog.push(work);
    this.runBacklog();
  }

  private runBacklog(): void {
    while (this.preparing < PREPARING_AT_ONCE && this.backlog.length > 0) {
      const work = this.backlog.shift() as () => Promise<void>;
      this.preparing += 1;
      setImmediate(() => {
        work()
          .catch((err: unknown) => this.d.warn("Account mail could not be prepared", err))
          .finally(() => {
            this.preparing -= 1;
            this.runBacklog();
          });
      });
    }
  }
}

/** Background preparations (token and mail) run at once at most. */
const PREPARING_AT_ONCE = 2;

function passwordFingerprint(passwordHash: string): string {
  return createHash("sha256").update(passwordHash).digest("base64url").slice(0, 16);
}

function invalidMfaToken(): UnauthorizedError {
  return new UnauthorizedError(
    "The sign-in step expired or was already used; sign in again",
    "INVALID_MFA_TOKEN",
  );
}

function checkNewPassword(password: string, field: string): void {
  const issue = passwordLengthIssue(password);
  if (issue) throw new ValidationFailedError([{ ...issue, field }]);
  if (isCommonPassword(password)) throw new WeakPasswordError(field);
}

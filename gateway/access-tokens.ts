/**
 * Local verification of access tokens: the JWKS is fetched from auth once and cached (refetched
 * on an unknown `kid`, on a rotation event and periodically), and sessions revoked by logout are
 * held in memory until their tokens would have expired anyway. No bus round trip per request.
 *
 * A token that verified is remembered (by its exact text, until it expires, for at most
 * VERIFIED_CACHE_SIZE tokens): the signature check is the costliest step of an authenticated request
 * and a client sends the same token until it refreshes it. Revocation is still checked every time.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTPayload, jwtVerify } from "jose";
import type { AuthUser, Revocation } from "../lib/contracts.ts";
import { UnauthorizedError } from "../lib/errors.ts";

const ALGORITHMS = ["EdDSA"];
const TOKEN_TYPE = "at+jwt";
const MAX_TOKEN_LENGTH = 4096;
const MIN_REFETCH_INTERVAL_MS = 5_000;
const VERIFIED_CACHE_SIZE = 10_000;

interface Verified {
  user: AuthUser;
  expiresAt: number;
}

export interface VerifierSettings {
  issuer: string;
  audience: string;
  fetchJwks(): Promise<JSONWebKeySet>;
  fetchRevocations(): Promise<Revocation[]>;
}

export class AccessTokenVerifier {
  private readonly settings: VerifierSettings;
  private keySet: ReturnType<typeof createLocalJWKSet> | undefined;
  private lastFetch = 0;
  private fetching: Promise<void> | undefined;
  private readonly revoked = new Map<string, number>();
  /** Tokens already verified, oldest first. */
  private readonly verified = new Map<string, Verified>();

  constructor(settings: VerifierSettings) {
    this.settings = settings;
  }

  get hasKeys(): boolean {
    return this.keySet !== undefined;
  }

  /** Fetches the JWKS and the recent revocations; concurrent callers share one fetch. */
  sync(): Promise<void> {
    this.fetching ??= (async () => {
      try {
        const [jwks, revocations] = await Promise.all([
          this.settings.fetchJwks(),
          this.settings.fetchRevocations(),
        ]);
        this.keySet = createLocalJWKSet(jwks);
        this.lastFetch = Date.now();
        this.revoke(revocations);
      } finally {
        this.fetching = undefined;
      }
    })();
    return this.fetching;
  }

  revoke(revocations: Revocation[]): void {
    const now = Date.now();
    for (const r of revocations) {
      const until = Date.parse(r.until);
      if (until > now) this.revoked.set(r.sessionId, Math.max(until, this.revoked.get(r.sessionId) ?? 0));
    }
    for (const [sessionId, until] of this.revoked) if (until <= now) this.revoked.delete(sessionId);
  }

  isRevoked(sessionId: string): boolean {
    const until = this.revoked.get(sessionId);
    return until !== undefined && until > Date.now();
  }

  async verify(token: string): Promise<AuthUser> {
    return (await this.verifyWithExpiry(token)).user;
  }

  /** The user and session of a valid token, and when (ms since epoch) the token expires. */
  async verifyWithExpiry(token: string): Promise<Verified> {
    const known = this.verified.get(token);
    if (known) {
      if (known.expiresAt > Date.now()) {
        if (this.isRevoked(known.user.sessionId)) throw revokedError();
        return known;
      }
      this.verified.delete(token);
    }
    const result = await this.verifySignature(token);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(token, result);
    return result;
  }

  private async verifySignature(token: string): Promise<Verified> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid();
    if (!this.keySet) await this.sync();
    let payload: JWTPayload;
    try {
      payload = await this.verifyOnce(token);
    } catch (err) {
      if (
        !(err instanceof errors.JWKSNoMatchingKey) ||
        Date.now() - this.lastFetch < MIN_REFETCH_INTERVAL_MS
      ) {
        throw toUnauthorized(err);
      }
      await this.sync();
      payload = await this.verifyOnce(token).catch((e: unknown) => {
        throw toUnauthorized(e);
      });
    }
    const sessionId = payload.sid;
    if (typeof payload.sub !== "string" || typeof sessionId !== "string" || typeof payload.exp !== "number") {
      throw invalid();
    }
    if (this.isRevoked(sessionId)) throw revokedError();
    const user =
      typeof payload.ev === "boolean"
        ? { id: payload.sub, sessionId, emailVerified: payload.ev }
        : { id: payload.sub, sessionId };
    return { user, expiresAt: payload.exp * 1000 };
  }

  private async verifyOnce(token: string): Promise<JWTPayload> {
    if (!this.keySet) throw invalid();
    const { payload } = await jwtVerify(token, this.keySet, {
      algorithms: ALGORITHMS,
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      typ: TOKEN_TYPE,
      requiredClaims: ["exp", "iat", "sub", "sid"],
      clockTolerance: 5,
    });
    return payload;
  }
}

function invalid(): UnauthorizedError {
  return new UnauthorizedError("The access token is invalid", "INVALID_TOKEN");
}

function revokedError(): UnauthorizedError {
  return new UnauthorizedError("The session was revoked", "TOKEN_REVOKED");
}

function toUnauthorized(err: unknown): UnauthorizedError {
  if (err instanceof errors.JWTExpired)
    return new UnauthorizedError("The access token has expired", "TOKEN_EXPIRED");
  if (err instanceof UnauthorizedError) return err;
  return invalid();
}

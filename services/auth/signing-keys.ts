/**
 * Ed25519 signing keys, shared by every auth instance through the store. The newest key signs; a
 * key stays published in the JWKS until every token it signed has expired, so rotating never logs
 * anyone out.
 */
import { randomBytes } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK, jwtVerify, SignJWT } from "jose";
import type { SigningKeyRecord, SigningKeysRepository } from "./signing-keys.repo.ts";

export const ACCESS_TOKEN_ALG = "EdDSA";
export const ACCESS_TOKEN_TYP = "at+jwt";
/**
 * The mfaToken of a login waiting for its second factor: signed by the same keys, but of another
 * type and audience, so no verifier of access tokens takes it (gateways require `at+jwt` and the
 * platform's audience), and it carries no session.
 */
export const MFA_TOKEN_TYP = "mfa+jwt";

export interface MfaClaims {
  userId: string;
  /** The account's mfaRev when the password was right: any change of its two-factor state since voids it. */
  rev: number;
  /** A fingerprint of the password hash: a password change since voids it. */
  pw: string;
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtlS: number;
  keyRotationS: number;
}

export interface AccessClaims {
  userId: string;
  sessionId: string;
  /** Signed as `ev`: the account's address was verified (only when REQUIRE_EMAIL_VERIFICATION reads it). */
  emailVerified?: boolean;
}

interface LoadedKey {
  kid: string;
  createdAt: Date;
  publicJwk: JWK;
  privateKey: CryptoKey;
}

export class SigningKeys {
  private readonly repo: SigningKeysRepository;
  private readonly settings: TokenSettings;
  private keys: LoadedKey[] = [];
  /** Public keys imported once per key id, for verifying mfaTokens. */
  private readonly verifyingKeys = new Map<string, CryptoKey | Uint8Array>();

  constructor(repo: SigningKeysRepository, settings: TokenSettings) {
    this.repo = repo;
    this.settings = settings;
  }

  /** Loads the keys, making a new one when there is none or the newest is due for rotation. */
  async refresh(now = new Date()): Promise<{ rotated: boolean }> {
    await this.load();
    const newest = this.keys[0];
    if (newest && now.getTime() - newest.createdAt.getTime() < this.settings.keyRotationS * 1000) {
      return { rotated: false };
    }
    await this.rotate();
    return { rotated: true };
  }

  /** Makes a new signing key now; older keys stay published until their tokens expire. */
  async rotate(): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair(ACCESS_TOKEN_ALG, {
      crv: "Ed25519",
      extractable: true,
    });
    const kid = randomBytes(12).toString("base64url");
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ACCESS_TOKEN_ALG, use: "sig" };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ACCESS_TOKEN_ALG };
    await this.repo.insert({ _id: kid, alg: ACCESS_TOKEN_ALG, publicJwk, privateJwk });
    await this.load();
  }

  private async load(): Promise<void> {
    const records = await this.repo.newestFirst(20);
    const loaded: LoadedKey[] = [];
    for (const record of records) loaded.push(await this.toLoaded(record));
    this.keys = loaded;
  }

  private async toLoaded(record: SigningKeyRecord): Promise<LoadedKey> {
    const known = this.keys.find((k) => k.kid === record._id);
    if (known) return known;
    const privateKey = (await importJWK(record.privateJwk, ACCESS_TOKEN_ALG)) as CryptoKey;
    return { kid: record._id, createdAt: record.createdAt, publicJwk: record.publicJwk, privateKey };
  }

  /** The public keys whose tokens may still be valid: the newest, and any superseded recently. */
  jwks(now = new Date()): { keys: JWK[] } {
    const graceMs = (this.settings.accessTtlS + 60) * 1000;
    const keys = this.keys.filter((_key, i) => {
      const supersededAt = this.keys[i - 1]?.createdAt;
      return !supersededAt || supersededAt.getTime() + graceMs > now.getTime();
    });
    return { keys: keys.map((k) => k.publicJwk) };
  }

  async signMfa(claims: MfaClaims, ttlS: number): Promise<string> {
    const key = this.keys[0];
    if (!key) throw new Error("No signing key loaded");
    return new SignJWT({ rev: claims.rev, pw: claims.pw })
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: key.kid, typ: MFA_TOKEN_TYP })
      .setSubject(claims.userId)
      .setIssuer(this.settings.issuer)
      .setAudience(`${this.settings.audience}#mfa`)
      .setIssuedAt()
      .setExpirationTime(`${ttlS}s`)
      .sign(key.privateKey);
  }

  /** The claims of a valid mfaToken signed by a key of ours; undefined for anything else. */
  async verifyMfa(token: string): Promise<MfaClaims | undefined> {
    if (token.length > 2048) return undefined;
    try {
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          let key = this.keys.find((k) => k.kid === header.kid);
          if (!key) {
            await this.load();
            key = this.keys.find((k) => k.kid === header.kid);
          }
          if (!key) throw new Error("unknown key");
          let verifying = this.verifyingKeys.get(key.kid);
          if (!verifying) {
            verifying = await importJWK(key.publicJwk, ACCESS_TOKEN_ALG);
            this.verifyingKeys.set(key.kid, verifying);
          }
          return verifying;
        },
        {
          algorithms: [ACCESS_TOKEN_ALG],
          issuer: this.settings.issuer,
          audience: `${this.settings.audience}#mfa`,
          typ: MFA_TOKEN_TYP,
          requiredClaims: ["exp", "sub"],
        },
      );
      if (
        typeof payload.sub !== "string" ||
        typeof payload.rev !== "number" ||
        typeof payload.pw !== "string"
      )
        return undefined;
      return { userId: payload.sub, rev: payload.rev, pw: payload.pw };
    } catch {
      return undefined;
    }
  }

  async sign(claims: AccessClaims): Promise<string> {
    const key = this.keys[0];
    if (!key) throw new Error("No signing key loaded");
    const payload =
      claims.emailVerified === undefined
        ? { sid: claims.sessionId }
        : { sid: claims.sessionId, ev: claims.emailVerified };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: key.kid, typ: ACCESS_TOKEN_TYP })
      .setSubject(claims.userId)
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setIssuedAt()
      .setJti(randomBytes(12).toString("base64url"))
      .setExpirationTime(`${this.settings.accessTtlS}s`)
      .sign(key.privateKey);
  }
}

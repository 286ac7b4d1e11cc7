/**
 * Time-based one-time passwords (RFC 6238, the authenticator apps' SHA-1 / 6 digits / 30 s) with
 * `otpauth`, and the recovery codes that stand in for a lost authenticator. Pure functions: the
 * account keeps the secret, the last time step accepted (so a code is taken once, even inside its
 * window) and the hashes of the recovery codes.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Secret, TOTP } from "otpauth";

export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
/** Steps either side of now a code may come from: clocks drift and people type slowly. */
export const TOTP_WINDOW = 1;
export const RECOVERY_CODE_COUNT = 10;

/** Letters and digits that cannot be mistaken for one another when read off paper (no 0/o, 1/l/i). */
const RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz";

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totp(secret: string, label = "account", issuer = "Social"): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: "SHA1",
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
    secret: Secret.fromBase32(secret),
  });
}

/** The otpauth:// URI an authenticator app reads (as a QR code) to add the account. */
export function totpUri(secret: string, label: string, issuer: string): string {
  return totp(secret, label, issuer).toString();
}

/** The code for a time: for tests and the benchmark, which act as the authenticator app. */
export function totpCode(secret: string, at = Date.now()): string {
  return totp(secret).generate({ timestamp: at });
}

/**
 * The time step the code belongs to when it is right within the window, else undefined. The caller
 * accepts it only if the step is after the last one accepted (no replay).
 */
export function totpStep(secret: string, code: string, at = Date.now()): number | undefined {
  const delta = totp(secret).validate({ token: code, timestamp: at, window: TOTP_WINDOW });
  if (delta === null) return undefined;
  return Math.floor(at / 1000 / TOTP_PERIOD_S) + delta;
}

/** Ten codes of 10 characters in two groups of five (about 49 random bits each). */
export function newRecoveryCodes(): string[] {
  const codes: string[] = [];
  for (let i = 0; i < RECOVERY_CODE_COUNT; i++) {
    const bytes = randomBytes(10);
    let code = "";
    for (const byte of bytes) code += RECOVERY_ALPHABET[byte % RECOVERY_ALPHABET.length];
    codes.push(`${code.slice(0, 5)}-${code.slice(5)}`);
  }
  return codes;
}

/** A recovery code as typed: case, spaces and dashes do not matter. */
export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]+/g, "");
}

export function hashRecoveryCode(code: string): string {
  return createHash("sha256").update(normalizeRecoveryCode(code)).digest("hex");
}

/** The index of the code's hash among the unused ones, compared in constant time; -1 when none. */
export function findRecoveryCode(hashes: readonly string[], code: string): number {
  const wanted = Buffer.from(hashRecoveryCode(code), "hex");
  let found = -1;
  hashes.forEach((hash, i) => {
    const stored = Buffer.from(hash, "hex");
    if (stored.length === wanted.length && timingSafeEqual(stored, wanted) && found === -1) found = i;
  });
  return found;
}

/** Whether the text is shaped like a TOTP code rather than a recovery code. */
export function looksLikeTotp(code: string): boolean {
  return /^[0-9]{6}$/.test(code.trim());
}

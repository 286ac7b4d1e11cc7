/**
 * The pair a refresh answered, sealed so that only a holder of the refresh token it spent can open
 * it: AES-256-GCM under a key derived (HKDF-SHA256) from that token. The store keeps only the
 * token's SHA-256, so the sealed pair read from the store alone (a dump, a backup) opens to no one;
 * a client that retries the refresh with the same token gets the same pair back.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

export interface SealedPair {
  accessToken: string;
  refreshToken: string;
}

const VERSION = "v1";
const INFO = "social-platform refresh successor v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyOf(spentToken: string): Buffer {
  return Buffer.from(hkdfSync("sha256", spentToken, Buffer.alloc(0), INFO, 32));
}

export function sealPair(spentToken: string, pair: SealedPair): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keyOf(spentToken), iv);
  cipher.setAAD(Buffer.from(VERSION));
  const body = Buffer.concat([cipher.update(JSON.stringify(pair), "utf8"), cipher.final()]);
  return `${VERSION}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url")}`;
}

/** The sealed pair, or undefined when it was not sealed under this token (or was altered). */
export function openPair(spentToken: string, sealed: string): SealedPair | undefined {
  const [version, data] = sealed.split(".");
  if (version !== VERSION || !data) return undefined;
  const raw = Buffer.from(data, "base64url");
  if (raw.length < IV_BYTES + TAG_BYTES + 1) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", keyOf(spentToken), raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(VERSION));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const text = Buffer.concat([
      decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
      decipher.final(),
    ]).toString("utf8");
    const { accessToken, refreshToken } = JSON.parse(text) as Partial<SealedPair>;
    return typeof accessToken === "string" && typeof refreshToken === "string"
      ? { accessToken, refreshToken }
      : undefined;
  } catch {
    return undefined;
  }
}

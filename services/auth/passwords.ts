/**
 * Password hashing with argon2id (the `argon2` package: its native hashing runs on libuv's thread
 * pool, off the event loop, and measured faster here than node:crypto's argon2; see bench/).
 * Passwords are NFKC-normalised and hashed whole: no truncation, no composition rules, only a
 * refusal of the most common passwords (the zxcvbn-ts common-password dictionary).
 */
import { dictionary } from "@zxcvbn-ts/language-common";
import argon2 from "argon2";

export interface HashingOptions {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
}

const COMMON = new Set<string>((dictionary as Record<string, string[]>)["passwords-common"] ?? []);
if (COMMON.size === 0) throw new Error("The common-password dictionary did not load");

export function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

export function isCommonPassword(password: string): boolean {
  return COMMON.has(normalizePassword(password).toLowerCase());
}

export class PasswordHasher {
  private readonly options: HashingOptions;
  private dummyHash: Promise<string> | undefined;

  constructor(options: HashingOptions) {
    this.options = options;
  }

  hash(password: string): Promise<string> {
    return argon2.hash(normalizePassword(password), {
      type: argon2.argon2id,
      memoryCost: this.options.memoryKiB,
      timeCost: this.options.timeCost,
      parallelism: this.options.parallelism,
    });
  }

  verify(hash: string, password: string): Promise<boolean> {
    return argon2.verify(hash, normalizePassword(password));
  }

  /** Spends the same time as a real verification, for accounts that do not exist. */
  async verifyNothing(password: string): Promise<false> {
    this.dummyHash ??= this.hash("not-a-real-account-password");
    await argon2.verify(await this.dummyHash, normalizePassword(password));
    return false;
  }

  needsRehash(hash: string): boolean {
    return argon2.needsRehash(hash, {
      memoryCost: this.options.memoryKiB,
      timeCost: this.options.timeCost,
      parallelism: this.options.parallelism,
    });
  }
}

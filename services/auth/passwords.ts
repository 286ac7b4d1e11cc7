/**
 * Password hashing with argon2id (the `argon2` package: its native hashing runs on libuv's thread
 * pool, off the event loop, and measured faster here than node:crypto's argon2; see bench/).
 * Passwords are NFKC-normalised and hashed whole: no truncation, no composition rules, only a
 * refusal of the most common passwords (the zxcvbn-ts common-password dictionary). Lengths count
 * characters (code points) of the NFKC form, the text that is hashed, not UTF-16 units: four emoji
 * are four characters. Hashing has normalised since the first release, so every stored hash
 * verifies as it did.
 */
import { dictionary } from "@zxcvbn-ts/language-common";
import argon2 from "argon2";
import type { FieldIssue } from "../../lib/errors.ts";

export interface HashingOptions {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
}

const COMMON = new Set<string>((dictionary as Record<string, string[]>)["passwords-common"] ?? []);
if (COMMON.size === 0) throw new Error("The common-password dictionary did not load");

export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_CHARS = 1024;

export function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

/** Characters of the password as hashed: code points of its NFKC form. */
export function passwordLength(password: string): number {
  let n = 0;
  for (const _char of normalizePassword(password)) n += 1;
  return n;
}

/** What is wrong with a new password's length, in the shape of a validation detail, if anything. */
export function passwordLengthIssue(password: string): FieldIssue | undefined {
  const length = passwordLength(password);
  if (length < PASSWORD_MIN_CHARS)
    return {
      field: "password",
      type: "stringMin",
      message: `The password must be at least ${PASSWORD_MIN_CHARS} characters long`,
    };
  if (length > PASSWORD_MAX_CHARS)
    return {
      field: "password",
      type: "stringMax",
      message: `The password must be at most ${PASSWORD_MAX_CHARS} characters long`,
    };
  return undefined;
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

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import argon2 from "argon2";
import { PasswordHasher, passwordLength, passwordLengthIssue } from "../../../../services/auth/passwords.ts";

const EMOJI = "\u{1F600}";

describe("password length", () => {
  test("counts characters of the NFKC form, not UTF-16 units", () => {
    assert.equal(EMOJI.repeat(4).length, 8, "four emoji are eight UTF-16 units");
    assert.equal(passwordLength(EMOJI.repeat(4)), 4);
    assert.equal(passwordLength("e\u0301".repeat(4)), 4, "a letter and its accent compose into one");
    assert.equal(passwordLength("\uFB03".repeat(3)), 9, "the ffi ligature is three letters");
    assert.equal(passwordLength("kq8#vL2m"), 8);
  });

  test("fewer than 8 or more than 1024 characters is a stringMin or stringMax issue on password", () => {
    assert.deepEqual(passwordLengthIssue(EMOJI.repeat(4))?.type, "stringMin");
    assert.equal(passwordLengthIssue(EMOJI.repeat(4))?.field, "password");
    assert.equal(passwordLengthIssue(EMOJI.repeat(8)), undefined);
    assert.equal(passwordLengthIssue("\uFB03".repeat(3)), undefined);
    assert.equal(passwordLengthIssue(EMOJI.repeat(1024)), undefined, "1024 emoji, 2048 UTF-16 units");
    assert.equal(passwordLengthIssue("\uFDFA".repeat(57))?.type, "stringMax", "57 units, 1026 characters");
  });

  test("a hash stored by the first release (argon2id over the NFKC form) still verifies", async () => {
    const hasher = new PasswordHasher({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });
    for (const password of [EMOJI.repeat(4), "caf\u00e9-\uFB03-latte", "plain-ascii-pw"]) {
      const stored = await argon2.hash(password.normalize("NFKC"), {
        type: argon2.argon2id,
        memoryCost: 19_456,
        timeCost: 2,
        parallelism: 1,
      });
      assert.equal(await hasher.verify(stored, password), true, password);
      assert.equal(await hasher.verify(stored, `${password}x`), false);
    }
  });
});

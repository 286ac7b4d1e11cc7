import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isCommonPassword, PasswordHasher } from "../../../../services/auth/passwords.ts";

describe("passwords", () => {
  test("the most common passwords are recognised in any letter case", () => {
    for (const p of ["password", "12345678", "Password123", "QWERTYUIOP", "iloveyou"])
      assert.equal(isCommonPassword(p), true, p);
    for (const p of ["correct horse battery staple", "kq8#vL2m-ZZ"])
      assert.equal(isCommonPassword(p), false, p);
  });

  test("argon2id at the OWASP minimum, verified whole with no truncation", async () => {
    const hasher = new PasswordHasher({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });
    const long = `${"a1-".repeat(100)}end`;
    const hash = await hasher.hash(long);
    assert.match(hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    assert.equal(await hasher.verify(hash, long), true);
    assert.equal(await hasher.verify(hash, long.slice(0, -1)), false);
    assert.equal(await hasher.verifyNothing(long), false);
    assert.equal(hasher.needsRehash(hash), false);
    assert.equal(
      new PasswordHasher({ memoryKiB: 32_768, timeCost: 2, parallelism: 1 }).needsRehash(hash),
      true,
    );
  });

  test("compatible Unicode forms of a password are the same password", async () => {
    const hasher = new PasswordHasher({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });
    const hash = await hasher.hash("caf\u00e9-au-lait");
    assert.equal(await hasher.verify(hash, "cafe\u0301-au-lait"), true);
  });
});

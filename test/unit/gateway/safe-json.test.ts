import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { forbiddenKeyPath, forbiddenQueryKey } from "../../../lib/safe-json.ts";

describe("forbiddenKeyPath", () => {
  test("finds __proto__, constructor and prototype at any depth of parsed JSON", () => {
    assert.equal(forbiddenKeyPath(JSON.parse('{"__proto__":{"bio":"x"}}')), "__proto__");
    assert.equal(forbiddenKeyPath(JSON.parse('{"chats":{"constructor":1}}')), "chats.constructor");
    assert.equal(forbiddenKeyPath(JSON.parse('{"memberIds":[{"prototype":{}}]}')), "memberIds.0.prototype");
  });

  test("passes ordinary values, and the words as values rather than keys", () => {
    for (const value of [{}, [], null, 42, "__proto__", { bio: "constructor" }, { a: [{ b: { c: 1 } }] }]) {
      assert.equal(forbiddenKeyPath(value), undefined);
    }
  });

  test("a value nested 100,000 deep does not overflow the stack", () => {
    const deep = JSON.parse(`${"[".repeat(100_000)}{"__proto__":1}${"]".repeat(100_000)}`);
    assert.match(forbiddenKeyPath(deep) ?? "", /__proto__$/);
  });
});

describe("forbiddenQueryKey", () => {
  test("finds the names in any part of a key, encoded or not", () => {
    assert.equal(forbiddenQueryKey("__proto__[bio]=x"), "__proto__[bio]");
    assert.equal(forbiddenQueryKey("q=a&q%5Bconstructor%5D=1"), "q[constructor]");
    assert.equal(forbiddenQueryKey("a[b][prototype]=1"), "a[b][prototype]");
    assert.equal(forbiddenQueryKey("q=__proto__&limit=5"), undefined);
  });
});

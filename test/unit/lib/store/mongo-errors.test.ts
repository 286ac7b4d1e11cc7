import assert from "node:assert/strict";
import { test } from "node:test";
import { MongoNetworkError, MongoServerError } from "mongodb";
import { DuplicateKeyError, StoreUnavailableError } from "../../../../lib/errors.ts";
import { isUnavailable, toStoreError } from "../../../../lib/store/mongo-errors.ts";

test("socket errors the driver passes on as they are mean the store is unavailable, not a bug", () => {
  const epipe = Object.assign(new Error("This socket has been ended by the other party"), { code: "EPIPE" });
  assert.ok(isUnavailable(epipe));
  assert.ok(toStoreError(epipe, "profiles") instanceof StoreUnavailableError);
  assert.ok(isUnavailable(Object.assign(new Error("reset"), { code: "ECONNRESET" })));
  assert.ok(isUnavailable(new MongoNetworkError("closed")));
});

test("other errors stay what they are", () => {
  const bug = new TypeError("x is not a function");
  assert.equal(isUnavailable(bug), false);
  assert.equal(toStoreError(bug, "profiles"), bug);
  assert.equal(isUnavailable(Object.assign(new Error("no such file"), { code: "ENOENT" })), false);
  const dup = new MongoServerError({ message: "E11000 duplicate key error", code: 11000 });
  assert.ok(toStoreError(dup, "profiles") instanceof DuplicateKeyError);
});

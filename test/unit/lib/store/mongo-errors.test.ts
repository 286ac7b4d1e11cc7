import assert from "node:assert/strict";
import { test } from "node:test";
import { MongoNetworkError, MongoServerError } from "mongodb";
import { DuplicateKeyError, StoreUnavailableError } from "../../../../lib/errors.ts";
import { indexNameInMessage, isUnavailable, toStoreError } from "../../../../lib/store/mongo-errors.ts";

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

test("FerretDB's unique-index errors from an update name the index, on SQLite and on PostgreSQL", () => {
  const sqlite = new MongoServerError({
    message: "[update.go:114] UNIQUE constraint failed: index 'accounts_0a1b2c3d_email_unique' (2067)",
    code: 1,
  });
  const postgres = new MongoServerError({
    message:
      '[collection.go:218 postgresql.(*collection).UpdateAll.func1] ERROR: duplicate key value violates unique constraint "accounts_0a1b2c3d_username_unique_2373151d_idx" (SQLSTATE 23505)',
    code: 1,
  });
  for (const [err, index] of [
    [sqlite, "email_unique"],
    [postgres, "username_unique"],
  ] as const) {
    const mapped = toStoreError(err, "accounts");
    assert.ok(mapped instanceof DuplicateKeyError);
    assert.equal(indexNameInMessage(err, "accounts"), index);
  }
  const other = new MongoServerError({ message: "ERROR: deadlock detected (SQLSTATE 40P01)", code: 1 });
  assert.equal(toStoreError(other, "accounts"), other);
});

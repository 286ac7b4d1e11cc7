import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MethodTable } from "../../../gateway/method-table.ts";
import { ROUTES } from "../../../gateway/routes.ts";

describe("MethodTable", () => {
  const table = new MethodTable(ROUTES);

  test("a path's methods are those of every route template it matches, with HEAD and OPTIONS", () => {
    assert.deepEqual(table.allowed("/users/me"), ["GET", "HEAD", "PATCH", "DELETE", "OPTIONS"]);
    assert.deepEqual(table.allowed("/users/abc"), ["GET", "HEAD", "OPTIONS"]);
    assert.deepEqual(table.allowed("/chats/c1/messages/m1"), ["PATCH", "DELETE", "OPTIONS"]);
    assert.deepEqual(table.allowed("/auth/logout/"), ["POST", "OPTIONS"]);
  });

  test("paths no route has are unknown", () => {
    for (const path of ["/", "/index.html", "/users/a/b", "/chats/c1/nothing"]) {
      assert.equal(table.allowed(path), undefined, path);
    }
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { LocalCache } from "../../../lib/local-cache.ts";

test("a value is kept until dropped, and a value read before a drop is not kept after it", () => {
  const cache = new LocalCache<{ v: number }>({ ttlMs: 60_000, max: 10 });
  assert.equal(cache.enabled, true);
  cache.set("a", { v: 1 }, cache.mark());
  assert.deepEqual(cache.get("a"), { v: 1 });

  const beforeDrop = cache.mark();
  cache.drop(["a"]);
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.unchanged(beforeDrop), false);
  cache.set("b", { v: 2 }, beforeDrop);
  assert.equal(cache.get("b"), undefined, "read before the drop of another key: not kept either");

  const afterDrop = cache.mark();
  assert.equal(cache.unchanged(afterDrop), true);
  cache.set("b", { v: 3 }, afterDrop);
  assert.deepEqual(cache.get("b"), { v: 3 });
});

test("a lifetime of 0 keeps nothing", () => {
  const cache = new LocalCache<{ v: number }>({ ttlMs: 0, max: 10 });
  assert.equal(cache.enabled, false);
  cache.set("a", { v: 1 }, cache.mark());
  assert.equal(cache.get("a"), undefined);
});

test("values expire after their lifetime", async () => {
  const cache = new LocalCache<{ v: number }>({ ttlMs: 20, max: 10 });
  cache.set("a", { v: 1 }, cache.mark());
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(cache.get("a"), undefined);
});

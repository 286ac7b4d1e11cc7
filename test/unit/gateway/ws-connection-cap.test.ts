import assert from "node:assert/strict";
import { test } from "node:test";
import { connectionCounter, LocalConnectionCounter } from "../../../gateway/ws-connection-cap.ts";

test("a lone gateway admits up to the cap per user and counts each user apart", async () => {
  const counter = new LocalConnectionCounter(2);
  assert.deepEqual(
    await Promise.all([
      counter.acquire("a"),
      counter.acquire("a"),
      counter.acquire("a"),
      counter.acquire("b"),
    ]),
    [true, true, false, true],
  );
  counter.release("a");
  assert.equal(await counter.acquire("a"), true);
  assert.equal(await counter.acquire("a"), false);
  counter.release("b");
  counter.release("b");
  assert.equal(await counter.acquire("b"), true, "a release too many does not go below zero");
  assert.equal(await counter.acquire("b"), true);
  assert.equal(await counter.acquire("b"), false);
  await counter.stop();
});

test("without REDIS_URL the count is kept in memory", () => {
  const counter = connectionCounter({ max: 1, redisUrl: undefined, namespace: "t" });
  assert.equal(counter.constructor, LocalConnectionCounter);
});

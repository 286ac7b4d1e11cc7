import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServerFrame } from "../../../../lib/contracts.ts";
import {
  type Delivery,
  DeliveryOutbox,
  MAX_BYTES_PER_CALL,
  sizeBound,
} from "../../../../services/chat/delivery-outbox.ts";

const frame = (n: number) => ({ type: "typing", chatId: "c", userId: `u${n}` }) as ServerFrame;
const nextTurn = () => new Promise((r) => setImmediate(r));

test("the frames of one moment go to each gateway in one call, in order; the next moment's in another", async () => {
  const calls: { nodeID: string; deliveries: Delivery[] }[] = [];
  const outbox = new DeliveryOutbox({
    send: async (nodeID, deliveries) => calls.push({ nodeID, deliveries }),
    failed: () => assert.fail("no call fails"),
  });
  outbox.add("gw-1", { userIds: ["a"], frame: frame(1) });
  outbox.add("gw-2", { userIds: ["b"], frame: frame(1) });
  outbox.add("gw-1", { userIds: ["a", "c"], frame: frame(2) });
  assert.equal(calls.length, 0, "nothing is sent before the moment ends");
  await nextTurn();
  assert.deepEqual(
    calls.map((c) => [c.nodeID, c.deliveries.map((d) => (d.frame as { userId: string }).userId)]),
    [
      ["gw-1", ["u1", "u2"]],
      ["gw-2", ["u1"]],
    ],
  );
  outbox.add("gw-2", { userIds: ["b"], frame: frame(3) });
  await nextTurn();
  assert.equal(calls.length, 3);
  assert.deepEqual(calls[2]?.deliveries[0]?.userIds, ["b"]);
});

test("a gateway's frames are split into calls of at most maxPerCall; a failed call reports its frames", async () => {
  const sizes: number[] = [];
  const failures: [string, number][] = [];
  let call = 0;
  const outbox = new DeliveryOutbox(
    {
      send: async (_nodeID, deliveries) => {
        sizes.push(deliveries.length);
        if (++call === 2) throw new Error("gateway gone");
      },
      failed: (nodeID, frames) => failures.push([nodeID, frames]),
    },
    { perCall: 3 },
  );
  for (let i = 0; i < 7; i++) outbox.add("gw-1", { userIds: ["a"], frame: frame(i) });
  await nextTurn();
  await nextTurn();
  assert.deepEqual(sizes, [3, 3, 1]);
  assert.deepEqual(failures, [["gw-1", 3]]);
});

test("calls stay under the size bound: long messages to large groups are split by size, and the bound holds", async () => {
  const sizes: number[] = [];
  const outbox = new DeliveryOutbox({
    send: async (_nodeID, deliveries) => {
      sizes.push(Buffer.byteLength(JSON.stringify({ deliveries })));
    },
    failed: () => assert.fail("no call fails"),
  });
  const members = Array.from({ length: 100 }, (_, i) => `user-${i}-${"x".repeat(30)}`);
  // 4,000 characters that all need escaping in JSON, the worst case.
  const text = "\u0001".repeat(4_000);
  for (let i = 0; i < 200; i++) {
    const frame = { type: "new_message", chatId: "c", seq: i, message: text } as unknown as ServerFrame;
    assert.ok(
      sizeBound({ userIds: members, frame }) >=
        Buffer.byteLength(JSON.stringify({ userIds: members, frame })),
    );
    outbox.add("gw-1", { userIds: members, frame });
  }
  await nextTurn();
  assert.ok(sizes.length > 1, "split into several calls");
  for (const size of sizes) assert.ok(size <= MAX_BYTES_PER_CALL + 1_024, `a call of ${size} bytes`);
});

test("a gateway has at most inFlight calls at once; the frames after them wait and go in order", async () => {
  const open: { deliveries: Delivery[]; done: () => void }[] = [];
  const outbox = new DeliveryOutbox(
    {
      send: (_nodeID, deliveries) => new Promise<void>((done) => open.push({ deliveries, done })),
      failed: () => assert.fail("no call fails"),
    },
    { perCall: 2, inFlight: 2 },
  );
  for (let i = 0; i < 9; i++) outbox.add("gw-1", { userIds: ["a"], frame: frame(i) });
  await nextTurn();
  assert.equal(open.length, 2, "two calls in flight");
  assert.equal(outbox.queued("gw-1"), 5, "the rest wait");
  outbox.add("gw-2", { userIds: ["b"], frame: frame(0) });
  await nextTurn();
  assert.equal(open.length, 3, "another gateway is not held up");
  const seen: string[] = [];
  while (open.length > 0) {
    const call = open.shift() as (typeof open)[number];
    seen.push(...call.deliveries.map((d) => `${d.userIds[0]}:${(d.frame as { userId: string }).userId}`));
    call.done();
    await nextTurn();
    await nextTurn();
  }
  assert.deepEqual(
    seen.filter((s) => s.startsWith("a:")),
    Array.from({ length: 9 }, (_, i) => `a:u${i}`),
    "every frame sent once, in order",
  );
  assert.equal(outbox.queued("gw-1"), 0);
});

test("a gateway that falls too far behind loses its oldest frames, reported as failed once per call", async () => {
  const open: { deliveries: Delivery[]; done: () => void }[] = [];
  const failures: [string, number][] = [];
  const outbox = new DeliveryOutbox(
    {
      send: (_nodeID, deliveries) => new Promise<void>((done) => open.push({ deliveries, done })),
      failed: (nodeID, frames) => failures.push([nodeID, frames]),
    },
    { perCall: 10, inFlight: 1, queued: 5 },
  );
  outbox.add("gw-1", { userIds: ["a"], frame: frame(0) });
  await nextTurn();
  assert.equal(open.length, 1);
  for (let i = 1; i <= 12; i++) outbox.add("gw-1", { userIds: ["a"], frame: frame(i) });
  assert.equal(outbox.queued("gw-1"), 5, "no more than the bound waits");
  (open.shift() as (typeof open)[number]).done();
  await nextTurn();
  await nextTurn();
  assert.deepEqual(failures, [["gw-1", 7]], "the 7 oldest waiting frames, in one report");
  assert.deepEqual(
    open[0]?.deliveries.map((d) => (d.frame as { userId: string }).userId),
    ["u8", "u9", "u10", "u11", "u12"],
    "the newest ones go",
  );
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServerFrame } from "../../../../lib/contracts.ts";
import { type Delivery, DeliveryOutbox } from "../../../../services/chat/delivery-outbox.ts";

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
    3,
  );
  for (let i = 0; i < 7; i++) outbox.add("gw-1", { userIds: ["a"], frame: frame(i) });
  await nextTurn();
  await nextTurn();
  assert.deepEqual(sizes, [3, 3, 1]);
  assert.deepEqual(failures, [["gw-1", 3]]);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatsRepository, LastMessage } from "../../../../services/chat/chats.repo.ts";
import { LastMessageWriter } from "../../../../services/chat/last-message-writer.ts";

const last = (seq: number): LastMessage => ({
  id: `m${seq}`,
  seq,
  senderId: "u",
  message: "x",
  createdAt: new Date(0),
});

test("summary writes run at most maxInFlight at once, and each chat ends with its newest summary", async () => {
  let running = 0;
  let peak = 0;
  const written = new Map<string, number>();
  const chats = {
    recordMessage: async (chatId: string, l: LastMessage) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      written.set(chatId, Math.max(written.get(chatId) ?? 0, l.seq));
      running -= 1;
    },
  } as unknown as ChatsRepository;
  const writer = new LastMessageWriter(chats, (err) => assert.fail(String(err)), 2, 20);
  for (let c = 0; c < 20; c++) writer.record(`c${c}`, last(1));
  for (let c = 0; c < 20; c++) writer.record(`c${c}`, last(2));
  await writer.flushed();
  assert.equal(peak, 2);
  assert.equal(written.size, 20);
  for (const seq of written.values()) assert.equal(seq, 2);
});

test("the newest summary recorded is known until it is written", async () => {
  const written: number[] = [];
  let release: (() => void) | undefined;
  const chats = {
    recordMessage: async (_chatId: string, l: LastMessage) => {
      await new Promise<void>((r) => (release = r));
      written.push(l.seq);
    },
  } as unknown as ChatsRepository;
  const writer = new LastMessageWriter(chats, (err) => assert.fail(String(err)), 2, 10);
  assert.equal(writer.latest("c"), undefined);
  writer.record("c", last(1));
  await new Promise((r) => setImmediate(r));
  assert.equal(writer.latest("c")?.seq, 1, "known while its write runs");
  writer.record("c", last(3));
  writer.record("c", last(2));
  assert.equal(writer.latest("c")?.seq, 3, "a late older summary does not replace a newer one");
  for (let i = 0; i < 50 && written.length < 2; i++) {
    release?.();
    await new Promise((r) => setTimeout(r, 15));
  }
  await writer.flushed();
  assert.deepEqual(written, [1, 3]);
  assert.equal(writer.latest("c"), undefined, "nothing is unwritten any more");
});

test("a chat's summary is written at once after a quiet interval, then at most once per interval, newest first", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
  const writes: { at: number; seq: number }[] = [];
  const chats = {
    recordMessage: async (_chatId: string, l: LastMessage) => {
      writes.push({ at: Date.now(), seq: l.seq });
    },
  } as unknown as ChatsRepository;
  const writer = new LastMessageWriter(chats, (err) => assert.fail(String(err)), 2, 1_000);
  const settle = () => new Promise((r) => setImmediate(r));
  const advance = async (ms: number) => {
    t.mock.timers.tick(ms);
    await settle();
  };

  writer.record("c", last(1));
  await settle();
  assert.deepEqual(writes, [{ at: 0, seq: 1 }], "a chat not written lately is written at once");
  // A message every 100 ms: none is written before the interval after the last write is over.
  for (let seq = 2; seq <= 10; seq++) {
    await advance(100);
    writer.record("c", last(seq));
  }
  assert.equal(writes.length, 1);
  assert.equal(writer.latest("c")?.seq, 10, "the unwritten summary is known meanwhile");
  await advance(100);
  assert.deepEqual(writes.at(-1), { at: 1_000, seq: 10 }, "the newest, when the interval is over");
  await advance(500);
  writer.record("c", last(11));
  await settle();
  assert.equal(writes.length, 2, "a message 500 ms after a write waits");
  await advance(500);
  assert.deepEqual(writes.at(-1), { at: 2_000, seq: 11 });
  // Quiet for longer than the interval: the next summary is written at once again.
  await advance(3_000);
  assert.equal(writer.latest("c"), undefined);
  writer.record("c", last(12));
  await settle();
  assert.deepEqual(writes.at(-1), { at: 5_000, seq: 12 });
  assert.equal(writes.length, 4);
});

test("flushed() writes what waits for its interval without waiting it out", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
  const written: number[] = [];
  const chats = {
    recordMessage: async (_chatId: string, l: LastMessage) => {
      written.push(l.seq);
    },
  } as unknown as ChatsRepository;
  const writer = new LastMessageWriter(chats, (err) => assert.fail(String(err)), 2, 60_000);
  writer.record("a", last(1));
  writer.record("b", last(1));
  await new Promise((r) => setImmediate(r));
  writer.record("a", last(2));
  await writer.flushed();
  assert.deepEqual(written, [1, 1, 2]);
  assert.equal(writer.latest("a"), undefined);
  // After a flush, the interval applies again.
  writer.record("a", last(3));
  await new Promise((r) => setImmediate(r));
  writer.record("a", last(4));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(written, [1, 1, 2, 3]);
  await writer.flushed();
  assert.deepEqual(written, [1, 1, 2, 3, 4]);
});

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

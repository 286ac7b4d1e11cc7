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
  const writer = new LastMessageWriter(chats, (err) => assert.fail(String(err)), 2);
  for (let c = 0; c < 20; c++) writer.record(`c${c}`, last(1));
  for (let c = 0; c < 20; c++) writer.record(`c${c}`, last(2));
  await writer.flushed();
  assert.equal(peak, 2);
  assert.equal(written.size, 20);
  for (const seq of written.values()) assert.equal(seq, 2);
});

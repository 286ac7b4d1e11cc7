import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageAppender } from "../../../../services/chat/message-appender.ts";
import type { Message, MessagesRepository, NewMessage } from "../../../../services/chat/messages.repo.ts";

/** An in-memory stand-in for the messages collection: unique `_id` (chatId_seq) and clientMsgId. */
class FakeMessages {
  readonly docs = new Map<string, Message>();
  readonly inserts: number[][] = [];
  appends = 0;
  /** When set, the next insertMany waits for it. */
  gate: Promise<void> | undefined;
  failNext: Error | undefined;

  newMessage(input: NewMessage, seq: number): Message {
    const now = new Date(0);
    return { ...input, _id: `${input.chatId}_${seq}`, seq, createdAt: now, updatedAt: now };
  }

  private refuses(doc: Message): boolean {
    if (this.docs.has(doc._id)) return true;
    for (const d of this.docs.values())
      if (d.chatId === doc.chatId && d.senderId === doc.senderId && d.clientMsgId === doc.clientMsgId)
        return true;
    return false;
  }

  async insertMany(messages: Message[]): Promise<number> {
    this.inserts.push(messages.map((m) => m.seq));
    const gate = this.gate;
    this.gate = undefined;
    await gate;
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    for (const [i, m] of messages.entries()) {
      if (this.refuses(m)) return i;
      this.docs.set(m._id, m);
    }
    return messages.length;
  }

  async append(input: NewMessage, seqHint: number): Promise<{ message: Message; created: boolean }> {
    this.appends += 1;
    for (const d of this.docs.values())
      if (d.chatId === input.chatId && d.senderId === input.senderId && d.clientMsgId === input.clientMsgId)
        return { message: d, created: false };
    let seq = seqHint + 1;
    while (this.docs.has(`${input.chatId}_${seq}`)) seq += 1;
    const message = this.newMessage(input, seq);
    this.docs.set(message._id, message);
    return { message, created: true };
  }

  seqsOf(chatId: string): number[] {
    return [...this.docs.values()]
      .filter((d) => d.chatId === chatId)
      .map((d) => d.seq)
      .sort((a, b) => a - b);
  }
}

function setup(maxBatch?: number, maxInFlight?: number) {
  const messages = new FakeMessages();
  const known = new Map<string, number>();
  const appender = new MessageAppender(
    {
      messages: messages as unknown as MessagesRepository,
      knownSeq: (chatId) => known.get(chatId) ?? 0,
      stored: (chatId, seq) => known.set(chatId, Math.max(known.get(chatId) ?? 0, seq)),
    },
    maxBatch,
    maxInFlight,
  );
  let n = 0;
  const send = (chatId: string, clientMsgId = `m${++n}`, senderId = "u1") =>
    appender.append({ chatId, senderId, message: "hi", clientMsgId }, 0);
  return { messages, known, appender, send };
}

test("sends of one moment are one insert; each chat's messages get its next seqs in arrival order", async () => {
  const { messages, send } = setup();
  const results = await Promise.all([send("a"), send("b"), send("a"), send("c"), send("a")]);
  assert.deepEqual(messages.inserts, [[1, 1, 2, 1, 3]]);
  assert.deepEqual(
    results.map((r) => [r.message.chatId, r.message.seq, r.created]),
    [
      ["a", 1, true],
      ["b", 1, true],
      ["a", 2, true],
      ["c", 1, true],
      ["a", 3, true],
    ],
  );
  // The next moment's sends go on from there.
  assert.equal((await send("a")).message.seq, 4);
  assert.deepEqual(messages.seqsOf("a"), [1, 2, 3, 4]);
});

test("a chat whose batch is being stored waits for it; other chats go in the next batch meanwhile", async () => {
  const { messages, send } = setup(500, 2);
  let open: () => void = () => undefined;
  messages.gate = new Promise((resolve) => (open = resolve));
  const first = send("a");
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(messages.inserts, [[1]], "the first send went at once");
  const laterA = send("a");
  const b = send("b");
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(messages.inserts, [[1], [1]], "b went in a second batch; a's next one waited");
  open();
  assert.equal((await first).message.seq, 1);
  assert.equal((await b).message.chatId, "b");
  assert.equal((await laterA).message.seq, 2);
  assert.deepEqual(messages.inserts, [[1], [1], [2]]);
});

test("a refused document is stored one at a time; those after it are numbered again, with no gap", async () => {
  const { messages, known, send } = setup();
  // Another chat node stored seq 2 of chat a.
  messages.docs.set("a_2", {
    ...messages.newMessage({ chatId: "a", senderId: "u9", message: "x", clientMsgId: "other" }, 2),
  });
  const results = await Promise.all([send("a"), send("a"), send("b"), send("a")]);
  assert.deepEqual(
    results.map((r) => r.message.seq),
    [1, 3, 1, 4],
  );
  assert.ok(results.every((r) => r.created));
  assert.equal(messages.appends, 1, "only the refused one took the one-at-a-time path");
  assert.deepEqual(messages.inserts, [
    [1, 2, 1, 3],
    [1, 4],
  ]);
  assert.deepEqual(messages.seqsOf("a"), [1, 2, 3, 4]);
  assert.equal(known.get("a"), 4);
});

test("a resend of a stored message resolves to it, not created, and the sends after it are stored", async () => {
  const { messages, send } = setup();
  const first = await send("a", "same");
  const [again, next] = await Promise.all([send("a", "same"), send("a", "new")]);
  assert.equal(again.created, false);
  assert.equal(again.message._id, first.message._id);
  assert.equal(next.created, true);
  assert.equal(next.message.seq, 2);
  assert.deepEqual(messages.seqsOf("a"), [1, 2]);
});

test("a store failure rejects the sends not stored; the next sends are stored", async () => {
  const { messages, send } = setup();
  messages.failNext = new Error("store down");
  const failed = await Promise.allSettled([send("a"), send("b")]);
  assert.deepEqual(
    failed.map((r) => r.status),
    ["rejected", "rejected"],
  );
  assert.equal((await send("a")).message.seq, 1);
});

test("a batch holds at most maxBatch messages", async () => {
  const { messages, send } = setup(3, 1);
  await Promise.all(Array.from({ length: 7 }, (_, i) => send(`c${i}`)));
  assert.deepEqual(
    messages.inserts.map((b) => b.length),
    [3, 3, 1],
  );
});

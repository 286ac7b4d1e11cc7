/** ResumeReader on the embedded store: what a resume replays, names, refuses and leaves for later. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openStore } from "../../../../lib/store/index.ts";
import type { Store } from "../../../../lib/store/types.ts";
import { type Chat, ChatsRepository } from "../../../../services/chat/chats.repo.ts";
import { MessagesRepository } from "../../../../services/chat/messages.repo.ts";
import { ResumeReader } from "../../../../services/chat/resume-reader.ts";
import { tempDirs } from "../../../support/temp-dirs.ts";

const tempDir = tempDirs("resume-reader-");
let store: Store;
let chats: ChatsRepository;
let messages: MessagesRepository;
let reader: ResumeReader;
/** Chat lookups the store answered. */
let chatQueries = 0;

before(async () => {
  store = await openStore({ dataDir: await tempDir() });
  chats = new ChatsRepository(store.collection("chats"));
  messages = new MessagesRepository(store.collection("messages"));
  await Promise.all([chats.init(), messages.init()]);
  const among = chats.memberChatsAmong.bind(chats);
  chats.memberChatsAmong = (userId, ids) => {
    chatQueries += 1;
    return among(userId, ids);
  };
  // The summaries are never written here: every newest seq is found from the messages.
  reader = new ResumeReader({ chats, messages, knownSeq: (chat: Chat) => chat.lastSeq });
});
after(() => store.close());

let chatCounter = 0;
async function chatOf(members: string[], count: number): Promise<string> {
  chatCounter += 1;
  const id = `chat${chatCounter}`;
  await chats.insert({ _id: id, type: "group", name: id, ownerId: members[0] ?? null, members });
  for (let i = 1; i <= count; i++) {
    await messages.append(
      { chatId: id, senderId: members[0] as string, message: `m${i}`, clientMsgId: `c${i}` },
      i - 1,
    );
  }
  return id;
}

const seqsOf = (answer: { messages: { chatId: string; seq: number }[] }, chatId: string) =>
  answer.messages.filter((m) => m.chatId === chatId).map((m) => m.seq);

test("replays at most `limit` per chat and names the rest; ids that are not the user's come back forbidden", async () => {
  const big = await chatOf(["ann", "bob"], 9);
  const small = await chatOf(["ann", "bob"], 2);
  const theirs = await chatOf(["cat", "dan"], 3);
  chatQueries = 0;
  const answer = await reader.read("bob", [
    { id: big, after: 1, limit: 4 },
    { id: small, after: 0, limit: 4 },
    { id: theirs, after: 0, limit: 4 },
    { id: "missing", after: 0, limit: 4 },
  ]);
  assert.equal(chatQueries, 1, "one query for all the chats");
  assert.deepEqual(seqsOf(answer, big), [2, 3, 4, 5]);
  assert.deepEqual(seqsOf(answer, small), [1, 2]);
  assert.deepEqual(answer.truncated, [{ chatId: big, fromSeq: 6, toSeq: 9 }]);
  assert.deepEqual(answer.forbidden.sort(), [theirs, "missing"].sort());
  assert.deepEqual(answer.next, []);
});

test("what does not fit in one answer comes back in `next`, the per-chat limit kept across answers", async () => {
  const a = await chatOf(["eve", "fay"], 7);
  const b = await chatOf(["eve", "fay"], 7);
  const first = await reader.read(
    "fay",
    [
      { id: a, after: 0, limit: 6 },
      { id: b, after: 0, limit: 6 },
    ],
    8,
  );
  assert.deepEqual(seqsOf(first, a), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(seqsOf(first, b), [1, 2]);
  assert.deepEqual(first.truncated, [{ chatId: a, fromSeq: 7, toSeq: 7 }]);
  assert.deepEqual(first.next, [{ id: b, after: 2, limit: 4 }]);
  const second = await reader.read("fay", first.next, 8);
  assert.deepEqual(seqsOf(second, b), [3, 4, 5, 6]);
  assert.deepEqual(second.truncated, [{ chatId: b, fromSeq: 7, toSeq: 7 }]);
  assert.deepEqual(second.next, []);
});

test("a chat seen up to its end, or past it, replays nothing", async () => {
  const id = await chatOf(["gus", "hal"], 3);
  for (const after of [3, Number.MAX_SAFE_INTEGER]) {
    const answer = await reader.read("hal", [{ id, after, limit: 10 }]);
    assert.deepEqual(answer, { messages: [], truncated: [], forbidden: [], next: [] });
  }
});

test("an empty list answers nothing", async () => {
  assert.deepEqual(await reader.read("ivy", []), { messages: [], truncated: [], forbidden: [], next: [] });
});

/**
 * Resends answered by the chat node that stored the message, without a store round trip: after an
 * overload most sends are resends, and in the store each one is refused by the clientMsgId index,
 * which breaks the batch it is in.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ForbiddenError } from "../../../../lib/errors.ts";
import { DiskBlobStore } from "../../../../lib/files/disk-blob-store.ts";
import { openStore } from "../../../../lib/store/index.ts";
import type { Store } from "../../../../lib/store/types.ts";
import { BlocksRepository } from "../../../../services/chat/blocks.repo.ts";
import { ChatLogic } from "../../../../services/chat/chat.logic.ts";
import { ChatsRepository } from "../../../../services/chat/chats.repo.ts";
import { MessagesRepository } from "../../../../services/chat/messages.repo.ts";
import { OwnReadMarks } from "../../../../services/chat/own-read-marks.ts";
import { PinsRepository } from "../../../../services/chat/pins.repo.ts";
import { ReactionsRepository } from "../../../../services/chat/reactions.repo.ts";
import { ReceiptsRepository } from "../../../../services/chat/receipts.repo.ts";
import { UploadsRepository, UploadUsageRepository } from "../../../../services/chat/uploads.repo.ts";
import { Uploads } from "../../../../services/chat/uploads.ts";

let dir: string;
let store: Store;
let logic: ChatLogic;
let messages: MessagesRepository;
let uploads: Uploads;
const writes = { insertMany: 0, append: 0 };

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "chat-logic-"));
  store = await openStore({ dataDir: dir });
  const chats = new ChatsRepository(store.collection("chats"));
  messages = new MessagesRepository(store.collection("messages"));
  const receipts = new ReceiptsRepository(store.collection("receipts"));
  await Promise.all([chats.init(), messages.init(), receipts.init()]);
  // Counts what reaches the store's write paths for new messages.
  const insertMany = messages.insertMany.bind(messages);
  messages.insertMany = (docs) => {
    writes.insertMany += 1;
    return insertMany(docs);
  };
  const append = messages.append.bind(messages);
  messages.append = (input, seqHint) => {
    writes.append += 1;
    return append(input, seqHint);
  };
  uploads = new Uploads({
    uploads: new UploadsRepository(store.collection("uploads")),
    usage: new UploadUsageRepository(store.collection("upload_usage")),
    blobs: await DiskBlobStore.open(path.join(dir, "files")),
    quotaBytes: 1_000_000,
    orphanTtlMs: 86_400_000,
    isMember: async () => true,
    warn: () => undefined,
  });
  logic = new ChatLogic({
    uploads,
    chats,
    messages,
    receipts,
    ownReads: new OwnReadMarks(receipts, () => undefined),
    reactions: new ReactionsRepository(store.collection("reactions")),
    pins: new PinsRepository(store.collection("pins")),
    blocks: new BlocksRepository(store.collection("blocks")),
    limits: { maxGroupMembers: 10, maxMessageLength: 4_000 },
    userExists: async () => true,
    userIdByUsername: async () => null,
    profiles: async () => [],
    blocksChanged: () => undefined,
    recordLast: () => undefined,
    latestLast: () => undefined,
    membersChanged: () => undefined,
    memberCacheTtlMs: 0,
  });
});

after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test("a resend is answered with the first message, from the node's memory", async () => {
  const chat = await logic.createGroup("ann", "g", ["bob"]);
  const first = await logic.send("ann", chat.id, "hello", "c-1");
  assert.equal(first.created, true);
  const before = { ...writes };
  const again = await logic.send("ann", chat.id, "hello, edited before the ack came", "c-1");
  assert.equal(again.created, false);
  assert.deepEqual(again.message, first.message, "the first message, not the resend's text");
  assert.deepEqual(writes, before, "no write reached the store");
  assert.equal((await logic.history("ann", chat.id, { limit: 10 })).messages.length, 1);
});

test("the same clientMsgId from another sender is a new message", async () => {
  const chat = await logic.createGroup("ann", "g2", ["bob"]);
  const a = await logic.send("ann", chat.id, "from ann", "same");
  const b = await logic.send("bob", chat.id, "from bob", "same");
  assert.equal(b.created, true);
  assert.notEqual(a.message.id, b.message.id);
  assert.deepEqual([a.message.seq, b.message.seq], [1, 2]);
});

test("a resend after an edit through this node answers the message as it is now", async () => {
  const chat = await logic.createGroup("ann", "g3", ["bob"]);
  const first = await logic.send("ann", chat.id, "draft", "c-edit");
  await logic.edit("ann", chat.id, first.message.id, "final");
  const again = await logic.send("ann", chat.id, "draft", "c-edit");
  assert.equal(again.created, false);
  assert.equal(again.message.id, first.message.id);
  assert.equal(again.message.message, "final");
});

test("a resend by someone no longer a member is refused, known or not", async () => {
  const chat = await logic.createGroup("ann", "g4", ["bob"]);
  await logic.send("bob", chat.id, "hi", "c-left");
  await logic.removeMember("bob", chat.id, "bob");
  await assert.rejects(logic.send("bob", chat.id, "hi", "c-left"), ForbiddenError);
});

test("a resend after the first send failed to attach its files attaches them", async () => {
  const chat = await logic.createGroup("ann", "g-files", ["bob"]);
  const begun = await uploads.begin("ann", "a.txt", "text/plain", 1);
  await uploads.commit("ann", begun.id, { size: 1, sha256: "d".repeat(64) });
  const attach = uploads.attach.bind(uploads);
  let failures = 1;
  uploads.attach = (ids, messageId) => {
    if (failures-- > 0) return Promise.reject(new Error("the store blinked"));
    return attach(ids, messageId);
  };
  try {
    await assert.rejects(logic.send("ann", chat.id, "", "c-file", undefined, [begun.id]), /blinked/);
    const again = await logic.send("ann", chat.id, "", "c-file", undefined, [begun.id]);
    assert.equal(again.created, false, "the message was stored the first time");
    assert.deepEqual(
      again.message.attachments.map((a) => a.id),
      [begun.id],
    );
    const bob = await uploads.access("bob", begun.id);
    assert.deepEqual(bob.refs, [again.message.id], "attached by the resend: a member reads it");
  } finally {
    uploads.attach = attach;
  }
});

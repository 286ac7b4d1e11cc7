/**
 * The chat service's part of account deletion and export, on the embedded platform:
 * `chat.eraseUser` (uploads, the files and text of messages, blocks, mutes) and `chat.exportUser`
 * (pages of one's own chats, messages and uploads).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { MessageView, UploadView, UserDataPage } from "../../lib/contracts.ts";
import type { Collection, Doc, Store } from "../../lib/store/types.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { get, PDF, png, rawUpload, storedFiles } from "../support/uploads.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;

interface User {
  api: ApiClient;
  id: string;
  token: string;
}

let platform: Platform;
let filesDir: string;

async function user(): Promise<User> {
  const api = new ApiClient(platform.url);
  const res = await api.register(newUser("e"));
  return { api, id: res.user.id, token: res.accessToken };
}

async function upload(u: User, name: string, body: Buffer): Promise<UploadView> {
  const res = await rawUpload(platform.url, u.token, name, [body], { contentLength: body.length });
  assert.equal(res.status, 201, `upload ${name}: ${res.status} ${res.body.toString()}`);
  return res.json<UploadView>();
}

/** A collection of the chat service's store, to look at what it keeps. */
function collection<T extends Doc>(name: string): Collection<T> {
  const chat = platform.broker.getLocalService("chat") as unknown as { store: Store };
  return chat.store.collection<T>(name);
}

/** The stored files (bytes and thumbnails) of an upload. */
async function filesOf(uploadId: string): Promise<string[]> {
  const { files } = await storedFiles(filesDir);
  return files.filter((f) => path.basename(f).startsWith(uploadId));
}

function exportPage(userId: string, after?: string, limit?: number): Promise<UserDataPage> {
  const params: { userId: string; after?: string; limit?: number } = { userId };
  if (after !== undefined) params.after = after;
  if (limit !== undefined) params.limit = limit;
  return platform.broker.call("chat.exportUser", params) as Promise<UserDataPage>;
}

async function exportAll(userId: string, limit: number): Promise<UserDataPage[]> {
  const pages: UserDataPage[] = [];
  let next: string | undefined;
  do {
    const page = await exportPage(userId, next, limit);
    pages.push(page);
    next = page.next ?? undefined;
    assert.ok(pages.length < 100, "the export ends");
  } while (next !== undefined);
  return pages;
}

function erase(userId: string, eraseMessages: boolean): Promise<unknown> {
  return platform.broker.call("chat.eraseUser", { userId, eraseMessages });
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; type: string; data: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as { code: number; type: string; data: unknown };
  }
  assert.fail("expected a refusal");
}

/** Every message of a chat as a member's history shows it. */
async function historyOf(u: User, chatId: string): Promise<MessageView[]> {
  return (await u.api.history(chatId, { limit: 100 })).messages;
}

before(async () => {
  platform = await startEmbedded();
  filesDir = path.join(platform.dataDir, "files");
});
after(() => platform.stop());

describe("chat.exportUser", () => {
  let alice: User;
  let bob: User;
  const sent: MessageView[] = [];
  let uploads: UploadView[];
  let chatIds: string[];

  before(async () => {
    [alice, bob] = await Promise.all([user(), user()]);
    const direct = await alice.api.openDirect(bob.id);
    const group = await alice.api.openGroup("export", [bob.id]);
    const groupOfBob = await bob.api.openGroup("bob's", []);
    chatIds = [direct.id, group.id];
    uploads = [await upload(alice, "a.png", await png(32, 32)), await upload(alice, "a.pdf", PDF)];
    const other = await upload(bob, "b.pdf", PDF);
    sent.push(await alice.api.sendMessage(direct.id, "first", { attachmentIds: [uploads[0]?.id as string] }));
    await bob.api.sendMessage(direct.id, "from bob", { attachmentIds: [other.id] });
    await bob.api.sendMessage(groupOfBob.id, "bob alone");
    for (let i = 0; i < 6; i++) {
      sent.push(await alice.api.sendMessage(i % 2 ? direct.id : group.id, `message ${i}`));
    }
    sent.push(await alice.api.sendMessage(group.id, "", { attachmentIds: [uploads[1]?.id as string] }));
    sent.push(await alice.api.sendMessage(group.id, "a reply", { replyTo: sent[1]?.id as string }));
  });

  test("pages cover every own message once, oldest first, chats on the first page only", async () => {
    const pages = await exportAll(alice.id, 3);
    assert.ok(pages.length >= 3, `several pages: ${pages.length}`);
    assert.deepEqual(pages[0]?.chats.map((c) => c.id).sort(), [...chatIds].sort());
    for (const page of pages.slice(1)) assert.deepEqual(page.chats, []);
    for (const page of pages) assert.ok(page.messages.length <= 3);
    const messages = pages.flatMap((p) => p.messages);
    assert.deepEqual(
      messages.map((m) => m.id),
      sent.map((m) => m.id),
      "each of the sender's messages once, in the order sent",
    );
    assert.ok(messages.every((m) => m.senderId === alice.id));
    // As the history shows them: files, and the original a reply answers.
    assert.deepEqual(
      messages[0]?.attachments.map((a) => a.id),
      [uploads[0]?.id],
    );
    assert.equal(messages.at(-1)?.replyTo?.id, sent[1]?.id);
    assert.equal(messages.at(-1)?.replyTo?.preview, "message 0");
    const exported = pages.flatMap((p) => p.uploads);
    assert.deepEqual(
      exported.map((u) => u.id),
      uploads.map((u) => u.id),
    );
    assert.equal(exported[0]?.sha256, uploads[0]?.sha256);
    assert.equal(pages.at(-1)?.next, null);
  });

  test("the default page holds everything at once", async () => {
    const page = await exportPage(alice.id);
    assert.equal(page.next, null);
    assert.equal(page.messages.length, sent.length);
    assert.equal(page.uploads.length, 2);
    assert.equal(page.chats.length, 2);
  });

  test("a forged, altered or someone else's cursor is refused with 422 on `after`", async () => {
    const first = await exportPage(alice.id, undefined, 2);
    assert.ok(first.next);
    const forged = [
      "nonsense",
      `${Buffer.from(JSON.stringify([1, [0, 0], "done"])).toString("base64url")}.AAAAAAAAAAAAAAAA`,
      `${first.next.slice(0, -1)}${first.next.endsWith("A") ? "B" : "A"}`,
      `${first.next}.x`,
    ];
    for (const after of forged) {
      const err = await rejection(exportPage(alice.id, after, 2));
      assert.equal(err.code, 422, after);
      assert.equal((err.data as { field: string }[])[0]?.field, "after");
    }
    const err = await rejection(exportPage(bob.id, first.next, 2));
    assert.equal(err.code, 422, "a cursor pages only the export it came from");
    const bad = await rejection(exportPage(alice.id, undefined, 0));
    assert.equal(bad.code, 422);
  });

  test("a user with nothing gets one empty page", async () => {
    const carol = await user();
    assert.deepEqual(await exportPage(carol.id, undefined, 5), {
      chats: [],
      messages: [],
      uploads: [],
      next: null,
    });
  });
});

describe("chat.eraseUser", () => {
  let alice: User;
  let bob: User;
  let carol: User;
  let dave: User;
  let direct: string;
  let group: string;
  let aliceFiles: UploadView[];
  let daveFile: UploadView;
  let bobFile: UploadView;
  let aliceMessages: MessageView[];
  let daveMessage: MessageView;
  let bobReply: MessageView;

  before(async () => {
    [alice, bob, carol, dave] = await Promise.all([user(), user(), user(), user()]);
    direct = (await alice.api.openDirect(bob.id)).id;
    group = (await alice.api.openGroup("erase", [bob.id, carol.id, dave.id])).id;
    aliceFiles = [await upload(alice, "photo.png", await png(400, 300)), await upload(alice, "doc.pdf", PDF)];
    // A pending upload (never committed) is not made here; an unattached ready one is.
    const loose = await upload(alice, "loose.pdf", PDF);
    aliceFiles.push(loose);
    daveFile = await upload(dave, "dave.pdf", PDF);
    bobFile = await upload(bob, "bob.pdf", PDF);
    aliceMessages = [
      await alice.api.sendMessage(direct, "hello bob", { attachmentIds: [aliceFiles[0]?.id as string] }),
      await alice.api.sendMessage(group, "to all", { attachmentIds: [aliceFiles[1]?.id as string] }),
      await alice.api.sendMessage(group, "plain words"),
    ];
    bobReply = await bob.api.sendMessage(group, "answering", {
      replyTo: aliceMessages[1]?.id as string,
      attachmentIds: [bobFile.id],
    });
    daveMessage = await dave.api.sendMessage(group, "dave speaks", { attachmentIds: [daveFile.id] });
    aliceMessages.push(await alice.api.sendMessage(direct, "last word"));
    // A thumbnail is made on first ask and kept beside the bytes.
    const thumb = await get(platform.url, `/files/${aliceFiles[0]?.id}?thumb=160`, bob.token);
    assert.equal(thumb.status, 200);
    await alice.api.block(carol.id);
    await bob.api.block(alice.id);
    await alice.api.mute(group, null);
    assert.equal((await filesOf(aliceFiles[0]?.id as string)).length, 2, "the bytes and a thumbnail");
    assert.ok(await collection("upload_usage").findOne({ _id: alice.id }));
  });

  test("bad params are refused", async () => {
    const err = await rejection(platform.broker.call("chat.eraseUser", { userId: alice.id }));
    assert.equal(err.code, 422);
    const extra = await rejection(
      platform.broker.call("chat.eraseUser", { userId: alice.id, eraseMessages: true, more: 1 }),
    );
    assert.equal(extra.code, 422);
  });

  test("without eraseMessages the files go and the text stays", async () => {
    assert.equal(await erase(dave.id, false), null);
    assert.equal((await get(platform.url, `/files/${daveFile.id}`, bob.token)).status, 404);
    assert.equal((await get(platform.url, `/files/${daveFile.id}`, dave.token)).status, 404);
    assert.deepEqual(await filesOf(daveFile.id), []);
    assert.equal(await collection("upload_usage").findOne({ _id: dave.id }), null);
    const shown = (await historyOf(bob, group)).find((m) => m.id === daveMessage.id);
    assert.equal(shown?.message, "dave speaks");
    assert.equal(shown?.deleted, undefined);
    assert.deepEqual(shown?.attachments, []);
    assert.equal(shown?.seq, daveMessage.seq);
  });

  test("with eraseMessages their messages show deleted, their files and blocks are gone", async () => {
    const before = await historyOf(bob, group);
    assert.equal(await erase(alice.id, true), null);

    for (const file of aliceFiles) {
      for (const reader of [alice, bob]) {
        assert.equal((await get(platform.url, `/files/${file.id}`, reader.token)).status, 404);
      }
      assert.deepEqual(await filesOf(file.id), [], `the bytes of ${file.name} are gone`);
    }
    assert.equal(await collection("upload_usage").findOne({ _id: alice.id }), null);
    assert.equal(await collection("uploads").count({ ownerId: alice.id }), 0);

    // Others' files stay.
    assert.equal((await get(platform.url, `/files/${bobFile.id}`, carol.token)).status, 200);
    assert.equal((await filesOf(bobFile.id)).length, 1);
    assert.ok(await collection("upload_usage").findOne({ _id: bob.id }));

    const groupNow = await historyOf(carol, group);
    assert.deepEqual(
      groupNow.map((m) => [m.id, m.seq]),
      before.map((m) => [m.id, m.seq]),
      "every message keeps its id and seq",
    );
    const directNow = await historyOf(bob, direct);
    for (const sentMessage of aliceMessages) {
      const shown = [...groupNow, ...directNow].find((m) => m.id === sentMessage.id);
      assert.ok(shown, sentMessage.id);
      assert.equal(shown.message, "");
      assert.equal(shown.deleted, true);
      assert.deepEqual(shown.attachments, []);
      assert.equal(shown.seq, sentMessage.seq);
    }
    const reply = groupNow.find((m) => m.id === bobReply.id);
    assert.equal(reply?.message, "answering", "others' messages stay");
    assert.deepEqual(
      reply?.attachments.map((a) => a.id),
      [bobFile.id],
    );
    assert.equal(reply?.replyTo?.deleted, true);
    assert.equal(reply?.replyTo?.preview, "");
    // The chat list shows the last message deleted too.
    const chat = await bob.api.chat(direct);
    assert.equal(chat.lastMessage?.id, aliceMessages.at(-1)?.id);
    assert.equal(chat.lastMessage?.message, "");
    assert.equal(chat.lastMessage?.deleted, true);

    assert.deepEqual(await bob.api.blocks(), []);
    assert.deepEqual(await alice.api.blocks(), []);
    assert.equal(await collection("blocks").count({}), 0);
    // The block is lifted: bob and alice may talk again.
    assert.equal((await alice.api.chat(group)).muted, false, "the mute is gone");
    const again = await bob.api.sendMessage(direct, "still there?");
    assert.equal(again.seq, (aliceMessages.at(-1)?.seq ?? 0) + 1);
  });

  test("erasing again changes nothing and succeeds", async () => {
    const before = await historyOf(bob, group);
    assert.equal(await erase(alice.id, true), null);
    assert.equal(await erase(alice.id, false), null);
    assert.deepEqual(await historyOf(bob, group), before);
    const page = await exportPage(alice.id);
    assert.deepEqual(page.uploads, []);
    assert.ok(page.messages.length >= aliceMessages.length);
    assert.ok(
      page.messages.every((m) => m.deleted === true && m.message === "" && m.attachments.length === 0),
    );
  });

  test("an erasure cut off half-way is finished by the next run", async () => {
    const erin = await user();
    const chat = (await erin.api.openDirect(bob.id)).id;
    const files = [await upload(erin, "x.pdf", PDF), await upload(erin, "y.pdf", PDF)];
    const m = await erin.api.sendMessage(chat, "half", { attachmentIds: [files[0]?.id as string] });
    // As a run stopped after marking one upload deleting and before removing its bytes leaves it.
    const uploadsOf = collection<{ _id: string; state: string; rev: number }>("uploads");
    assert.equal(
      await uploadsOf.updateOne(
        { _id: files[1]?.id as string },
        { $set: { state: "deleting" }, $inc: { rev: 1 } },
      ),
      1,
    );
    assert.equal(await erase(erin.id, true), null);
    for (const f of files) assert.deepEqual(await filesOf(f.id), []);
    assert.equal(await uploadsOf.count({ _id: { $in: files.map((f) => f.id) } }), 0);
    const shown = (await historyOf(bob, chat)).find((x) => x.id === m.id);
    assert.equal(shown?.deleted, true);
  });
});

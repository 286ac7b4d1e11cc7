/**
 * A page of the chat list is two reads of the store: the chats whose activity key was written by
 * the snapshot time, and those rewritten since. A chat's new message can be recorded at any moment
 * of those reads (the chat summaries are written behind the sends); the page lists it once, where
 * it stood at the snapshot time, whichever moment that is.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { openStore } from "../../lib/store/index.ts";
import type { Collection, Filter, FindOptions, Store } from "../../lib/store/types.ts";
import { type Chat, ChatsRepository } from "../../services/chat/chats.repo.ts";

let dataDir: string;
let store: Store;

before(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "chats-list-page-"));
  store = await openStore({ dataDir });
});
after(async () => {
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** Which of the page's two reads a find is. */
function readOf(filter: Filter): "settled" | "moved" | undefined {
  const written = (filter as { activityWrittenAt?: Record<string, unknown> }).activityWrittenAt;
  if (written && "$lte" in written) return "settled";
  if (written && "$gt" in written) return "moved";
  return undefined;
}

/**
 * The chats collection, with `land` run at the given moment of a page: before a read starts, or
 * once it has answered (before the answer is handed back). A read that starts yields first, so a
 * read issued alongside it runs before the write.
 */
function landing(
  chats: Collection<Chat>,
  moment: { read: "settled" | "moved"; when: "before" | "after" },
  land: () => Promise<void>,
): { collection: Collection<Chat>; landed: () => boolean } {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    await land();
  };
  const collection = new Proxy(chats, {
    get(target, prop, receiver) {
      if (prop !== "find") return Reflect.get(target, prop, receiver);
      return async (filter: Filter, options?: FindOptions) => {
        const read = readOf(filter);
        if (read !== moment.read) return target.find(filter, options);
        await new Promise((resolve) => setImmediate(resolve));
        if (moment.when === "before") await once();
        const found = await target.find(filter, options);
        if (moment.when === "after") await once();
        return found;
      };
    },
  });
  return { collection, landed: () => done };
}

const moments = [
  { read: "settled", when: "before" },
  { read: "settled", when: "after" },
  { read: "moved", when: "before" },
  { read: "moved", when: "after" },
] as const;

for (const moment of moments) {
  test(`a chat whose message is recorded ${moment.when} the ${moment.read} read is listed once, at its snapshot place`, async () => {
    const user = `u-${moment.read}-${moment.when}`;
    const plain = new ChatsRepository(store.collection<Chat>("chats"));
    await plain.init();
    const ids = ["a", "b", "c", "d"].map((x) => `${user}-${x}`);
    for (const id of ids) {
      await plain.insert({ _id: id, type: "group", name: id, ownerId: user, members: [user] });
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const at = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Newest first as of `at`: d, c, b, a. The message moves c to the top afterwards.
    const moving = ids[2] as string;
    const { collection, landed } = landing(store.collection<Chat>("chats"), moment, () =>
      plain.recordMessage(moving, {
        id: `${moving}:1`,
        seq: 1,
        senderId: user,
        message: "hello",
        createdAt: new Date(),
      }),
    );
    const chats = new ChatsRepository(collection);

    const first = await chats.listPage(user, { at, limit: 3 });
    assert.ok(landed(), "the message was recorded during the page's reads");
    assert.deepEqual(
      first.chats.map((c) => c._id),
      [ids[3], ids[2], ids[1]],
      "the moved chat once, where it stood at the snapshot",
    );
    assert.equal(first.hasMore, true);
    const second = await chats.listPage(user, { at, limit: 3, below: first.chats.at(-1)?.activityKey });
    assert.deepEqual(
      second.chats.map((c) => c._id),
      [ids[0]],
      "and not again on the next page",
    );
    assert.equal(second.hasMore, false);

    // A fresh listing (a later snapshot) has it on top.
    const now = await plain.listPage(user, { at: Date.now(), limit: 10 });
    assert.deepEqual(
      now.chats.map((c) => c._id),
      [ids[2], ids[3], ids[1], ids[0]],
    );
  });
}

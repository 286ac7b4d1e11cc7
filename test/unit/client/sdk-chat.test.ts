/** ApiClient's chat calls against a fake fetch: the paths, methods and bodies it sends, and what it makes of the answers. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { markBlockedSender, markBlockedSenders } from "../../../client/blocking.ts";
import { ApiClient, ApiError } from "../../../client/index.ts";
import type { ChatView, PinView, PublicProfile } from "../../../client/types.ts";
import { BASE, fakeFetch, message, noContent, on } from "./fake-server.ts";

async function client(...routes: Parameters<typeof fakeFetch>) {
  const fake = fakeFetch(...routes);
  const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
  await api.login({ username: "me_user", password: "whatever-pw" });
  return { api, calls: fake.calls };
}

const chat = (id: string): ChatView => ({
  id,
  type: "group",
  name: id,
  ownerId: "me",
  members: ["me"],
  lastMessage: null,
  unreadCount: 0,
  mentionCount: 0,
  muted: false,
  mutedUntil: null,
  createdAt: "2030-01-01T00:00:00.000Z",
});

const profile = (id: string): PublicProfile => ({
  id,
  username: id,
  displayName: id,
  bio: null,
  avatarUrl: null,
  createdAt: "2030-01-01T00:00:00.000Z",
});

describe("chat list paging", () => {
  /** Three pages of two chats each, chained by cursors "p2" and "p3". */
  const pages = [
    on("GET", "/chats?limit=2", { body: { chats: [chat("a"), chat("b")], hasMore: true, nextCursor: "p2" } }),
    on("GET", "/chats?limit=2&cursor=p2", {
      body: { chats: [chat("c"), chat("d")], hasMore: true, nextCursor: "p3" },
    }),
    on("GET", "/chats?limit=2&cursor=p3", { body: { chats: [chat("e")], hasMore: false, nextCursor: null } }),
  ];

  test("listChats sends limit and cursor only when given", async () => {
    const { api, calls } = await client(() => ({
      body: { chats: [], hasMore: false, nextCursor: null },
    }));
    await api.listChats();
    await api.listChats({ limit: 10, cursor: "a b+c" });
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path}`),
      ["GET /chats", "GET /chats?limit=10&cursor=a+b%2Bc"],
    );
  });

  test("allChats follows nextCursor and stops on hasMore false", async () => {
    const { api, calls } = await client(...pages);
    const seen: string[][] = [];
    for await (const page of api.allChats(2)) seen.push(page.chats.map((c) => c.id));
    assert.deepEqual(seen, [["a", "b"], ["c", "d"], ["e"]]);
    assert.equal(calls.length, 3, "no request after the last page");
  });

  test("allChats stops early when the consumer breaks", async () => {
    const { api, calls } = await client(...pages);
    for await (const page of api.allChats(2)) {
      assert.equal(page.chats[0]?.id, "a");
      break;
    }
    assert.equal(calls.length, 1);
  });

  test("allChats stops on a page that says hasMore without a cursor", async () => {
    const { api, calls } = await client(() => ({
      body: { chats: [chat("a")], hasMore: true, nextCursor: null },
    }));
    let n = 0;
    for await (const _ of api.allChats()) n++;
    assert.equal(n, 1);
    assert.equal(calls.length, 1);
  });

  test("chats() collects every page", async () => {
    const { api } = await client(...pages);
    assert.deepEqual(
      (await api.chats(2)).map((c) => c.id),
      ["a", "b", "c", "d", "e"],
    );
  });

  test("an expired cursor surfaces the server's 422", async () => {
    const expired = {
      status: 422,
      body: { error: { code: "VALIDATION_FAILED", message: "expired", details: [{ field: "cursor" }] } },
    };
    const { api } = await client(on("GET", "/chats?cursor=old", expired));
    await assert.rejects(
      api.listChats({ cursor: "old" }),
      (err) => err instanceof ApiError && err.status === 422,
    );
  });
});

describe("messages and replies", () => {
  test("sendMessage posts the message with its clientMsgId and replyTo", async () => {
    const { api, calls } = await client(() => ({
      status: 201,
      body: {
        ...message(2, "me"),
        replyTo: { id: "c1_1", seq: 1, senderId: "u2", preview: "m1", deleted: false },
      },
    }));
    const sent = await api.sendMessage("c1", "yes", { clientMsgId: "k-1", replyTo: "c1_1" });
    assert.equal(sent.replyTo?.id, "c1_1");
    assert.deepEqual(calls[0], {
      method: "POST",
      path: "/chats/c1/messages",
      body: { message: "yes", clientMsgId: "k-1", replyTo: "c1_1" },
    });
  });

  test("a message that is not a reply has no replyTo key, and gets a clientMsgId of its own", async () => {
    const { api, calls } = await client(() => ({ status: 201, body: message(1, "me") }));
    await api.sendMessage("c 1", "hi");
    await api.sendMessage("c 1", "hi");
    const [first, second] = calls.map((c) => c.body as Record<string, unknown>);
    assert.equal(calls[0]?.path, "/chats/c%201/messages");
    assert.ok(first && second && !("replyTo" in first));
    assert.match(String(first.clientMsgId), /^[0-9a-f-]{36}$/);
    assert.notEqual(first.clientMsgId, second.clientMsgId);
  });

  test("history, markRead, edit and delete hit their routes", async () => {
    const { api, calls } = await client(
      on("GET", "/chats/c1/messages?after=3&limit=2", { body: { messages: [message(4)], hasMore: true } }),
      on("GET", "/chats/c1/messages", { body: { messages: [], hasMore: false } }),
      on("PATCH", "/chats/c1/messages/c1_4", { body: { ...message(4), message: "new" } }),
      noContent,
    );
    assert.equal((await api.history("c1", { after: 3, limit: 2 })).messages[0]?.seq, 4);
    assert.equal((await api.history("c1")).hasMore, false);
    await api.markRead("c1", 4);
    assert.equal((await api.editMessage("c1", "c1_4", "new")).message, "new");
    assert.equal(await api.deleteMessage("c1", "c1_4"), undefined);
    assert.deepEqual(
      calls.slice(2).map((c) => [c.method, c.path, c.body]),
      [
        ["POST", "/chats/c1/read", { seq: 4 }],
        ["PATCH", "/chats/c1/messages/c1_4", { message: "new" }],
        ["DELETE", "/chats/c1/messages/c1_4", undefined],
      ],
    );
  });
});

describe("reactions", () => {
  test("react PUTs and unreact DELETEs the URL-encoded emoji", async () => {
    const { api, calls } = await client(noContent);
    assert.equal(await api.react("c1", "c1_1", "❤️"), undefined);
    await api.unreact("c1", "c1_1", "❤️");
    await api.react("c1", "c1_1", "👍🏽");
    await api.react("c1", "c1_1", "👨‍👩‍👧");
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path}`),
      [
        "PUT /chats/c1/messages/c1_1/reactions/%E2%9D%A4%EF%B8%8F",
        "DELETE /chats/c1/messages/c1_1/reactions/%E2%9D%A4%EF%B8%8F",
        "PUT /chats/c1/messages/c1_1/reactions/%F0%9F%91%8D%F0%9F%8F%BD",
        "PUT /chats/c1/messages/c1_1/reactions/%F0%9F%91%A8%E2%80%8D%F0%9F%91%A9%E2%80%8D%F0%9F%91%A7",
      ],
    );
    assert.ok(
      calls.every((c) => c.body === undefined),
      "no body",
    );
  });

  test("a refused reaction throws ApiError with the server's code", async () => {
    const { api } = await client(() => ({
      status: 422,
      body: { error: { code: "VALIDATION_FAILED", message: "not an emoji" } },
    }));
    await assert.rejects(
      api.react("c1", "c1_1", "a/b"),
      (err) => err instanceof ApiError && err.code === "VALIDATION_FAILED",
    );
  });
});

describe("blocks", () => {
  test("block, unblock and blocks", async () => {
    const { api, calls } = await client(
      on("GET", "/users/me/blocks", { body: { users: [profile("u3"), profile("u2")] } }),
      noContent,
    );
    await api.block("u2");
    await api.unblock("u/3");
    assert.deepEqual(
      (await api.blocks()).map((u) => u.id),
      ["u3", "u2"],
    );
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path}`),
      ["PUT /users/me/blocks/u2", "DELETE /users/me/blocks/u%2F3", "GET /users/me/blocks"],
    );
  });

  test("markBlockedSenders marks the messages of blocked senders only", () => {
    const messages = [message(1, "u2"), message(2, "u3"), message(3, "u2")];
    const marked = markBlockedSenders(messages, ["u2"]);
    assert.deepEqual(
      marked.map((m) => m.blockedSender),
      [true, undefined, true],
    );
    assert.equal(marked[1], messages[1], "an unmarked message is the same object");
    assert.equal(messages[0] && "blockedSender" in messages[0], false, "the input is left alone");
    assert.deepEqual(
      markBlockedSenders(messages, new Set<string>()).map((m) => m.blockedSender),
      [undefined, undefined, undefined],
    );
  });

  test("a message marked before its sender was unblocked loses the mark", () => {
    const marked = markBlockedSender(message(1, "u2"), new Set(["u2"]));
    assert.equal(marked.blockedSender, true);
    const again = markBlockedSender(marked, new Set());
    assert.equal("blockedSender" in again, false);
    assert.equal(again.message, "m1");
  });
});

describe("mutes", () => {
  test("mute sends until as an ISO time, a string as is, or null; unmute DELETEs", async () => {
    const { api, calls } = await client(noContent);
    await api.mute("c1", new Date(Date.UTC(2031, 0, 2, 3, 4, 5)));
    await api.mute("c1", "2031-01-02T03:04:05+02:00");
    await api.mute("c1", null);
    await api.unmute("c1");
    assert.deepEqual(
      calls.map((c) => [c.method, c.path, c.body]),
      [
        ["PUT", "/chats/c1/mute", { until: "2031-01-02T03:04:05.000Z" }],
        ["PUT", "/chats/c1/mute", { until: "2031-01-02T03:04:05+02:00" }],
        ["PUT", "/chats/c1/mute", { until: null }],
        ["DELETE", "/chats/c1/mute", undefined],
      ],
    );
  });
});

describe("pins", () => {
  test("pin, unpin and pins", async () => {
    const pin: PinView = { message: message(1), pinnedBy: "me", pinnedAt: "2030-01-01T00:00:01.000Z" };
    const { api, calls } = await client(on("GET", "/chats/c1/pins", { body: { pins: [pin] } }), noContent);
    await api.pin("c1", "c1_1");
    await api.unpin("c1", "c1_1");
    assert.deepEqual(await api.pins("c1"), [pin]);
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path}`),
      ["PUT /chats/c1/pins/c1_1", "DELETE /chats/c1/pins/c1_1", "GET /chats/c1/pins"],
    );
  });
});

describe("chats", () => {
  test("chat, openDirect, openGroup, addMember and removeMember", async () => {
    const { api, calls } = await client(
      on("GET", "/chats/g1", { body: chat("g1") }),
      on("POST", "/chats", { status: 201, body: chat("g1") }),
      on("POST", "/chats/g1/members", { body: chat("g1") }),
      noContent,
    );
    await api.chat("g1");
    await api.openDirect("u2");
    await api.openGroup("team", ["u2"]);
    await api.addMember("g1", "u3");
    await api.removeMember("g1", "u3");
    assert.deepEqual(
      calls.map((c) => [c.method, c.path, c.body]),
      [
        ["GET", "/chats/g1", undefined],
        ["POST", "/chats", { type: "direct", userId: "u2" }],
        ["POST", "/chats", { type: "group", name: "team", memberIds: ["u2"] }],
        ["POST", "/chats/g1/members", { userId: "u3" }],
        ["DELETE", "/chats/g1/members/u3", undefined],
      ],
    );
  });
});

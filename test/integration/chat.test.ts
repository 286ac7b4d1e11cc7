import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let alice: ApiClient;
let bob: ApiClient;
let carol: ApiClient;
const ids: Record<string, string> = {};

async function user(name: string): Promise<ApiClient> {
  const client = new ApiClient(platform.url);
  ids[name] = (await client.register(newUser(name))).user.id;
  return client;
}

function code(body: unknown): string | undefined {
  return (body as { error?: { code?: string } }).error?.code;
}

before(async () => {
  platform = await startEmbedded({ CHAT_MAX_GROUP_MEMBERS: "4", CHAT_MAX_MESSAGE_LENGTH: "100" });
  alice = await user("alice");
  bob = await user("bob");
  carol = await user("carol");
});
after(() => platform.stop());

describe("direct chats", () => {
  test("POST /chats makes the direct chat once: 201 the first time, 200 with the same chat after", async () => {
    const first = await alice.raw("POST", "/chats", { body: { type: "direct", userId: ids.bob } });
    assert.equal(first.status, 201);
    const again = await bob.raw("POST", "/chats", { body: { type: "direct", userId: ids.alice } });
    assert.equal(again.status, 200);
    assert.equal((again.body as ChatView).id, (first.body as ChatView).id);
    assert.deepEqual((first.body as ChatView).members.sort(), [ids.alice, ids.bob].sort());
  });

  test("both users creating it at once still get one chat", async () => {
    const dave = await user("dave");
    const erin = await user("erin");
    const [a, b] = await Promise.all([
      dave.raw("POST", "/chats", { body: { type: "direct", userId: ids.erin } }),
      erin.raw("POST", "/chats", { body: { type: "direct", userId: ids.dave } }),
    ]);
    assert.equal((a.body as ChatView).id, (b.body as ChatView).id);
    assert.deepEqual([a.status, b.status].sort(), [200, 201]);
  });

  test("a chat with oneself is 422 and with an unknown user 404", async () => {
    assert.equal(
      (await alice.raw("POST", "/chats", { body: { type: "direct", userId: ids.alice } })).status,
      422,
    );
    assert.equal(
      (await alice.raw("POST", "/chats", { body: { type: "direct", userId: "nobody" } })).status,
      404,
    );
    assert.equal((await alice.raw("POST", "/chats", { body: { type: "direct" } })).status, 422);
    assert.equal(
      (await alice.raw("POST", "/chats", { body: { type: "channel", userId: ids.bob } })).status,
      422,
    );
  });
});

describe("messages", () => {
  let chatId: string;
  before(async () => {
    chatId = (
      (await alice.raw("POST", "/chats", { body: { type: "direct", userId: ids.bob } })).body as ChatView
    ).id;
  });

  test("seq starts at 1 and has no gaps or duplicates under concurrent senders", async () => {
    const sends = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 ? alice : bob).raw("POST", `/chats/${chatId}/messages`, {
          body: { message: `m${i}`, clientMsgId: `c-${i}-${Date.now()}` },
        }),
      ),
    );
    assert.ok(sends.every((r) => r.status === 201));
    const history = await alice.request<{ messages: MessageView[]; hasMore: boolean }>(
      "GET",
      `/chats/${chatId}/messages?after=0&limit=200`,
    );
    assert.deepEqual(
      history.messages.map((m) => m.seq),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
  });

  test("a resend with the same clientMsgId answers the first message and stores no second", async () => {
    const body = { message: "once", clientMsgId: `idem-${Date.now()}` };
    const [a, b] = await Promise.all([
      alice.raw("POST", `/chats/${chatId}/messages`, { body }),
      alice.raw("POST", `/chats/${chatId}/messages`, { body }),
    ]);
    assert.equal((a.body as MessageView).id, (b.body as MessageView).id);
    const third = await alice.raw("POST", `/chats/${chatId}/messages`, { body });
    assert.equal(third.status, 200);
    assert.equal((third.body as MessageView).id, (a.body as MessageView).id);
    const history = await alice.request<{ messages: MessageView[] }>(
      "GET",
      `/chats/${chatId}/messages?limit=200`,
    );
    assert.equal(history.messages.filter((m) => m.clientMsgId === body.clientMsgId).length, 1);
  });

  test("history pages backwards with before and forwards with after", async () => {
    const newest = await alice.request<{ messages: MessageView[]; hasMore: boolean }>(
      "GET",
      `/chats/${chatId}/messages?limit=5`,
    );
    assert.equal(newest.messages.length, 5);
    assert.equal(newest.hasMore, true);
    const firstSeq = newest.messages[0]?.seq ?? 0;
    const older = await alice.request<{ messages: MessageView[] }>(
      "GET",
      `/chats/${chatId}/messages?before=${firstSeq}&limit=5`,
    );
    assert.deepEqual(
      older.messages.map((m) => m.seq),
      [1, 2, 3, 4, 5].map((n) => firstSeq - 6 + n),
    );
    const forward = await alice.request<{ messages: MessageView[]; hasMore: boolean }>(
      "GET",
      `/chats/${chatId}/messages?after=2&limit=3`,
    );
    assert.deepEqual(
      forward.messages.map((m) => m.seq),
      [3, 4, 5],
    );
    assert.equal(forward.hasMore, true);
  });

  test("edit and delete are the sender's own; delete keeps a tombstone", async () => {
    const sent = await alice.request<MessageView>("POST", `/chats/${chatId}/messages`, {
      message: "typo",
      clientMsgId: `e-${Date.now()}`,
    });
    assert.equal(
      (await bob.raw("PATCH", `/chats/${chatId}/messages/${sent.id}`, { body: { message: "x" } })).status,
      403,
    );
    const edited = await alice.request<MessageView>("PATCH", `/chats/${chatId}/messages/${sent.id}`, {
      message: "fixed",
    });
    assert.equal(edited.message, "fixed");
    assert.ok(edited.editedAt);
    assert.equal((await bob.raw("DELETE", `/chats/${chatId}/messages/${sent.id}`)).status, 403);
    assert.equal((await alice.raw("DELETE", `/chats/${chatId}/messages/${sent.id}`)).status, 204);
    const page = await alice.request<{ messages: MessageView[] }>("GET", `/chats/${chatId}/messages?limit=1`);
    const tomb = page.messages.find((m) => m.id === sent.id);
    assert.equal(tomb?.deleted, true);
    assert.equal(tomb?.message, "");
    assert.equal(
      (await alice.raw("PATCH", `/chats/${chatId}/messages/${sent.id}`, { body: { message: "x" } })).status,
      404,
    );
    assert.equal((await alice.raw("DELETE", `/chats/${chatId}/messages/no-such-message`)).status, 404);
  });

  test("an empty, over-long or malformed message is 422", async () => {
    for (const body of [
      { message: "", clientMsgId: "a1" },
      { message: "   ", clientMsgId: "a2" },
      { message: "x".repeat(101), clientMsgId: "a3" },
      { message: "ok", clientMsgId: "" },
      { message: "ok", clientMsgId: "bad id" },
      { message: 5, clientMsgId: "a4" },
      { message: "ok" },
      { message: "ok", clientMsgId: "a5", extra: 1 },
    ]) {
      const res = await alice.raw("POST", `/chats/${chatId}/messages`, { body });
      assert.equal(res.status, 422, JSON.stringify(body));
    }
  });

  test("GET /chats shows the newest message and unread count at once, before the chat's summary is written", async () => {
    const chat = await alice.request<ChatView>("POST", "/chats", {
      type: "group",
      name: "burst",
      memberIds: [ids.bob as string],
    });
    // The first summary is written at once, the next ones at most every few seconds.
    for (let i = 1; i <= 4; i++) {
      await alice.request("POST", `/chats/${chat.id}/messages`, {
        message: `burst ${i}`,
        clientMsgId: `burst-${i}`,
      });
    }
    const listed = (await bob.request<{ chats: ChatView[] }>("GET", "/chats")).chats;
    assert.equal(listed[0]?.id, chat.id, "the most recently active chat comes first");
    assert.equal(listed[0]?.lastMessage?.message, "burst 4");
    assert.equal(listed[0]?.lastMessage?.seq, 4);
    assert.equal(listed[0]?.unreadCount, 4);
    assert.equal((await bob.request<ChatView>("GET", `/chats/${chat.id}`)).lastMessage?.seq, 4);
  });

  test("read receipts drive the unread count of GET /chats", async () => {
    const before = await bob.request<{ chats: ChatView[] }>("GET", "/chats");
    const chat = before.chats.find((c) => c.id === chatId);
    assert.ok(chat?.lastMessage);
    assert.ok((chat.unreadCount ?? 0) > 0);
    const res = await bob.raw("POST", `/chats/${chatId}/read`, { body: { seq: chat.lastMessage.seq } });
    assert.equal(res.status, 204);
    const afterRead = await bob.request<{ chats: ChatView[] }>("GET", "/chats");
    assert.equal(afterRead.chats.find((c) => c.id === chatId)?.unreadCount, 0);
    assert.equal((await bob.raw("POST", `/chats/${chatId}/read`, { body: { seq: 0 } })).status, 422);
    assert.equal((await bob.raw("POST", `/chats/${chatId}/read`, { body: { seq: "1" } })).status, 422);
  });

  test("POST /chats/:id/read far beyond the last message stores and tells the chat's last seq", async () => {
    const reader = await user("reader");
    const writer = await user("writer");
    const chat = await writer.request<ChatView>("POST", "/chats", { type: "direct", userId: ids.reader });
    for (const id of ["w1", "w2", "w3"]) {
      await writer.request("POST", `/chats/${chat.id}/messages`, { message: id, clientMsgId: id });
    }
    const watcher = new RawSocket(`${platform.url.replace("http", "ws")}/ws`, {
      token: writer.accessToken as string,
    });
    await watcher.next((f) => f.type === "ready");
    const res = await reader.raw("POST", `/chats/${chat.id}/read`, {
      body: { seq: Number.MAX_SAFE_INTEGER },
    });
    assert.equal(res.status, 204);
    const read = await watcher.next((f) => f.type === "read");
    assert.deepEqual(read, { type: "read", chatId: chat.id, userId: ids.reader, seq: 3 });
    watcher.close();
    await writer.request("POST", `/chats/${chat.id}/messages`, { message: "w4", clientMsgId: "w4" });
    const listed = await reader.request<{ chats: ChatView[] }>("GET", "/chats");
    assert.equal(listed.chats.find((c) => c.id === chat.id)?.unreadCount, 1, "the mark is 3, not beyond");
  });

  test("a non-member gets 403 for every action and learns nothing, whether the chat exists or not", async () => {
    const attempts: [string, string, unknown?][] = [
      ["GET", `/chats/${chatId}`],
      ["GET", `/chats/${chatId}/messages`],
      ["POST", `/chats/${chatId}/messages`, { message: "hi", clientMsgId: "intruder" }],
      ["POST", `/chats/${chatId}/read`, { seq: 1 }],
      ["POST", `/chats/${chatId}/members`, { userId: ids.carol }],
    ];
    for (const [method, path, body] of attempts) {
      const real = await carol.raw(method, path, { body });
      const fake = await carol.raw(method, path.replace(chatId, "no-such-chat"), { body });
      assert.equal(real.status, 403, `${method} ${path}`);
      assert.deepEqual(real.body, fake.body);
    }
  });
});

describe("groups", () => {
  test("create, add, remove, leave, with the owner's rights and the member limit", async () => {
    const res = await alice.raw("POST", "/chats", {
      body: { type: "group", name: "Team", memberIds: [ids.bob] },
    });
    assert.equal(res.status, 201);
    const group = res.body as ChatView;
    assert.equal(group.name, "Team");
    assert.deepEqual(group.members.sort(), [ids.alice, ids.bob].sort());

    assert.equal(
      (await bob.raw("POST", `/chats/${group.id}/members`, { body: { userId: ids.carol } })).status,
      403,
    );
    const added = await alice.request<ChatView>("POST", `/chats/${group.id}/members`, { userId: ids.carol });
    assert.equal(added.members.length, 3);
    const fourth = await user("frank");
    await alice.request("POST", `/chats/${group.id}/members`, { userId: ids.frank });
    const fifth = await user("gina");
    const full = await alice.raw("POST", `/chats/${group.id}/members`, { body: { userId: ids.gina } });
    assert.equal(full.status, 422, "the member limit is 4");
    assert.ok(fourth && fifth);

    assert.equal((await bob.raw("DELETE", `/chats/${group.id}/members/${ids.carol}`)).status, 403);
    assert.equal((await alice.raw("DELETE", `/chats/${group.id}/members/${ids.carol}`)).status, 204);
    assert.equal((await carol.raw("GET", `/chats/${group.id}`)).status, 403);
    assert.equal((await bob.raw("DELETE", `/chats/${group.id}/members/${ids.bob}`)).status, 204, "leave");
    assert.equal((await bob.raw("GET", `/chats/${group.id}/messages`)).status, 403);
    assert.equal((await alice.raw("DELETE", `/chats/${group.id}/members/${ids.bob}`)).status, 404);
  });

  test("a group over the member limit, without a name, or with an unknown member is refused", async () => {
    const many = [ids.bob, ids.carol, ids.frank, ids.gina].filter(Boolean);
    assert.equal(
      (await alice.raw("POST", "/chats", { body: { type: "group", name: "Big", memberIds: many } })).status,
      422,
    );
    assert.equal(
      (await alice.raw("POST", "/chats", { body: { type: "group", memberIds: [ids.bob] } })).status,
      422,
    );
    assert.equal(
      (await alice.raw("POST", "/chats", { body: { type: "group", name: "G", memberIds: ["nobody"] } }))
        .status,
      404,
    );
  });

  test("a direct chat's members cannot change", async () => {
    const direct = await alice.request<ChatView>("POST", "/chats", { type: "direct", userId: ids.carol });
    assert.equal(
      (await alice.raw("POST", `/chats/${direct.id}/members`, { body: { userId: ids.bob } })).status,
      403,
    );
    assert.equal(
      code((await alice.raw("DELETE", `/chats/${direct.id}/members/${ids.carol}`)).body),
      "CHAT_FORBIDDEN",
    );
  });
});

describe("per-user limits on sends, new chats and members added", () => {
  let limited: Platform;
  const as = async (name: string) => {
    const client = new ApiClient(limited.url);
    const id = (await client.register(newUser(name))).user.id;
    return { client, id, token: client.accessToken as string };
  };
  before(async () => {
    limited = await startEmbedded({
      RATE_LIMIT_SEND_USER: "4/60",
      RATE_LIMIT_CHAT_CREATE_USER: "3/3600",
      RATE_LIMIT_MEMBER_ADD_USER: "2/3600",
    });
  });
  after(() => limited.stop());

  test("sends over REST and two sockets share one budget: REST answers 429 with Retry-After, a socket an error frame", async () => {
    const a = await as("sa");
    const b = await as("sb");
    const c = await as("sc");
    const one = await a.client.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    const two = await a.client.request<ChatView>("POST", "/chats", { type: "direct", userId: c.id });
    const wsUrl = `${limited.url.replace("http", "ws")}/ws`;
    const s1 = new RawSocket(wsUrl, { token: a.token });
    const s2 = new RawSocket(wsUrl, { token: a.token });
    await Promise.all([s1, s2].map((s) => s.next((f) => f.type === "ready")));
    const post = (chatId: string, id: string) =>
      a.client.raw("POST", `/chats/${chatId}/messages`, { body: { message: id, clientMsgId: id } });
    assert.equal((await post(one.id, "p1")).status, 201);
    assert.equal((await post(two.id, "p2")).status, 201);
    s1.send({ type: "send_message", chatId: one.id, message: "s1", clientMsgId: "s1" });
    assert.equal((await s1.next((f) => f.type === "ack")).clientMsgId, "s1");
    s2.send({ type: "send_message", chatId: two.id, message: "s2", clientMsgId: "s2" });
    assert.equal((await s2.next((f) => f.type === "ack")).clientMsgId, "s2");

    const refused = await post(one.id, "p3");
    assert.equal(refused.status, 429);
    assert.equal(code(refused.body), "RATE_LIMITED");
    assert.match(refused.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
    s1.send({ type: "send_message", chatId: two.id, message: "s3", clientMsgId: "s3" });
    const error = await s1.next((f) => f.type === "error");
    assert.equal(error.code, "RATE_LIMITED");
    assert.equal(error.ref, "s3");
    assert.ok(
      Number(error.retryAfter) >= 1 && Number(error.retryAfter) <= 60,
      `retryAfter ${error.retryAfter}`,
    );
    s1.send({ type: "send_message", recipientId: c.id, message: "s4", clientMsgId: "s4" });
    assert.equal((await s1.next((f) => f.type === "error" && f.ref === "s4")).code, "RATE_LIMITED");

    const history = await b.client.request<{ messages: MessageView[] }>("GET", `/chats/${one.id}/messages`);
    assert.deepEqual(
      history.messages.map((m) => m.clientMsgId),
      ["p1", "s1"],
    );
    assert.equal(
      (await b.client.raw("POST", `/chats/${one.id}/messages`, { body: { message: "x", clientMsgId: "x" } }))
        .status,
      201,
      "another user has a budget of their own",
    );
    s1.close();
    s2.close();
  });

  test("new chats count per creator; opening an existing direct chat does not", async () => {
    const a = await as("ca");
    const others = await Promise.all(["cb", "cc", "cd", "ce"].map(as));
    const open = (userId: string) => a.client.raw("POST", "/chats", { body: { type: "direct", userId } });
    const group = () => a.client.raw("POST", "/chats", { body: { type: "group", name: "g", memberIds: [] } });
    assert.equal((await open(others[0]?.id as string)).status, 201);
    assert.equal((await group()).status, 201);
    assert.equal((await open(others[1]?.id as string)).status, 201);
    assert.equal((await open(others[0]?.id as string)).status, 200, "the existing chat opens at no cost");
    const refused = await open(others[2]?.id as string);
    assert.equal(refused.status, 429);
    assert.ok(refused.headers.get("retry-after"));
    assert.equal((await group()).status, 429);
    assert.equal((await open(others[1]?.id as string)).status, 200);
    assert.equal(
      (await others[3]?.client.raw("POST", "/chats", { body: { type: "direct", userId: a.id } }))?.status,
      201,
      "another user creates chats with their own budget",
    );
  });

  test("members added count per owner", async () => {
    const owner = await as("ma");
    const people = await Promise.all(["mb", "mc", "md"].map(as));
    const group = await owner.client.request<ChatView>("POST", "/chats", {
      type: "group",
      name: "m",
      memberIds: [],
    });
    const add = (userId: string) =>
      owner.client.raw("POST", `/chats/${group.id}/members`, { body: { userId } });
    assert.equal((await add(people[0]?.id as string)).status, 200);
    assert.equal((await add(people[1]?.id as string)).status, 200);
    const refused = await add(people[2]?.id as string);
    assert.equal(refused.status, 429);
    assert.equal(code(refused.body), "RATE_LIMITED");
  });
});

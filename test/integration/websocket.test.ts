import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { type Frame, RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let wsUrl: string;

async function signedIn(name = "u"): Promise<{ api: ApiClient; id: string; token: string }> {
  const api = new ApiClient(platform.url);
  const res = await api.register(newUser(name));
  return { api, id: res.user.id, token: res.accessToken };
}

async function connect(token: string): Promise<RawSocket> {
  const s = new RawSocket(wsUrl, { token });
  await s.next((f) => f.type === "ready");
  return s;
}

const isType = (type: string) => (f: Frame) => f.type === type;

before(async () => {
  platform = await startEmbedded({ WS_RATE_LIMIT: "20/10", WS_MAX_PAYLOAD_BYTES: "65536" });
  wsUrl = `${platform.url.replace("http", "ws")}/ws`;
});
after(() => platform.stop());

describe("the upgrade", () => {
  test("no token or a bad token is 401 before upgrading", async () => {
    assert.equal(await RawSocket.refusal(wsUrl), 401);
    assert.equal(await RawSocket.refusal(wsUrl, { token: "not-a-token" }), 401);
    assert.equal(await RawSocket.refusal(`${wsUrl}?access_token=x.y.z`), 401);
  });

  test("the token is accepted as a header, a subprotocol pair or a query parameter", async () => {
    const { id, token } = await signedIn();
    for (const socket of [
      new RawSocket(wsUrl, { token }),
      new RawSocket(wsUrl, { protocols: ["bearer", token] }),
      new RawSocket(`${wsUrl}?access_token=${token}`),
    ]) {
      const ready = await socket.next(isType("ready"));
      assert.equal(ready.userId, id);
      assert.equal(typeof ready.connectionId, "string");
      socket.close();
    }
  });

  test("a foreign Origin is closed with 1008", async () => {
    const { token } = await signedIn();
    const socket = new RawSocket(wsUrl, { token, headers: { origin: "https://evil.example.test" } });
    assert.equal((await socket.closed).code, 1008);
  });
});

describe("messaging", () => {
  test("a message is acked, then reaches every connection of every member once, and no one else", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const outsider = await signedIn("o");
    const chat = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    const a1 = await connect(a.token);
    const a2 = await connect(a.token);
    const b1 = await connect(b.token);
    const o1 = await connect(outsider.token);
    a1.send({ type: "send_message", chatId: chat.id, message: "hello 👋", clientMsgId: "m-1" });
    const ack = await a1.next(isType("ack"));
    assert.deepEqual(Object.keys(ack).sort(), ["chatId", "clientMsgId", "messageId", "seq", "type"]);
    assert.equal(ack.seq, 1);
    for (const s of [a1, a2, b1]) {
      const m = await s.next(isType("new_message"));
      assert.equal(m.message, "hello 👋");
      assert.equal(m.seq, 1);
      assert.equal(m.id, ack.messageId);
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const s of [a1, a2, b1]) assert.equal(s.frames.filter(isType("new_message")).length, 1);
    assert.equal(o1.frames.filter(isType("new_message")).length, 0);
    for (const s of [a1, a2, b1, o1]) s.close();
  });

  test("recipientId opens the direct chat on the first message", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const b1 = await connect(b.token);
    const a1 = await connect(a.token);
    a1.send({ type: "send_message", recipientId: b.id, message: "first", clientMsgId: "r-1" });
    const ack = await a1.next(isType("ack"));
    const got = await b1.next(isType("new_message"));
    assert.equal(got.chatId, ack.chatId);
    const chats = await b.api.request<{ chats: ChatView[] }>("GET", "/chats");
    assert.equal(chats.chats[0]?.id, ack.chatId);
    a1.close();
    b1.close();
  });

  test("two concurrent sends with the same clientMsgId give one message", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const chat = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    const s1 = await connect(a.token);
    const s2 = await connect(a.token);
    const frame = { type: "send_message", chatId: chat.id, message: "dup", clientMsgId: "same-id" };
    s1.send(frame);
    s2.send(frame);
    const [ack1, ack2] = await Promise.all([s1.next(isType("ack")), s2.next(isType("ack"))]);
    assert.equal(ack1.messageId, ack2.messageId);
    const history = await a.api.request<{ messages: MessageView[] }>("GET", `/chats/${chat.id}/messages`);
    assert.equal(history.messages.length, 1);
    s1.close();
    s2.close();
  });

  test("resume replays everything after the last seen seq, in order", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const chat = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    for (let i = 1; i <= 7; i++) {
      await a.api.request("POST", `/chats/${chat.id}/messages`, { message: `n${i}`, clientMsgId: `n${i}` });
    }
    const b1 = await connect(b.token);
    b1.send({ type: "resume", chats: { [chat.id]: 3 } });
    await b1.next((f) => f.type === "new_message" && f.seq === 7);
    assert.deepEqual(
      b1.frames.filter(isType("new_message")).map((f) => f.seq),
      [4, 5, 6, 7],
    );
    b1.close();
  });

  test("typing and read reach the other members", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const chat = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    await a.api.request("POST", `/chats/${chat.id}/messages`, { message: "x", clientMsgId: "x1" });
    const a1 = await connect(a.token);
    const b1 = await connect(b.token);
    a1.send({ type: "typing", chatId: chat.id });
    const typing = await b1.next(isType("typing"));
    assert.deepEqual(typing, { type: "typing", chatId: chat.id, userId: a.id });
    b1.send({ type: "read", chatId: chat.id, seq: 1 });
    const read = await a1.next(isType("read"));
    assert.deepEqual(read, { type: "read", chatId: chat.id, userId: b.id, seq: 1 });
    a1.close();
    b1.close();
  });
});

describe("read marks", () => {
  test("a read frame far beyond the last message is told to the members as the chat's last seq", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const chat = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    for (const id of ["r1", "r2"]) {
      await a.api.request("POST", `/chats/${chat.id}/messages`, { message: id, clientMsgId: id });
    }
    const a1 = await connect(a.token);
    const b1 = await connect(b.token);
    b1.send({ type: "read", chatId: chat.id, seq: Number.MAX_SAFE_INTEGER });
    const read = await a1.next(isType("read"));
    assert.deepEqual(read, { type: "read", chatId: chat.id, userId: b.id, seq: 2 });
    await a.api.request("POST", `/chats/${chat.id}/messages`, { message: "r3", clientMsgId: "r3" });
    const listed = await b.api.request<{ chats: ChatView[] }>("GET", "/chats");
    assert.equal(listed.chats.find((c) => c.id === chat.id)?.unreadCount, 1, "the mark stayed at 2");
    a1.close();
    b1.close();
  });
});

describe("presence", () => {
  test("contacts see a user come online and go offline with lastSeen; the user sees who is online", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    await a.api.request("POST", "/chats", { type: "direct", userId: b.id });
    const b1 = await connect(b.token);
    const a1 = await connect(a.token);
    const online = await b1.next((f) => f.type === "presence" && f.userId === a.id);
    assert.equal(online.status, "online");
    const seen = await a1.next((f) => f.type === "presence" && f.userId === b.id);
    assert.equal(seen.status, "online");
    a1.close();
    const offline = await b1.next(
      (f) => f.type === "presence" && f.userId === a.id && f.status === "offline",
    );
    assert.ok(!Number.isNaN(Date.parse(String(offline.lastSeen))));
    b1.close();
  });
});

describe("bad frames", () => {
  test("each bad frame gets an error frame and the connection keeps serving", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const stranger = await signedIn("s");
    const chat = await b.api.request<ChatView>("POST", "/chats", { type: "direct", userId: stranger.id });
    const s = await connect(a.token);
    const cases: [unknown, string][] = [
      ["{not json", "INVALID_JSON"],
      ["[1,2]", "INVALID_FRAME"],
      [{ type: "shout" }, "UNKNOWN_TYPE"],
      [{ message: "no type" }, "UNKNOWN_TYPE"],
      [{ type: "send_message", chatId: chat.id, message: "x" }, "INVALID_FRAME"],
      [{ type: "send_message", chatId: 42, message: "x", clientMsgId: "c1" }, "INVALID_FRAME"],
      [
        { type: "send_message", chatId: chat.id, recipientId: b.id, message: "x", clientMsgId: "c2" },
        "INVALID_FRAME",
      ],
      [
        { type: "send_message", chatId: chat.id, message: "x", clientMsgId: "c3", extra: true },
        "INVALID_FRAME",
      ],
      [{ type: "read", chatId: chat.id, seq: "1" }, "INVALID_FRAME"],
      [{ type: "resume", chats: { [chat.id]: -1 } }, "INVALID_FRAME"],
      [{ type: "send_message", chatId: chat.id, message: "x", clientMsgId: "c4" }, "CHAT_FORBIDDEN"],
      [{ type: "read", chatId: chat.id, seq: 1 }, "CHAT_FORBIDDEN"],
    ];
    for (const [frame, expected] of cases) {
      const before = s.frames.filter(isType("error")).length;
      s.send(frame);
      await s.next(() => s.frames.filter(isType("error")).length > before);
      const error = s.frames.filter(isType("error")).at(-1) as Frame;
      assert.equal(error.code, expected, JSON.stringify(frame));
      assert.equal(typeof error.message, "string");
    }
    s.ws.send(Buffer.from([1, 2, 3]));
    const binary = await s.next((f) => f.type === "error" && f.code === "INVALID_FRAME" && !("ref" in f));
    assert.ok(binary);
    const own = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    s.send({ type: "send_message", chatId: own.id, message: "still here", clientMsgId: "ok-1" });
    assert.equal((await s.next(isType("ack"))).clientMsgId, "ok-1");
    s.close();
  });

  test("a frame over the payload limit closes with 1009", async () => {
    const { token } = await signedIn();
    const s = await connect(token);
    s.send({ type: "typing", chatId: "x".repeat(70_000) });
    assert.equal((await s.closed).code, 1009);
  });

  test("a flood gets RATE_LIMITED errors, then 4008, and the gateway keeps serving others", async () => {
    const { token } = await signedIn();
    const other = await signedIn();
    const s = await connect(token);
    for (let i = 0; i < 100; i++) s.send({ type: "shout" });
    assert.equal((await s.closed).code, 4008);
    assert.ok(s.frames.some((f) => f.type === "error" && f.code === "RATE_LIMITED"));
    const fine = await connect(other.token);
    fine.close();
  });
});

describe("session lifetime", () => {
  test("logout closes that session's sockets with 4001", async () => {
    const a = await signedIn();
    const s = await connect(a.token);
    await a.api.logout();
    assert.equal((await s.closed).code, 4001);
  });

  test("an expired token closes the socket with 4001 unless a fresh token came by `auth`", async () => {
    const short = await startEmbedded({ ACCESS_TOKEN_TTL_S: "3" });
    try {
      const api = new ApiClient(short.url);
      await api.register(newUser());
      const url = `${short.url.replace("http", "ws")}/ws`;
      const kept = new RawSocket(url, { token: api.accessToken });
      const lapsed = new RawSocket(url, { token: api.accessToken });
      await kept.next(isType("ready"));
      await lapsed.next(isType("ready"));
      await new Promise((r) => setTimeout(r, 1_500));
      await api.refresh();
      kept.send({ type: "auth", token: api.accessToken });
      await kept.next((f) => f.type === "ready" && kept.frames.filter(isType("ready")).length === 2);
      assert.equal((await lapsed.closed).code, 4001);
      assert.equal(kept.ws.readyState, kept.ws.OPEN);
      kept.close();
    } finally {
      await short.stop();
    }
  });
});

describe("the client library", () => {
  test("reconnects after a drop, resumes, fills the gap and sends its queue with the same clientMsgId", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const chat = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    const received: MessageView[] = [];
    const socket = new ChatSocket(b.api, {
      minDelayMs: 50,
      maxDelayMs: 200,
      onMessage: (m) => received.push(m),
    });
    socket.track(chat.id, 0);
    await socket.connect();
    await a.api.request("POST", `/chats/${chat.id}/messages`, { message: "live", clientMsgId: "l1" });
    while (received.length < 1) await new Promise((r) => setTimeout(r, 20));

    // Drop every socket of b on the server side, then send while b is away.
    await platform.broker.call("gateway.deliver", {
      userIds: [],
      frame: { type: "typing", chatId: chat.id, userId: a.id },
    });
    const gateway = platform.broker.getLocalService("gateway") as unknown as {
      ws: { closeSessions(ids: string[]): void };
    };
    const sessions = await b.api.sessions();
    gateway.ws.closeSessions(sessions.sessions.map((s) => s.id));
    for (let i = 2; i <= 5; i++) {
      await a.api.request("POST", `/chats/${chat.id}/messages`, {
        message: `away${i}`,
        clientMsgId: `w${i}`,
      });
    }
    const ack = await socket.send({ chatId: chat.id }, "back", "from-b-1");
    assert.equal(ack.seq, 6);
    while (received.length < 6) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      received.map((m) => m.seq),
      [1, 2, 3, 4, 5, 6],
    );
    socket.close();
  });
});

describe("deliveries from chat nodes", () => {
  test("gateway.deliverMany gives each connection its frames of the call, in the call's order", async () => {
    const a = await signedIn("dma");
    const b = await signedIn("dmb");
    const a1 = await connect(a.token);
    const a2 = await connect(a.token);
    const b1 = await connect(b.token);
    const typing = (chatId: string) => ({ type: "typing", chatId, userId: "someone" });
    await platform.broker.call("gateway.deliverMany", {
      deliveries: [
        { userIds: [a.id, b.id], frame: typing("c1") },
        { userIds: [b.id], frame: typing("c2") },
        { userIds: [a.id], frame: typing("c3") },
        { userIds: ["nobody-here", a.id, b.id], frame: typing("c4") },
      ],
    });
    const chatsOf = async (socket: RawSocket, n: number) => {
      await socket.next(() => socket.frames.filter(isType("typing")).length >= n);
      return socket.frames.filter(isType("typing")).map((f) => f.chatId);
    };
    assert.deepEqual(await chatsOf(a1, 3), ["c1", "c3", "c4"]);
    assert.deepEqual(await chatsOf(a2, 3), ["c1", "c3", "c4"], "every connection of the user");
    assert.deepEqual(await chatsOf(b1, 3), ["c1", "c2", "c4"]);
    for (const s of [a1, a2, b1]) s.close();
  });
});

describe("dead and slow clients", () => {
  test("a client that stops answering pings is dropped within the heartbeat timeout", async () => {
    const quick = await startEmbedded({ WS_HEARTBEAT_MS: "200" });
    try {
      const api = new ApiClient(quick.url);
      await api.register(newUser());
      const url = `${quick.url.replace("http", "ws")}/ws`;
      const silent = new RawSocket(url, { token: api.accessToken, autoPong: false });
      const alive = new RawSocket(url, { token: api.accessToken });
      await silent.next(isType("ready"));
      await alive.next(isType("ready"));
      const closed = await silent.closed;
      assert.equal(closed.code, 1006, "terminated without a close frame");
      assert.equal(alive.ws.readyState, alive.ws.OPEN, "a client that answers stays");
      alive.close();
    } finally {
      await quick.stop();
    }
  });

  test("a client that does not read is closed with 1013 once its unsent bytes pass the cap", async () => {
    const small = await startEmbedded({ WS_MAX_BUFFERED_BYTES: "65536" });
    try {
      const api = new ApiClient(small.url);
      const { user } = await api.register(newUser());
      const slow = new RawSocket(`${small.url.replace("http", "ws")}/ws`, { token: api.accessToken });
      await slow.next(isType("ready"));
      const raw = (slow.ws as unknown as { _socket: { pause(): void } })._socket;
      raw.pause();
      const frame = { type: "typing", chatId: "c".repeat(60_000), userId: user.id };
      const gateway = small.broker.getLocalService("gateway") as unknown as {
        ws: { deliver(userIds: string[], frame: unknown): number };
      };
      for (let i = 0; i < 400 && slow.ws.readyState === slow.ws.OPEN; i++) {
        gateway.ws.deliver([user.id], frame);
        await new Promise((r) => setImmediate(r));
      }
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      assert.equal((await slow.closed).code, 1013);
    } finally {
      await small.stop();
    }
  });
});

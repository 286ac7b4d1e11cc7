/**
 * Bounded resume on one node: only the caller's chats are looked at, in one call to the chat
 * service; each chat replays at most WS_RESUME_MAX_MESSAGES and names the rest in
 * `resume_truncated`; ids that are not the caller's chats get one error frame naming them.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

const MAX = 5;
type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let wsUrl: string;
/** Chat actions the WebSocket server called, by name. */
const calls = new Map<string, number>();

before(async () => {
  platform = await startEmbedded({ WS_RESUME_MAX_MESSAGES: String(MAX) });
  wsUrl = `${platform.url.replace("http", "ws")}/ws`;
  const port = (
    platform.broker.getLocalService("gateway") as unknown as { ws: { o: { chat: ChatPortLike } } }
  ).ws.o.chat;
  const call = port.call.bind(port);
  port.call = (action, params, meta) => {
    calls.set(action, (calls.get(action) ?? 0) + 1);
    return call(action, params, meta);
  };
});
after(() => platform.stop());

interface ChatPortLike {
  call(action: string, params: Record<string, unknown>, meta: unknown): Promise<unknown>;
}

async function signedIn(name: string): Promise<{ api: ApiClient; id: string; token: string }> {
  const api = new ApiClient(platform.url);
  const res = await api.register(newUser(name));
  return { api, id: res.user.id, token: res.accessToken };
}

async function chatWith(a: ApiClient, b: string, messages: number): Promise<ChatView> {
  const chat = await a.request<ChatView>("POST", "/chats", { type: "direct", userId: b });
  for (let i = 1; i <= messages; i++) {
    await a.request("POST", `/chats/${chat.id}/messages`, { message: `m${i}`, clientMsgId: `m${i}` });
  }
  return chat;
}

async function connect(token: string): Promise<RawSocket> {
  const s = new RawSocket(wsUrl, { token });
  await s.next((f) => f.type === "ready");
  return s;
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe("resume on one node", () => {
  test("1,000 ids that are not the caller's chats cost one call and get one error frame naming them", async () => {
    const a = await signedIn("a");
    const s = await connect(a.token);
    const ids = Array.from({ length: 1_000 }, (_, i) => `nochat-${i}`);
    calls.clear();
    s.send({ type: "resume", chats: Object.fromEntries(ids.map((id) => [id, 0])) });
    const error = await s.next((f) => f.type === "error");
    await settle();
    assert.equal(error.code, "CHAT_FORBIDDEN");
    assert.equal(error.ref, "resume");
    assert.deepEqual([...(error.chatIds as string[])].sort(), [...ids].sort());
    assert.equal(s.frames.filter((f) => f.type === "error").length, 1, "one error frame");
    assert.deepEqual(Object.fromEntries(calls), { "chat.resume": 1 });
    s.close();
  });

  test("a chat with more than WS_RESUME_MAX_MESSAGES replays that many, then names the rest; another chat and a stranger's id are answered in the same call", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const c = await signedIn("c");
    const long = await chatWith(a.api, b.id, 12);
    const short = await chatWith(c.api, b.id, 3);
    const strangers = await chatWith(a.api, c.id, 1);
    const s = await connect(b.token);
    calls.clear();
    s.send({ type: "resume", chats: { [long.id]: 2, [short.id]: 1, [strangers.id]: 0 } });
    await s.next((f) => f.type === "resume_truncated");
    await s.next((f) => f.type === "error");
    await settle();
    const seqs = (chatId: string) =>
      s.frames.filter((f) => f.type === "new_message" && f.chatId === chatId).map((f) => f.seq);
    assert.deepEqual(seqs(long.id), [3, 4, 5, 6, 7]);
    assert.deepEqual(seqs(short.id), [2, 3]);
    assert.deepEqual(seqs(strangers.id), []);
    const truncated = s.frames.filter((f) => f.type === "resume_truncated");
    assert.deepEqual(truncated, [{ type: "resume_truncated", chatId: long.id, fromSeq: 8, toSeq: 12 }]);
    const errors = s.frames.filter((f) => f.type === "error");
    assert.deepEqual(
      errors.map((f) => [f.code, f.chatIds]),
      [["CHAT_FORBIDDEN", [strangers.id]]],
    );
    assert.deepEqual(Object.fromEntries(calls), { "chat.resume": 1 });
    s.close();
  });

  test("more to replay than one answer holds comes in further calls, every message once and in order", async () => {
    const big = await startEmbedded({ WS_RESUME_MAX_MESSAGES: "150" });
    try {
      const api = new ApiClient(big.url);
      const other = new ApiClient(big.url);
      const otherId = (await other.register(newUser("r"))).user.id;
      await api.register(newUser("o"));
      const chats: ChatView[] = [];
      for (let c = 0; c < 3; c++) {
        const chat = await api.request<ChatView>("POST", "/chats", {
          type: "group",
          name: `g${c}`,
          memberIds: [otherId],
        });
        await Promise.all(
          Array.from({ length: 160 }, (_, i) =>
            api.request("POST", `/chats/${chat.id}/messages`, { message: `x${i}`, clientMsgId: `x${i}` }),
          ),
        );
        chats.push(chat);
      }
      const s = new RawSocket(`${big.url.replace("http", "ws")}/ws`, { token: other.accessToken as string });
      await s.next((f) => f.type === "ready");
      s.send({ type: "resume", chats: Object.fromEntries(chats.map((c) => [c.id, 0])) });
      await s.next(() => s.frames.filter((f) => f.type === "resume_truncated").length === 3, 20_000);
      for (const chat of chats) {
        const seqs = s.frames
          .filter((f) => f.type === "new_message" && f.chatId === chat.id)
          .map((f) => f.seq);
        assert.deepEqual(
          seqs,
          Array.from({ length: 150 }, (_, i) => i + 1),
        );
      }
      assert.deepEqual(
        s.frames.filter((f) => f.type === "resume_truncated").map((f) => [f.fromSeq, f.toSeq]),
        [
          [151, 160],
          [151, 160],
          [151, 160],
        ],
      );
      s.close();
    } finally {
      await big.stop();
    }
  });

  test("the client library pages what resume did not replay, so nothing is lost", async () => {
    const a = await signedIn("a");
    const b = await signedIn("b");
    const chat = await chatWith(a.api, b.id, 13);
    const received: MessageView[] = [];
    const socket = new ChatSocket(b.api, { onMessage: (m) => received.push(m) });
    socket.track(chat.id, 1);
    try {
      await socket.connect();
      // No live message follows, so no gap shows: only resume_truncated tells what is missing.
      const deadline = Date.now() + 5_000;
      while (received.length < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        received.map((m) => m.seq),
        Array.from({ length: 12 }, (_, i) => i + 2),
      );
    } finally {
      socket.close();
    }
  });
});

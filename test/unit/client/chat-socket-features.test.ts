/**
 * ChatSocket's chat features against a fake WebSocket: replies on send, reaction, pins_changed and
 * read frames handed to their listeners, and messages from blocked senders marked.
 */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { ChatSocket, type ChatSocketOptions } from "../../../client/chat-socket.ts";
import { ApiClient } from "../../../client/rest-client.ts";
import type { ClientMessage } from "../../../client/types.ts";
import { BASE, FakeWebSocket, fakeFetch, message } from "./fake-server.ts";

let socket: ChatSocket | undefined;
afterEach(() => socket?.close());

async function connect(options: ChatSocketOptions = {}): Promise<{ socket: ChatSocket; ws: FakeWebSocket }> {
  const api = new ApiClient(BASE, { fetch: fakeFetch().fetch, retry: false });
  await api.login({ username: "me_user", password: "whatever-pw" });
  socket = new ChatSocket(api, {
    ...options,
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
  });
  await socket.connect();
  assert.ok(FakeWebSocket.last);
  return { socket, ws: FakeWebSocket.last };
}

test("send carries replyTo, and still takes a bare clientMsgId", async () => {
  const { socket, ws } = await connect();
  const reply = socket.send({ chatId: "c1" }, "yes", { clientMsgId: "k-1", replyTo: "c1_1" });
  const plain = socket.send({ recipientId: "u2" }, "hi", "k-2");
  assert.deepEqual(ws.sent.slice(-2), [
    { type: "send_message", chatId: "c1", message: "yes", clientMsgId: "k-1", replyTo: "c1_1" },
    { type: "send_message", recipientId: "u2", message: "hi", clientMsgId: "k-2" },
  ]);
  ws.push({ type: "ack", clientMsgId: "k-1", chatId: "c1", messageId: "c1_2", seq: 2 });
  ws.push({ type: "ack", clientMsgId: "k-2", chatId: "d1", messageId: "d1_1", seq: 1 });
  assert.equal((await reply).messageId, "c1_2");
  assert.equal((await plain).seq, 1);
});

test("reaction, pins_changed and read go to their listeners and to onFrame", async () => {
  const got: string[] = [];
  const { ws } = await connect({
    onReaction: (f) => got.push(`reaction ${f.emoji} ${f.op} ${f.count}`),
    onPinsChanged: (f) => got.push(`pins ${f.messageId} ${f.op}`),
    onRead: (f) => got.push(`read ${f.userId} ${f.seq}`),
    onFrame: (f) => got.push(`frame ${f.type}`),
  });
  ws.push({
    type: "reaction",
    chatId: "c1",
    messageId: "c1_1",
    emoji: "👍",
    userId: "u2",
    op: "add",
    count: 1,
  });
  ws.push({ type: "pins_changed", chatId: "c1", messageId: "c1_1", userId: "u2", op: "remove" });
  ws.push({ type: "read", chatId: "c1", userId: "u2", seq: 5 });
  ws.push({ type: "typing", chatId: "c1", userId: "u2" });
  assert.deepEqual(got, [
    "reaction 👍 add 1",
    "frame reaction",
    "pins c1_1 remove",
    "frame pins_changed",
    "read u2 5",
    "frame read",
    "frame typing",
  ]);
});

test("messages from blocked senders carry blockedSender, from the option and after setBlocked", async () => {
  const messages: ClientMessage[] = [];
  const edits: Record<string, unknown>[] = [];
  const { socket, ws } = await connect({
    blocked: ["u2"],
    onMessage: (m) => messages.push(m),
    onFrame: (f) => edits.push(f),
  });
  ws.push({ type: "new_message", ...message(1, "u2") });
  ws.push({ type: "new_message", ...message(2, "u3") });
  ws.push({ type: "message_edited", ...message(1, "u2") });
  socket.setBlocked(new Set(["u3"]));
  ws.push({ type: "new_message", ...message(3, "u2") });
  ws.push({ type: "new_message", ...message(4, "u3") });
  assert.deepEqual(
    messages.map((m) => [m.seq, m.blockedSender]),
    [
      [1, true],
      [2, undefined],
      [3, undefined],
      [4, true],
    ],
  );
  assert.equal(edits[0]?.type, "message_edited");
  assert.equal(edits[0]?.blockedSender, true);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { newUser, startNode, tempDir, waitReady } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

const ALL = ["auth", "profile", "chat", "gateway"] as const;

test("a stopping gateway finishes the frames in flight, acks them, then closes with 1001", async () => {
  const data = await tempDir();
  try {
    const node = await startNode([...ALL], { DATA_DIR: data.dir });
    await waitReady(node.url);
    const a = new ApiClient(node.url);
    const b = new ApiClient(node.url);
    await a.register(newUser("a"));
    const bId = (await b.register(newUser("b"))).user.id;
    const chat = await a.request<ChatView>("POST", "/chats", { type: "direct", userId: bId });
    const socket = new RawSocket(`${node.url.replace("http", "ws")}/ws`, { token: a.accessToken });
    await socket.next((f) => f.type === "ready");
    for (let i = 0; i < 10; i++) {
      socket.send({ type: "send_message", chatId: chat.id, message: `m${i}`, clientMsgId: `s${i}` });
    }
    await new Promise((r) => setTimeout(r, 5));
    const stopping = node.stop();
    const closed = await socket.closed;
    await stopping;
    assert.equal(closed.code, 1001);
    const acked = socket.frames.filter((f) => f.type === "ack").map((f) => f.clientMsgId);

    const again = await startNode([...ALL], { DATA_DIR: data.dir });
    try {
      await waitReady(again.url);
      const history = await again.broker.call(
        "chat.history",
        { id: chat.id, limit: 50 },
        { meta: { user: { id: bId, sessionId: "s" } } },
      );
      const stored = (history as { messages: MessageView[] }).messages.map((m) => m.clientMsgId);
      for (const id of acked) assert.ok(stored.includes(String(id)), `acked ${String(id)} was stored`);
      assert.equal(acked.length, 10, "every frame received before the shutdown was handled and acked");
    } finally {
      await again.stop();
    }
  } finally {
    await data.remove();
  }
});

test("a stopping gateway answers the requests that reached it before the stop, however early in them", async () => {
  const data = await tempDir();
  try {
    const node = await startNode([...ALL], { DATA_DIR: data.dir });
    await waitReady(node.url);
    const a = new ApiClient(node.url);
    await a.register(newUser("early"));
    const chat = await a.request<ChatView>("POST", "/chats", { type: "group", name: "g", memberIds: [] });
    const gateway = node.broker.getLocalService("gateway") as unknown as {
      server: import("node:http").Server;
    };
    // The stop begins the moment the request reaches the server: before its token is checked and
    // before any action runs for it.
    let stopping: Promise<void> | undefined;
    gateway.server.once("request", () => {
      stopping = node.stop();
    });
    const answers = await Promise.all([
      a.raw("GET", `/chats/${chat.id}/messages?limit=5`),
      a.raw("GET", "/users/me"),
    ]);
    await stopping;
    assert.deepEqual(
      answers.map((r) => r.status),
      [200, 200],
    );
  } finally {
    await data.remove();
  }
});

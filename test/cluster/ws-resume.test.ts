/**
 * Bounded resume across nodes: two gateways, two chat nodes, real NATS, Redis and FerretDB. A
 * socket on one gateway resumes chats written through the other: one `chat.resume` call for all
 * of them, WS_RESUME_MAX_MESSAGES per chat, the rest named and paged by the client library.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

const MAX = 5;
let servers: Servers;
let cluster: TestCluster;
const urls: string[] = [];
/** chat.resume calls the chat nodes served. */
let resumeCalls = 0;

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, { WS_RESUME_MAX_MESSAGES: String(MAX) });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  for (const id of ["chat-1", "chat-2"]) {
    const node = await cluster.add(id, ["chat"]);
    const logic = (
      node.broker.getLocalService("chat") as unknown as { logic: { resume: (...a: never[]) => unknown } }
    ).logic;
    const resume = logic.resume.bind(logic);
    logic.resume = (...args: never[]) => {
      resumeCalls += 1;
      return resume(...args);
    };
  }
  for (const id of ["gw-1", "gw-2"]) urls.push((await cluster.add(id, ["gateway"])).url);
  await Promise.all(urls.map((u) => waitReady(u)));
});

after(async () => {
  await cluster?.stop();
  await servers?.stop();
});

async function user(gateway: number): Promise<{ api: ApiClient; id: string }> {
  const api = new ApiClient(urls[gateway] as string);
  return { api, id: (await api.register(newUser("rs"))).user.id };
}

const wsUrl = (gateway: number) => `${(urls[gateway] as string).replace("http", "ws")}/ws`;

test("a socket on the other gateway resumes many chats in one call: capped replays, their ranges, one error for strangers' chats", async () => {
  const writer = await user(0);
  const reader = await user(1);
  const outsider = await user(0);
  const chats: ChatView[] = [];
  for (let c = 0; c < 4; c++) {
    const chat = await writer.api.request<ChatView>("POST", "/chats", {
      type: "group",
      name: `r${c}`,
      memberIds: [reader.id],
    });
    for (let i = 1; i <= 3 + c * 3; i++) {
      await writer.api.request("POST", `/chats/${chat.id}/messages`, {
        message: `m${i}`,
        clientMsgId: `m${i}`,
      });
    }
    chats.push(chat);
  }
  const foreign = await outsider.api.request<ChatView>("POST", "/chats", {
    type: "direct",
    userId: writer.id,
  });
  const s = new RawSocket(wsUrl(1), { token: reader.api.accessToken as string });
  await s.next((f) => f.type === "ready");
  resumeCalls = 0;
  s.send({
    type: "resume",
    chats: { ...Object.fromEntries(chats.map((c) => [c.id, 0])), [foreign.id]: 0, "no-such-chat": 0 },
  });
  await s.next(() => s.frames.filter((f) => f.type === "resume_truncated").length === 3);
  await s.next((f) => f.type === "error");
  await new Promise((r) => setTimeout(r, 300));
  const seqs = (chatId: string) =>
    s.frames.filter((f) => f.type === "new_message" && f.chatId === chatId).map((f) => f.seq);
  assert.deepEqual(seqs(chats[0]?.id as string), [1, 2, 3]);
  for (const chat of chats.slice(1)) assert.deepEqual(seqs(chat.id), [1, 2, 3, 4, 5]);
  assert.deepEqual(
    s.frames.filter((f) => f.type === "resume_truncated").map((f) => [f.chatId, f.fromSeq, f.toSeq]),
    [
      [chats[1]?.id, 6, 6],
      [chats[2]?.id, 6, 9],
      [chats[3]?.id, 6, 12],
    ],
  );
  const errors = s.frames.filter((f) => f.type === "error");
  assert.equal(errors.length, 1);
  assert.deepEqual([...((errors[0]?.chatIds ?? []) as string[])].sort(), [foreign.id, "no-such-chat"].sort());
  assert.equal(resumeCalls, 1, "one call to the chat service for every chat listed");
  s.close();
});

test("the client library on the other gateway gets every message, replayed or paged, in order", async () => {
  const writer = await user(0);
  const reader = await user(1);
  const chat = await writer.api.request<ChatView>("POST", "/chats", { type: "direct", userId: reader.id });
  for (let i = 1; i <= 17; i++) {
    await writer.api.request("POST", `/chats/${chat.id}/messages`, {
      message: `m${i}`,
      clientMsgId: `m${i}`,
    });
  }
  const received: MessageView[] = [];
  const socket = new ChatSocket(reader.api, { url: wsUrl(1), onMessage: (m) => received.push(m) });
  socket.track(chat.id, 2);
  try {
    await socket.connect();
    const deadline = Date.now() + 10_000;
    while (received.length < 15 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      received.map((m) => m.seq),
      Array.from({ length: 15 }, (_, i) => i + 3),
    );
  } finally {
    socket.close();
  }
});

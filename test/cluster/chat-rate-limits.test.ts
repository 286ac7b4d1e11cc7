/**
 * The per-user send limit across the cluster: sends over REST through one gateway and over
 * sockets on another, to chats stored by two different chat nodes, spend one budget in Redis.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

const BUDGET = 10;
let servers: Servers;
let cluster: TestCluster;
const urls: string[] = [];
/** The chat node that stored each send, by chat. */
const storedBy = new Map<string, string>();

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers, {
    RATE_LIMIT_SEND_USER: `${BUDGET}/60`,
    RATE_LIMIT_CHAT_CREATE_USER: "1000/60",
  });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  for (const id of ["chat-1", "chat-2"]) {
    const node = await cluster.add(id, ["chat"]);
    const logic = (
      node.broker.getLocalService("chat") as unknown as { logic: { send: (...a: never[]) => unknown } }
    ).logic;
    const send = logic.send.bind(logic);
    logic.send = (...args: never[]) => {
      storedBy.set(args[1] as unknown as string, id);
      return send(...args);
    };
  }
  for (const id of ["gw-1", "gw-2"]) urls.push((await cluster.add(id, ["gateway"])).url);
  await Promise.all(urls.map((u) => waitReady(u)));
});

after(async () => {
  await cluster?.stop();
  await servers?.stop();
});

test("REST on one gateway and two sockets on another share one budget, whichever chat node stores the send", async () => {
  const sender = new ApiClient(urls[0] as string);
  await sender.register(newUser("rl"));
  const chats: ChatView[] = [];
  for (let i = 0; i < BUDGET; i++) {
    const peer = new ApiClient(urls[1] as string);
    const peerId = (await peer.register(newUser("pe"))).user.id;
    chats.push(await sender.request<ChatView>("POST", "/chats", { type: "direct", userId: peerId }));
  }
  const wsUrl = `${(urls[1] as string).replace("http", "ws")}/ws`;
  const sockets = [0, 1].map(() => new RawSocket(wsUrl, { token: sender.accessToken as string }));
  await Promise.all(sockets.map((s) => s.next((f) => f.type === "ready")));
  for (const [i, chat] of chats.entries()) {
    const id = `ok-${i}`;
    if (i % 3 === 0) {
      const res = await sender.raw("POST", `/chats/${chat.id}/messages`, {
        body: { message: id, clientMsgId: id },
      });
      assert.equal(res.status, 201, id);
    } else {
      const s = sockets[i % 2] as RawSocket;
      s.send({ type: "send_message", chatId: chat.id, message: id, clientMsgId: id });
      const answer = await s.next(
        (f) => (f.type === "ack" || f.type === "error") && (f.clientMsgId ?? f.ref) === id,
      );
      assert.equal(answer.type, "ack", JSON.stringify(answer));
    }
  }
  assert.deepEqual(new Set(storedBy.values()), new Set(["chat-1", "chat-2"]), "both chat nodes stored sends");

  const rest = await sender.raw("POST", `/chats/${chats[0]?.id}/messages`, {
    body: { message: "over", clientMsgId: "over-rest" },
  });
  assert.equal(rest.status, 429);
  assert.match(rest.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
  for (const [i, s] of sockets.entries()) {
    const id = `over-ws-${i}`;
    s.send({ type: "send_message", chatId: chats[i + 1]?.id, message: "over", clientMsgId: id });
    const error = await s.next((f) => f.type === "error" && f.ref === id);
    assert.equal(error.code, "RATE_LIMITED");
    assert.ok(Number(error.retryAfter) >= 1);
  }
  for (const s of sockets) s.close();
});

/**
 * Web Push across nodes, on real NATS, Redis and FerretDB: two gateways and two chat nodes (sends
 * reach them in turn). Both chat nodes sign with the one VAPID key pair in the store, and each
 * decides from its own presence map, fed by the gateways' broadcasts, that a user with a socket on
 * the other gateway gets no push, and that once it closed they do.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { call, type MessageView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { type PushServiceStandIn, startPushService } from "../support/push-service.ts";
import { RawSocket } from "../support/ws.ts";

const CHAT_NODES = ["chat-1", "chat-2"] as const;

interface ChatNodeView {
  presence: { isOnline(userId: string): boolean };
  push: { notifier: { messageStored(chat: unknown, message: MessageView): void } };
}

let servers: Servers;
let cluster: TestCluster;
let stand: PushServiceStandIn;
const gateways: string[] = [];
/** Which chat node decided the pushes of each message. */
const decidedBy = new Map<string, string>();
const sockets: RawSocket[] = [];

before(async () => {
  [servers, stand] = await Promise.all([startServers(), startPushService()]);
  cluster = await TestCluster.start(servers, { PUSH_ALLOW_INSECURE: "true" });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  // Started together, the two race to make the key pair; both must end up with the same one.
  await Promise.all(CHAT_NODES.map((id) => cluster.add(id, ["chat"])));
  for (const id of CHAT_NODES) {
    const notifier = chatNode(id).push.notifier;
    const messageStored = notifier.messageStored.bind(notifier);
    notifier.messageStored = (chat, message) => {
      decidedBy.set(message.id, id);
      messageStored(chat, message);
    };
  }
  for (const id of ["gw-1", "gw-2"]) gateways.push((await cluster.add(id, ["gateway"])).url);
  await Promise.all(gateways.map((url) => waitReady(url)));
});

after(async () => {
  for (const s of sockets) s.close();
  await cluster?.stop();
  await Promise.all([servers?.stop(), stand?.close()]);
});

function chatNode(id: string): ChatNodeView {
  return cluster.node(id).broker.getLocalService("chat") as unknown as ChatNodeView;
}

async function user(prefix: string, gateway = 0) {
  const api = new ApiClient(gateways[gateway] as string);
  const res = await api.register(newUser(prefix));
  const me = await api.me();
  return { api, id: res.user.id, token: res.accessToken, displayName: me.displayName };
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const everyChatNode = (test: (node: ChatNodeView) => boolean) => CHAT_NODES.every((id) => test(chatNode(id)));

let fence: { senders: (() => Promise<MessageView>)[]; endpoint: string } | undefined;
/**
 * Resolves once the pushes of the messages sent so far have arrived: messages to a fence user in a
 * chat stored by each chat node (sends are sharded by chat), each sent after the one before arrived.
 */
async function settled(): Promise<void> {
  if (!fence) {
    const to = await user("fb");
    const sub = stand.createSubscription();
    await to.api.subscribePush(sub);
    const byNode = new Map<string, () => Promise<MessageView>>();
    let n = 0;
    while (byNode.size < CHAT_NODES.length) {
      if (++n > 32) throw new Error("no fence chat found on every chat node");
      const from = await user("fa");
      const chatId = (await from.api.openDirect(to.id)).id;
      const send = () => from.api.sendMessage(chatId, "fence");
      const node = decidedBy.get((await send()).id) as string;
      if (!byNode.has(node)) byNode.set(node, send);
    }
    fence = { senders: [...byNode.values()], endpoint: sub.endpoint };
  }
  for (let round = 0; round < 2; round++) {
    for (const send of fence.senders) {
      const n = stand.received(fence.endpoint).length;
      await send();
      await stand.waitForEndpoint(fence.endpoint, n + 1);
    }
  }
}

describe("push across gateways and chat nodes", () => {
  test("both chat nodes serve the one VAPID public key, through either gateway", async () => {
    const keys = new Set<string>();
    for (const id of CHAT_NODES) {
      keys.add((await call(cluster.node("gw-1").broker, "chat.pushKey", {}, { nodeID: id })).publicKey);
    }
    for (const url of gateways) keys.add(await new ApiClient(url).pushPublicKey());
    assert.equal(keys.size, 1, [...keys].join(" "));
    assert.equal(Buffer.from([...keys][0] as string, "base64url").length, 65);
  });

  test("a user online on gateway 2 gets no push for a message sent through gateway 1; once their socket closes, they do", async () => {
    const b = await user("cb", 1);
    const sub = stand.createSubscription();
    assert.deepEqual(await b.api.subscribePush(sub), { created: true });
    const socket = new RawSocket(`${(gateways[1] as string).replace("http", "ws")}/ws`, { token: b.token });
    sockets.push(socket);
    await socket.next((f) => f.type === "ready");
    await until(() => everyChatNode((n) => n.presence.isOnline(b.id)), "both chat nodes to see B online");

    // Senders on gateway 1, each in a direct chat with B, until both chat nodes store some of them.
    const senders: { id: string; displayName: string; send(text: string): Promise<MessageView> }[] = [];
    const whileOnline: MessageView[] = [];
    while (new Set(whileOnline.map((m) => decidedBy.get(m.id))).size < CHAT_NODES.length) {
      assert.ok(senders.length < 32, "chats on every chat node");
      const a = await user("ca", 0);
      const chatId = (await a.api.openDirect(b.id)).id;
      const sender = { ...a, send: (text: string) => a.api.sendMessage(chatId, text) };
      senders.push(sender);
      const m = await sender.send("while you are online");
      await socket.next((f) => f.type === "new_message" && f.id === m.id);
      whileOnline.push(m);
    }
    await settled();
    assert.deepEqual(stand.received(sub.endpoint), [], "no push while the socket is open");

    socket.close();
    await until(() => everyChatNode((n) => !n.presence.isOnline(b.id)), "both chat nodes to see B offline");
    const whileAway: MessageView[] = [];
    for (const sender of senders) whileAway.push(await sender.send("while you are away"));
    await stand.waitForEndpoint(sub.endpoint, whileAway.length);
    await settled();
    const pushes = stand.received(sub.endpoint);
    assert.deepEqual(pushes.map((p) => p.payload.messageId).sort(), whileAway.map((m) => m.id).sort());
    assert.deepEqual(new Set(whileAway.map((m) => decidedBy.get(m.id))), new Set(CHAT_NODES));
    for (const [i, sender] of senders.entries()) {
      const push = pushes.find((p) => p.payload.messageId === whileAway[i]?.id);
      assert.deepEqual(
        { chatId: push?.payload.chatId, senderId: push?.payload.senderId, name: push?.payload.senderName },
        { chatId: whileAway[i]?.chatId, senderId: sender.id, name: sender.displayName },
      );
    }
    // Whichever node sent it, each push is signed with the key browsers subscribed with.
    const publicKey = await new ApiClient(gateways[0] as string).pushPublicKey();
    for (const p of pushes) assert.ok(String(p.headers.authorization).endsWith(`k=${publicKey}`));
    assert.deepEqual(stand.refused, []);
  });
});

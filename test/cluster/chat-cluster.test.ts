/**
 * Chat across nodes: three gateways and two chat nodes over a real nats-server, Redis and FerretDB.
 * Clients on different gateways talk in direct and group chats; delivery calls reach only the
 * gateways that hold recipients.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

let servers: Servers;
let cluster: TestCluster;
const gateways: string[] = [];
const framesIn = new Map<string, number>();
/** The chat nodes that stored sends, by chat. */
const sendsByChat = new Map<string, Set<string>>();
const members: Member[] = [];

interface Member {
  api: ApiClient;
  id: string;
  sockets: ChatSocket[];
  received: MessageView[][];
}

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers);
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  for (const id of ["chat-1", "chat-2"]) {
    const node = await cluster.add(id, ["chat"]);
    const logic = (
      node.broker.getLocalService("chat") as unknown as { logic: { send: (...a: never[]) => unknown } }
    ).logic;
    const send = logic.send.bind(logic);
    logic.send = (...args: never[]) => {
      const chatId = args[1] as unknown as string;
      const nodes = sendsByChat.get(chatId) ?? new Set<string>();
      nodes.add(id);
      sendsByChat.set(chatId, nodes);
      return send(...args);
    };
  }
  for (const id of ["gw-1", "gw-2", "gw-3"]) {
    const node = await cluster.add(id, ["gateway"]);
    gateways.push(node.url);
    const ws = (
      node.broker.getLocalService("gateway") as unknown as {
        ws: { deliverMany: (deliveries: unknown[]) => number };
      }
    ).ws;
    const deliverMany = ws.deliverMany.bind(ws);
    framesIn.set(id, 0);
    // Frames that reach the gateway (each item of a deliverMany call).
    ws.deliverMany = (deliveries: unknown[]) => {
      framesIn.set(id, (framesIn.get(id) ?? 0) + deliveries.length);
      return deliverMany(deliveries);
    };
  }
  await Promise.all(gateways.map((url) => waitReady(url)));
});

after(async () => {
  for (const m of members) for (const s of m.sockets) s.close();
  await cluster?.stop();
  await servers?.stop();
});

async function member(gatewayIndexes: number[]): Promise<Member> {
  const api = new ApiClient(gateways[gatewayIndexes[0] ?? 0] as string);
  const id = (await api.register(newUser("m"))).user.id;
  const m: Member = { api, id, sockets: [], received: [] };
  for (const g of gatewayIndexes) {
    const inbox: MessageView[] = [];
    const socket = new ChatSocket(api, {
      url: `${(gateways[g] as string).replace("http", "ws")}/ws`,
      onMessage: (msg) => inbox.push(msg),
    });
    await socket.connect();
    m.sockets.push(socket);
    m.received.push(inbox);
  }
  return m;
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("chat across three gateways and two chat nodes", () => {
  test("a direct chat between clients on different gateways delivers both ways", async () => {
    const a = await member([0]);
    const b = await member([1]);
    members.push(a, b);
    await new Promise((r) => setTimeout(r, 200));
    const chat = await a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
    for (const s of [...a.sockets, ...b.sockets]) s.track(chat.id, 0);
    await a.sockets[0]?.send({ chatId: chat.id }, "from a");
    await b.sockets[0]?.send({ chatId: chat.id }, "from b");
    await until(() => [a, b].every((m) => m.received.every((inbox) => inbox.length === 2)), "both messages");
    for (const m of [a, b])
      for (const inbox of m.received)
        assert.deepEqual(
          inbox.map((x) => x.seq),
          [1, 2],
        );
  });

  test("a group message reaches every connection of every member once, and only the gateways that hold them", async () => {
    await new Promise((r) => setTimeout(r, 200));
    const owner = await member([0]);
    const multi = await member([0, 1]);
    const other = await member([1]);
    members.push(owner, multi, other);
    await new Promise((r) => setTimeout(r, 300));
    const group = await owner.api.request<ChatView>("POST", "/chats", {
      type: "group",
      name: "across",
      memberIds: [multi.id, other.id],
    });
    const everyone = [owner, multi, other];
    for (const m of everyone) for (const s of m.sockets) s.track(group.id, 0);
    const before = new Map(framesIn);
    const sends = 20;
    for (let i = 0; i < sends; i++) {
      const sender = everyone[i % everyone.length] as Member;
      await sender.sockets[0]?.send({ chatId: group.id }, `g${i}`);
    }
    const inboxes = everyone.flatMap((m) => m.received);
    await until(
      () => inboxes.every((inbox) => inbox.filter((x) => x.chatId === group.id).length === sends),
      "every group message on every connection",
    );
    for (const inbox of inboxes) {
      const seqs = inbox.filter((x) => x.chatId === group.id).map((x) => x.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: sends }, (_, i) => i + 1),
      );
    }
    assert.equal(sendsByChat.get(group.id)?.size, 1, "one chat node stores every send of a chat");
    const calls = (id: string) => (framesIn.get(id) ?? 0) - (before.get(id) ?? 0);
    assert.equal(calls("gw-3"), 0, "no frame reaches a gateway without recipients");
    // Each send is two frames for each gateway with members: the message and its sender's read mark.
    const frames = 2 * sends;
    assert.ok(calls("gw-1") >= frames && calls("gw-1") <= frames + 2, `gw-1 got ${calls("gw-1")} frames`);
    assert.ok(calls("gw-2") >= frames && calls("gw-2") <= frames + 2, `gw-2 got ${calls("gw-2")} frames`);
  });
});

describe("sends over REST", () => {
  test("every send of a chat through any gateway is stored by one chat node, as over WebSocket", async () => {
    const owner = await member([]);
    const other = await member([]);
    members.push(owner, other);
    const chats = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        owner.api.request<ChatView>("POST", "/chats", {
          type: "group",
          name: `rest ${i}`,
          memberIds: [other.id],
        }),
      ),
    );
    for (const [c, chat] of chats.entries()) {
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${gateways[i % gateways.length]}/chats/${chat.id}/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${owner.api.accessToken}`, "content-type": "application/json" },
          body: JSON.stringify({ message: `m${i}`, clientMsgId: `rest-${c}-${i}` }),
        });
        assert.equal(res.status, 201);
      }
      assert.equal(sendsByChat.get(chat.id)?.size, 1, `chat ${c}: ${[...(sendsByChat.get(chat.id) ?? [])]}`);
    }
  });
});

describe("chat nodes that each keep a chat's members for sends", () => {
  test("a member removed through one chat node is refused by both at once; a resend through the other answers the first message", async () => {
    const owner = await member([]);
    const leaver = await member([]);
    const group = await owner.api.request<ChatView>("POST", "/chats", {
      type: "group",
      name: "leaving",
      memberIds: [leaver.id],
    });
    const broker = cluster.node("gw-1").broker;
    const as = (m: Member) => ({ meta: { user: { id: m.id, sessionId: "test" } } });
    const send = (m: Member, nodeID: string, message: string, clientMsgId: string) =>
      broker.call(
        "chat.send",
        { id: group.id, message, clientMsgId },
        { nodeID, ...as(m) },
      ) as Promise<MessageView>;
    // Both chat nodes read the chat (and keep its members) for these sends.
    const first = await send(leaver, "chat-1", "first", "c-first");
    await send(leaver, "chat-2", "second", "c-second");
    for (let i = 0; i < 3; i++) await send(owner, i % 2 ? "chat-1" : "chat-2", `o${i}`, `c-o${i}`);
    const again = await send(leaver, "chat-2", "first", "c-first");
    assert.deepEqual([again.id, again.seq], [first.id, 1], "the resend is the first message");

    await broker.call(
      "chat.removeMember",
      { id: group.id, userId: leaver.id },
      { nodeID: "chat-1", ...as(owner) },
    );
    for (const nodeID of ["chat-1", "chat-2"]) {
      await assert.rejects(send(leaver, nodeID, "after", `c-after-${nodeID}`), (err: { code?: number }) => {
        assert.equal(err.code, 403, `${nodeID} refuses a removed member`);
        return true;
      });
    }
    const history = await owner.api.request<{ messages: MessageView[] }>(
      "GET",
      `/chats/${group.id}/messages`,
    );
    assert.deepEqual(
      history.messages.map((m) => [m.seq, m.message]),
      [
        [1, "first"],
        [2, "second"],
        [3, "o0"],
        [4, "o1"],
        [5, "o2"],
      ],
    );
  });
});

describe("a gateway that joins", () => {
  test("its sockets get live messages as soon as it is ready", async () => {
    const sender = await member([0]);
    members.push(sender);
    const node = await cluster.add("gw-4", ["gateway"]);
    await waitReady(node.url);
    const api = new ApiClient(node.url);
    const id = (await api.register(newUser("late"))).user.id;
    const chat = await sender.api.request<ChatView>("POST", "/chats", { type: "direct", userId: id });
    const inbox: MessageView[] = [];
    const socket = new ChatSocket(api, {
      url: `${node.url.replace("http", "ws")}/ws`,
      onMessage: (msg) => inbox.push(msg),
    });
    await socket.connect();
    try {
      await sender.sockets[0]?.send({ chatId: chat.id }, "to the new gateway");
      await until(() => inbox.length === 1, "the live message");
      assert.equal(inbox[0]?.message, "to the new gateway");
    } finally {
      socket.close();
    }
  });
});

describe("presence across gateways", () => {
  const wsUrl = (g: number) => `${(gateways[g] as string).replace("http", "ws")}/ws`;
  const isPresence = (userId: string, status: string) => (f: { type: string } & Record<string, unknown>) =>
    f.type === "presence" && f.userId === userId && f.status === status;

  test("contacts on other gateways see a user come and go; the user sees who is online", async () => {
    const a = new ApiClient(gateways[0] as string);
    const b = new ApiClient(gateways[1] as string);
    const aId = (await a.register(newUser("pa"))).user.id;
    const bId = (await b.register(newUser("pb"))).user.id;
    await a.request("POST", "/chats", { type: "direct", userId: bId });
    const b1 = new RawSocket(wsUrl(1), { token: b.accessToken as string });
    await b1.next((f) => f.type === "ready");
    const a1 = new RawSocket(wsUrl(0), { token: a.accessToken as string });
    await b1.next(isPresence(aId, "online"));
    await a1.next(isPresence(bId, "online"));
    a1.close();
    const offline = await b1.next(isPresence(aId, "offline"));
    assert.ok(!Number.isNaN(Date.parse(String(offline.lastSeen))));
    b1.close();
  });

  test("a group whose members connect at once on three gateways: each member learns every other is online", async () => {
    const apis = Array.from({ length: 6 }, (_, i) => new ApiClient(gateways[i % 3] as string));
    const ids: string[] = [];
    for (const api of apis) ids.push((await api.register(newUser("pg"))).user.id);
    await apis[0]?.request("POST", "/chats", { type: "group", name: "burst", memberIds: ids.slice(1) });
    const sockets = apis.map((api, i) => new RawSocket(wsUrl(i % 3), { token: api.accessToken as string }));
    await Promise.all(
      sockets.map((socket, i) =>
        Promise.all(ids.filter((_, j) => j !== i).map((other) => socket.next(isPresence(other, "online")))),
      ),
    );
    for (const socket of sockets) socket.close();
  });
});

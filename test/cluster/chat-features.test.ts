/**
 * Issue 20 across nodes: three gateways and two chat nodes over a real nats-server, Redis and
 * FerretDB. Reactions, blocks, mutes, pins, own reads and mentions made through one node are seen
 * through the others; fifty members reacting at once through every gateway end with exact counts;
 * the chat list pages through alternating gateways.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient, type ApiResponse } from "../../client/rest-client.ts";
import type { ChatView, MessageView, PinView } from "../../lib/contracts.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { type Frame, RawSocket } from "../support/ws.ts";

let servers: Servers;
let cluster: TestCluster;
const gateways: string[] = [];
const sockets: RawSocket[] = [];
/** Reaction calls (add and remove) each chat node served. */
const reactionCalls = new Map<string, number>();

interface User {
  id: string;
  username: string;
  token: string;
  /** One client per gateway, all with the same token. */
  at: ApiClient[];
}

before(async () => {
  servers = await startServers();
  cluster = await TestCluster.start(servers);
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  for (const id of ["chat-1", "chat-2"]) {
    const node = await cluster.add(id, ["chat"]);
    const logic = (node.broker.getLocalService("chat") as unknown as { logic: Record<string, unknown> })
      .logic;
    reactionCalls.set(id, 0);
    for (const name of ["react", "unreact"]) {
      const original = logic[name] as (...a: unknown[]) => unknown;
      logic[name] = (...args: unknown[]) => {
        reactionCalls.set(id, (reactionCalls.get(id) ?? 0) + 1);
        return original.apply(logic, args);
      };
    }
  }
  for (const id of ["gw-1", "gw-2", "gw-3"]) gateways.push((await cluster.add(id, ["gateway"])).url);
  await Promise.all(gateways.map((url) => waitReady(url)));
});

after(async () => {
  for (const s of sockets) s.close();
  await cluster?.stop();
  await servers?.stop();
});

async function user(prefix = "u", gateway = 0): Promise<User> {
  const api = new ApiClient(gateways[gateway] as string);
  const res = await api.register(newUser(prefix));
  const at = gateways.map((url, i) => (i === gateway ? api : new ApiClient(url)));
  return { id: res.user.id, username: res.user.username, token: res.accessToken, at };
}

/** A request through gateway `g` (0-2) with the user's token. */
function via(u: User, g: number, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return (u.at[g] as ApiClient).raw(method, path, { body, token: u.token });
}

async function ok<T>(u: User, g: number, method: string, path: string, body?: unknown): Promise<T> {
  const res = await via(u, g, method, path, body);
  assert.ok(res.status < 300, `${method} ${path} via gw-${g + 1}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as T;
}

async function connect(u: User, g: number): Promise<RawSocket> {
  const s = new RawSocket(`${(gateways[g] as string).replace("http", "ws")}/ws`, { token: u.token });
  sockets.push(s);
  await s.next((f) => f.type === "ready");
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000) {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const got = await check();
      if (got !== undefined && got !== false) return got as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
      );
    }
    await sleep(100);
  }
}

const of =
  (type: string, extra: (f: Frame) => boolean = () => true) =>
  (f: Frame) =>
    f.type === type && extra(f);

let counter = 0;
const cid = () => `cf-${++counter}-${Date.now().toString(36)}`;

async function send(u: User, g: number, chatId: string, message: string): Promise<MessageView> {
  return ok<MessageView>(u, g, "POST", `/chats/${chatId}/messages`, { message, clientMsgId: cid() });
}

async function history(u: User, g: number, chatId: string): Promise<MessageView[]> {
  return (await ok<{ messages: MessageView[] }>(u, g, "GET", `/chats/${chatId}/messages?after=0&limit=200`))
    .messages;
}

async function messageOf(u: User, g: number, chatId: string, id: string): Promise<MessageView> {
  const m = (await history(u, g, chatId)).find((x) => x.id === id);
  assert.ok(m, `message ${id}`);
  return m;
}

/** What is wrong with answers that should all be 204, or nothing. */
function not204(answers: ApiResponse[], what: string): string[] {
  const failed = answers.filter((r) => r.status !== 204);
  if (failed.length === 0) return [];
  return [
    `${what}: ${failed.length} not 204: ${JSON.stringify(failed.slice(0, 2).map((r) => [r.status, r.body]))}`,
  ];
}

const reactionPath = (chatId: string, messageId: string, emoji: string) =>
  `/chats/${chatId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`;

describe("issue 20 features across three gateways and two chat nodes", () => {
  test("a reaction made through gateway 1 reaches sockets on gateways 2 and 3 and reads the same through each", async () => {
    const a = await user("ca", 0);
    const b = await user("cb", 2);
    const chat = await ok<ChatView>(a, 0, "POST", "/chats", { type: "direct", userId: b.id });
    const bs = await connect(b, 2);
    const as = await connect(a, 1);
    const m = await send(a, 0, chat.id, "react across");
    assert.equal((await via(a, 0, "PUT", reactionPath(chat.id, m.id, "👍"))).status, 204);
    const expected = {
      type: "reaction",
      chatId: chat.id,
      messageId: m.id,
      emoji: "👍",
      userId: a.id,
      op: "add",
      count: 1,
    };
    assert.deepEqual(await bs.next(of("reaction")), expected);
    assert.deepEqual(await as.next(of("reaction")), expected);
    for (const g of [0, 1, 2]) {
      assert.deepEqual((await messageOf(b, g, chat.id, m.id)).reactions, [
        { emoji: "👍", count: 1, userIds: [a.id] },
      ]);
    }
    assert.equal((await via(b, 1, "PUT", reactionPath(chat.id, m.id, "👍"))).status, 204);
    assert.equal((await as.next(of("reaction", (f) => f.userId === b.id))).count, 2);
    assert.equal((await via(a, 2, "DELETE", reactionPath(chat.id, m.id, "👍"))).status, 204);
    const removed = await bs.next(of("reaction", (f) => f.op === "remove"));
    assert.equal(removed.count, 1);
  });

  test("a block made through one node takes effect on both chat nodes at once; lifting it too", async () => {
    const a = await user("ba", 0);
    const b = await user("bb", 1);
    const chat = await ok<ChatView>(a, 0, "POST", "/chats", { type: "direct", userId: b.id });
    const broker = cluster.node("gw-1").broker;
    const as = (u: User) => ({ meta: { user: { id: u.id, sessionId: "test" } } });
    const sendOn = (u: User, nodeID: string, message: string) =>
      broker.call("chat.send", { id: chat.id, message, clientMsgId: cid() }, { nodeID, ...as(u) });
    const sendToOn = (u: User, other: User, nodeID: string) =>
      broker.call(
        "chat.sendTo",
        { recipientId: other.id, message: "to", clientMsgId: cid() },
        { nodeID, ...as(u) },
      );
    // Both chat nodes read the chat (and whatever they keep of the pair) for these sends.
    for (const nodeID of ["chat-1", "chat-2"]) {
      await sendOn(a, nodeID, `warm ${nodeID}`);
      await sendOn(b, nodeID, `warm ${nodeID}`);
    }
    assert.equal((await via(a, 2, "PUT", `/users/me/blocks/${b.id}`)).status, 204);
    for (const nodeID of ["chat-1", "chat-2"]) {
      for (const [who, other] of [
        [a, b],
        [b, a],
      ] as const) {
        await assert.rejects(sendOn(who, nodeID, "blocked?"), (err: { code?: number; type?: string }) => {
          assert.equal(err.code, 403, `${nodeID} refuses at once`);
          assert.equal(err.type, "BLOCKED");
          return true;
        });
        await assert.rejects(sendToOn(who, other, nodeID), (err: { type?: string }) => {
          assert.equal(err.type, "BLOCKED", `${nodeID} sendTo`);
          return true;
        });
      }
    }
    for (const g of [0, 1, 2]) {
      const res = await via(b, g, "POST", `/chats/${chat.id}/messages`, { message: "x", clientMsgId: cid() });
      assert.equal(res.status, 403, `via gw-${g + 1}`);
      assert.equal((res.body as { error: { code: string } }).error.code, "BLOCKED");
      assert.equal(
        (await via(b, g, "POST", "/chats", { type: "direct", userId: a.id })).status,
        403,
        `open via gw-${g + 1}`,
      );
    }
    const blocked = await ok<{ users: { id: string }[] }>(a, 1, "GET", "/users/me/blocks");
    assert.deepEqual(
      blocked.users.map((u) => u.id),
      [b.id],
    );

    assert.equal((await via(a, 1, "DELETE", `/users/me/blocks/${b.id}`)).status, 204);
    for (const nodeID of ["chat-1", "chat-2"]) {
      await sendOn(a, nodeID, `free ${nodeID}`);
      await sendOn(b, nodeID, `free ${nodeID}`);
    }
  });

  test("a block hides typing and presence between the pair whichever gateways they are on", async () => {
    const a = await user("ta", 0);
    const b = await user("tb", 1);
    const c = await user("tc", 2);
    const grp = await ok<ChatView>(a, 0, "POST", "/chats", {
      type: "group",
      name: "typing",
      memberIds: [b.id, c.id],
    });
    assert.equal((await via(b, 1, "PUT", `/users/me/blocks/${a.id}`)).status, 204);
    const cs = await connect(c, 2);
    const as = await connect(a, 0);
    const bs = await connect(b, 1);
    await cs.next(of("presence", (f) => f.userId === b.id && f.status === "online"));
    bs.send({ type: "typing", chatId: grp.id });
    await cs.next(of("typing", (f) => f.userId === b.id));
    as.send({ type: "typing", chatId: grp.id });
    await cs.next(of("typing", (f) => f.userId === a.id));
    await sleep(700);
    assert.equal(as.frames.filter(of("typing", (f) => f.userId === b.id)).length, 0);
    assert.equal(bs.frames.filter(of("typing", (f) => f.userId === a.id)).length, 0);
    assert.equal(as.frames.filter(of("presence", (f) => f.userId === b.id)).length, 0);
    assert.equal(bs.frames.filter(of("presence", (f) => f.userId === a.id)).length, 0);
    // Group messages still flow.
    const m = await send(b, 1, grp.id, "still in the group");
    await as.next(of("new_message", (f) => f.id === m.id));
  });

  test("mute and pins are visible through every gateway; pins_changed reaches sockets on each", async () => {
    const a = await user("pa", 0);
    const b = await user("pb", 1);
    const chat = await ok<ChatView>(a, 0, "POST", "/chats", { type: "direct", userId: b.id });
    const until = new Date(Date.now() + 3_600_000).toISOString();
    assert.equal((await via(a, 0, "PUT", `/chats/${chat.id}/mute`, { until })).status, 204);
    for (const g of [0, 1, 2]) {
      const v = await ok<ChatView>(a, g, "GET", `/chats/${chat.id}`);
      assert.equal(v.muted, true, `gw-${g + 1}`);
      assert.equal(Date.parse(v.mutedUntil as string), Date.parse(until));
      const list = await ok<{ chats: ChatView[] }>(a, g, "GET", "/chats");
      assert.equal(list.chats.find((x) => x.id === chat.id)?.muted, true);
      assert.equal((await ok<ChatView>(b, g, "GET", `/chats/${chat.id}`)).muted, false);
    }
    assert.equal((await via(a, 2, "DELETE", `/chats/${chat.id}/mute`)).status, 204);
    for (const g of [0, 1, 2])
      assert.equal((await ok<ChatView>(a, g, "GET", `/chats/${chat.id}`)).muted, false);

    const as = await connect(a, 0);
    const bs = await connect(b, 2);
    const m = await send(b, 1, chat.id, "pin me");
    assert.equal((await via(b, 1, "PUT", `/chats/${chat.id}/pins/${m.id}`)).status, 204);
    const expected = { type: "pins_changed", chatId: chat.id, messageId: m.id, userId: b.id, op: "add" };
    assert.deepEqual(await as.next(of("pins_changed")), expected);
    assert.deepEqual(await bs.next(of("pins_changed")), expected);
    for (const g of [0, 1, 2]) {
      const pins = (await ok<{ pins: PinView[] }>(a, g, "GET", `/chats/${chat.id}/pins`)).pins;
      assert.deepEqual(
        pins.map((p) => [p.message.id, p.pinnedBy]),
        [[m.id, b.id]],
        `gw-${g + 1}`,
      );
    }
    // Deleting the message through another gateway drops the pin everywhere.
    assert.equal((await via(b, 0, "DELETE", `/chats/${chat.id}/messages/${m.id}`)).status, 204);
    await as.next(of("pins_changed", (f) => f.op === "remove"));
    for (const g of [0, 1, 2]) {
      assert.deepEqual((await ok<{ pins: PinView[] }>(b, g, "GET", `/chats/${chat.id}/pins`)).pins, []);
    }
  });

  test("own messages are read and mentionCount counts, whichever gateway sends and reads", async () => {
    const a = await user("ra", 0);
    const b = await user("rb", 1);
    const c = await user("rc", 2);
    const grp = await ok<ChatView>(a, 0, "POST", "/chats", {
      type: "group",
      name: "reads",
      memberIds: [b.id, c.id],
    });
    const bs = await connect(b, 2);
    const m = await send(a, 0, grp.id, `hello @${b.username.toUpperCase()}`);
    assert.deepEqual(m.mentions, [b.id]);
    const frame = await bs.next(of("new_message", (f) => f.id === m.id));
    assert.deepEqual(frame.mentions, [b.id]);
    const read = await bs.next(of("read", (f) => f.userId === a.id));
    assert.deepEqual(read, { type: "read", chatId: grp.id, userId: a.id, seq: m.seq });
    assert.ok(bs.frames.indexOf(frame) < bs.frames.indexOf(read), "read after new_message");
    await send(c, 2, grp.id, "no mention");
    const counts = async (u: User, g: number) => {
      const listed = (await ok<{ chats: ChatView[] }>(u, g, "GET", "/chats")).chats.find(
        (x) => x.id === grp.id,
      );
      const got = await ok<ChatView>(u, g, "GET", `/chats/${grp.id}`);
      return { list: [listed?.unreadCount, listed?.mentionCount], get: [got.unreadCount, got.mentionCount] };
    };
    // The chat summary may be written up to 5 s after a send on another chat node.
    const expect = async (u: User, g: number, want: [number, number], what: string) =>
      until(async () => {
        const got = await counts(u, g);
        assert.deepEqual(got, { list: want, get: want }, what);
        return true;
      }, what);
    for (const g of [0, 1, 2]) {
      await expect(a, g, [1, 0], `a via gw-${g + 1}`);
      await expect(b, g, [2, 1], `b via gw-${g + 1}`);
      await expect(c, g, [0, 0], `c via gw-${g + 1}`);
    }
    assert.equal((await via(b, 0, "POST", `/chats/${grp.id}/read`, { seq: m.seq })).status, 204);
    for (const g of [0, 1, 2]) await expect(b, g, [1, 0], `b after reading via gw-${g + 1}`);
  });

  test("fifty members react with one emoji at once through three gateways: all 204, count 50, fifty userIds; fifty removes: no entry", async (t) => {
    const owner = await user("ro", 0);
    const reactors: User[] = [];
    for (let i = 0; i < 50; i += 10) {
      reactors.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => user("rr", (i + j) % 3)))));
    }
    const grp = await ok<ChatView>(owner, 0, "POST", "/chats", {
      type: "group",
      name: "fifty",
      memberIds: reactors.map((r) => r.id),
    });
    const watchers = [await connect(owner, 2), await connect(owner, 1)];
    const m = await send(owner, 0, grp.id, "react, everyone");
    const path = reactionPath(grp.id, m.id, "🎉");
    const callsBefore = new Map(reactionCalls);
    const started = Date.now();
    const added = await Promise.all(reactors.map((r, i) => via(r, i % 3, "PUT", path)));
    t.diagnostic(`50 PUTs answered in ${Date.now() - started} ms`);
    if (added.some((r) => r.status !== 204)) {
      const r = (await messageOf(owner, 0, grp.id, m.id)).reactions[0];
      t.diagnostic(`after the failed PUTs: count ${r?.count}, ${r?.userIds.length} userIds`);
    }
    // Checked at the end, so a failure here still shows what the rest does.
    const problems = not204(added, "the 50 PUTs");
    const served = [...reactionCalls].map(([id, n]) => [id, n - (callsBefore.get(id) ?? 0)] as const);
    t.diagnostic(`reaction calls served per chat node: ${JSON.stringify(served)}`);
    for (const g of [0, 1, 2]) {
      const r = (await messageOf(owner, g, grp.id, m.id)).reactions;
      assert.equal(r.length, 1);
      assert.equal(r[0]?.emoji, "🎉");
      assert.equal(r[0]?.count, 50, `count via gw-${g + 1}`);
      assert.equal(new Set(r[0]?.userIds).size, 50);
      assert.deepEqual([...(r[0]?.userIds ?? [])].sort(), reactors.map((x) => x.id).sort());
    }
    for (const w of watchers) {
      await until(() => w.frames.filter(of("reaction", (f) => f.op === "add")).length >= 50, "50 adds").catch(
        () => undefined,
      );
      const adds = w.frames.filter(of("reaction", (f) => f.op === "add"));
      const who = new Set(adds.map((f) => f.userId)).size;
      const max = Math.max(...adds.map((f) => Number(f.count)));
      if (adds.length !== 50 || who !== 50 || max !== 50) {
        problems.push(
          `${adds.length} add frames within 15 s from ${who} users, highest count ${max}; not 50`,
        );
      }
    }
    // Repeats change nothing.
    const addsSeen = watchers.map((w) => w.frames.filter(of("reaction", (f) => f.op === "add")).length);
    await Promise.all(reactors.slice(0, 10).map((r, i) => via(r, (i + 1) % 3, "PUT", path)));
    assert.equal((await messageOf(owner, 1, grp.id, m.id)).reactions[0]?.count, 50);

    const removing = Date.now();
    const removed = await Promise.all(reactors.map((r, i) => via(r, (i + 2) % 3, "DELETE", path)));
    t.diagnostic(`50 DELETEs answered in ${Date.now() - removing} ms`);
    problems.push(...not204(removed, "the 50 DELETEs"));
    for (const g of [0, 1, 2]) {
      assert.deepEqual((await messageOf(owner, g, grp.id, m.id)).reactions, [], `no entry via gw-${g + 1}`);
    }
    for (const [i, w] of watchers.entries()) {
      await until(
        () => w.frames.filter(of("reaction", (f) => f.op === "remove")).length >= 50,
        "50 removes",
      ).catch(() => undefined);
      const removes = w.frames.filter(of("reaction", (f) => f.op === "remove"));
      const min = Math.min(...removes.map((f) => Number(f.count)));
      if (removes.length !== 50 || min !== 0) {
        problems.push(`${removes.length} remove frames within 15 s, lowest count ${min}; not 50 and 0`);
      }
      const addsNow = w.frames.filter(of("reaction", (f) => f.op === "add")).length;
      if (addsNow !== addsSeen[i])
        problems.push(`${addsNow - (addsSeen[i] ?? 0)} add frames for repeated PUTs`);
    }
    assert.deepEqual(problems, []);
  });

  test("fifty reactions at once split over both chat nodes (as while a chat moves between nodes) still count exactly; so do fifty removes", async () => {
    const owner = await user("so", 0);
    const reactors: User[] = [];
    for (let i = 0; i < 50; i += 10) {
      reactors.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => user("sr", (i + j) % 3)))));
    }
    const grp = await ok<ChatView>(owner, 0, "POST", "/chats", {
      type: "group",
      name: "split",
      memberIds: reactors.map((r) => r.id),
    });
    const watcher = await connect(owner, 1);
    const m = await send(owner, 0, grp.id, "react on both nodes");
    const broker = cluster.node("gw-2").broker;
    const on = (action: "chat.react" | "chat.unreact", r: User, i: number) =>
      broker.call(
        action,
        { id: grp.id, messageId: m.id, emoji: "🚀" },
        { nodeID: i % 2 ? "chat-2" : "chat-1", meta: { user: { id: r.id, sessionId: "test" } } },
      );
    const before = new Map(reactionCalls);
    const added = await Promise.allSettled(reactors.map((r, i) => on("chat.react", r, i)));
    const refused = added.filter((x) => x.status === "rejected");
    assert.equal(refused.length, 0, `refused: ${JSON.stringify(refused.slice(0, 2))}`);
    for (const id of ["chat-1", "chat-2"]) {
      assert.equal((reactionCalls.get(id) ?? 0) - (before.get(id) ?? 0), 25, `${id} served 25`);
    }
    for (const g of [0, 1, 2]) {
      const r = (await messageOf(owner, g, grp.id, m.id)).reactions;
      assert.equal(r.length, 1);
      assert.equal(r[0]?.count, 50, `count via gw-${g + 1}`);
      assert.deepEqual([...(r[0]?.userIds ?? [])].sort(), reactors.map((x) => x.id).sort());
    }
    await until(() => watcher.frames.filter(of("reaction", (f) => f.op === "add")).length >= 50, "50 adds");
    const removed = await Promise.allSettled(reactors.map((r, i) => on("chat.unreact", r, i + 1)));
    assert.equal(removed.filter((x) => x.status === "rejected").length, 0);
    for (const g of [0, 1, 2]) {
      assert.deepEqual((await messageOf(owner, g, grp.id, m.id)).reactions, [], `no entry via gw-${g + 1}`);
    }
    await until(
      () => watcher.frames.filter(of("reaction", (f) => f.op === "remove")).length >= 50,
      "50 removes",
    );
    const counts = watcher.frames
      .filter(of("reaction", (f) => f.op === "remove"))
      .map((f) => Number(f.count));
    assert.equal(Math.min(...counts), 0);
  });

  test("the chat list pages through alternating gateways: every chat exactly once, in snapshot order, while messages arrive", async () => {
    const p = await user("lp", 0);
    const h = await user("lh", 1);
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      ids.push(
        (await ok<ChatView>(p, i % 3, "POST", "/chats", { type: "group", name: `l${i}`, memberIds: [h.id] }))
          .id,
      );
    }
    for (let i = 0; i < 20; i++) await send(h, i % 3, ids[(i * 7) % 120] as string, `setup ${i}`);
    // Past the 5 s a chat summary may wait and the list's snapshot margin.
    await sleep(7_500);
    const pageAll = async (between?: (round: number) => Promise<void>) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let round = 0; round < 10; round++) {
        if (round > 0 && between) await between(round);
        const q: string = cursor ? `?limit=25&cursor=${encodeURIComponent(cursor)}` : "?limit=25";
        const res: { chats: ChatView[]; hasMore: boolean; nextCursor: string | null } = await ok(
          p,
          round % 3,
          "GET",
          `/chats${q}`,
        );
        assert.ok(res.chats.length <= 25);
        seen.push(...res.chats.map((c) => c.id));
        if (!res.hasMore) {
          assert.equal(res.nextCursor, null);
          return seen;
        }
        cursor = res.nextCursor;
      }
      throw new Error("more than 10 pages");
    };
    const baseline = await pageAll();
    assert.equal(baseline.length, 120);
    assert.deepEqual([...baseline].sort(), [...ids].sort());
    let late: ChatView | undefined;
    const during = await pageAll(async (round) => {
      if (round === 1) {
        late = await ok<ChatView>(h, 2, "POST", "/chats", { type: "group", name: "late", memberIds: [p.id] });
      }
      for (const id of [baseline[round], baseline[119 - round], ids[Math.floor(Math.random() * 120)]]) {
        if (id) await send(h, (round + 1) % 3, id, `between ${round}`);
      }
    });
    assert.equal(new Set(during).size, during.length, "no chat repeated");
    assert.ok(late && !during.includes(late.id), "a chat made after the snapshot is not in later pages");
    assert.deepEqual(during, baseline, "every chat once, at its place as of the snapshot");
  });
});

/**
 * Issue 20 on one embedded platform: own messages read, chat list paging, replies, reactions,
 * mentions, blocking, muting and pins, over REST and the WebSocket, each success and each failure
 * (docs/api.md, "Chats" and "WebSocket").
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ApiClient, type ApiResponse } from "../../client/rest-client.ts";
import type { ChatView, MessageView, PinView, PublicProfile } from "../../lib/contracts.ts";
import { CURSOR_LIFETIME_MS, decodeChatCursor, encodeChatCursor } from "../../services/chat/chat-cursor.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { type Frame, RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let wsUrl: string;
const sockets: RawSocket[] = [];

interface User {
  api: ApiClient;
  id: string;
  username: string;
  token: string;
}

interface Issue {
  field?: string;
  type?: string;
  message?: string;
}

before(async () => {
  platform = await startEmbedded({ WS_RATE_LIMIT: "1000/10" });
  wsUrl = `${platform.url.replace("http", "ws")}/ws`;
});
after(async () => {
  for (const s of sockets) s.close();
  await platform.stop();
});

async function user(prefix = "u"): Promise<User> {
  const api = new ApiClient(platform.url);
  const res = await api.register(newUser(prefix));
  return { api, id: res.user.id, username: res.user.username, token: res.accessToken };
}

async function connect(u: User): Promise<RawSocket> {
  const s = new RawSocket(wsUrl, { token: u.token });
  sockets.push(s);
  await s.next((f) => f.type === "ready");
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

function code(res: ApiResponse): string | undefined {
  return (res.body as { error?: { code?: string } }).error?.code;
}

function issues(res: ApiResponse): Issue[] {
  return ((res.body as { error?: { details?: unknown } }).error?.details as Issue[] | undefined) ?? [];
}

/** Asserts a 422 VALIDATION_FAILED naming `field` (and `type` when given). */
function assert422(res: ApiResponse, field: string, what: string, type?: string): void {
  assert.equal(res.status, 422, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(code(res), "VALIDATION_FAILED", what);
  const named = issues(res).find((d) => d.field === field);
  assert.ok(named, `${what}: details name ${field}: ${JSON.stringify(res.body)}`);
  if (type !== undefined) assert.equal(named.type, type, `${what}: details type`);
}

function assertError(res: ApiResponse, status: number, errorCode: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(code(res), errorCode, what);
}

async function direct(a: User, b: User): Promise<ChatView> {
  return a.api.request<ChatView>("POST", "/chats", { type: "direct", userId: b.id });
}

async function group(owner: User, others: User[], name = "g"): Promise<ChatView> {
  return owner.api.request<ChatView>("POST", "/chats", {
    type: "group",
    name,
    memberIds: others.map((o) => o.id),
  });
}

let clientMsgCounter = 0;
function cid(prefix = "c"): string {
  clientMsgCounter += 1;
  return `${prefix}-${clientMsgCounter}-${Date.now().toString(36)}`;
}

function post(u: User, chatId: string, message: string, extra: Record<string, unknown> = {}) {
  return u.api.raw<MessageView>("POST", `/chats/${chatId}/messages`, {
    body: { message, clientMsgId: cid(), ...extra },
  });
}

async function sent(u: User, chatId: string, message: string, extra: Record<string, unknown> = {}) {
  const res = await post(u, chatId, message, extra);
  assert.equal(res.status, 201, `send: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function history(u: User, chatId: string): Promise<MessageView[]> {
  return (
    await u.api.request<{ messages: MessageView[] }>("GET", `/chats/${chatId}/messages?after=0&limit=200`)
  ).messages;
}

async function messageOf(u: User, chatId: string, messageId: string): Promise<MessageView> {
  const found = (await history(u, chatId)).find((m) => m.id === messageId);
  assert.ok(found, `message ${messageId} in the history`);
  return found;
}

async function listed(u: User, chatId: string): Promise<ChatView> {
  const all = await allChats(u);
  const found = all.find((c) => c.id === chatId);
  assert.ok(found, `chat ${chatId} in GET /chats`);
  return found;
}

async function allChats(u: User, limit = 200): Promise<ChatView[]> {
  const out: ChatView[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const query: string = cursor ? `?limit=${limit}&cursor=${encodeURIComponent(cursor)}` : `?limit=${limit}`;
    const res: { chats: ChatView[]; hasMore: boolean; nextCursor: string | null } = await u.api.request(
      "GET",
      `/chats${query}`,
    );
    out.push(...res.chats);
    if (!res.hasMore) return out;
    cursor = res.nextCursor;
  }
  throw new Error("more than 100 pages");
}

function reactionPath(chatId: string, messageId: string, emoji: string, encoded = false): string {
  return `/chats/${chatId}/messages/${messageId}/reactions/${encoded ? emoji : encodeURIComponent(emoji)}`;
}

function react(u: User, chatId: string, messageId: string, emoji: string, method = "PUT", encoded = false) {
  return u.api.raw(method, reactionPath(chatId, messageId, emoji, encoded));
}

const of =
  (type: string, extra: (f: Frame) => boolean = () => true) =>
  (f: Frame) =>
    f.type === type && extra(f);

/** How many frames match after a pause long enough for a frame sent before it to arrive. */
async function countAfterPause(s: RawSocket, test: (f: Frame) => boolean, ms = 400): Promise<number> {
  await sleep(ms);
  return s.frames.filter(test).length;
}

describe("own messages are read", () => {
  test("REST: the sender's unreadCount is 0, the other member's 3, and the other gets `read` for the sender after each new_message", async () => {
    const a = await user("ra");
    const b = await user("rb");
    const chat = await direct(a, b);
    const bs = await connect(b);
    const msgs: MessageView[] = [];
    for (let i = 1; i <= 3; i++) msgs.push(await sent(a, chat.id, `own ${i}`));
    await bs.next(of("read", (f) => f.seq === 3));
    for (const m of msgs) {
      const n = bs.frames.findIndex(of("new_message", (f) => f.id === m.id));
      const r = bs.frames.findIndex(of("read", (f) => f.chatId === chat.id && f.seq === m.seq));
      assert.ok(n >= 0, `new_message ${m.seq}`);
      assert.ok(r > n, `read ${m.seq} comes after its new_message (${n} < ${r})`);
      assert.deepEqual(bs.frames[r], { type: "read", chatId: chat.id, userId: a.id, seq: m.seq });
    }
    assert.equal((await listed(a, chat.id)).unreadCount, 0);
    assert.equal((await listed(b, chat.id)).unreadCount, 3);
    assert.equal((await a.api.request<ChatView>("GET", `/chats/${chat.id}`)).unreadCount, 0);
    assert.equal((await b.api.request<ChatView>("GET", `/chats/${chat.id}`)).unreadCount, 3);

    // A resend changes nothing: no second read frame, the same counts.
    const readsBefore = bs.frames.filter(of("read")).length;
    const again = await a.api.raw<MessageView>("POST", `/chats/${chat.id}/messages`, {
      body: { message: "own 3", clientMsgId: msgs[2]?.clientMsgId },
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, msgs[2]?.id);
    assert.equal(await countAfterPause(bs, of("read")), readsBefore, "a resend sends no read frame");
    assert.equal((await listed(b, chat.id)).unreadCount, 3);

    // b's own send moves b's mark past a's three messages.
    await sent(b, chat.id, "answer");
    assert.equal((await listed(b, chat.id)).unreadCount, 0);
    assert.equal((await listed(a, chat.id)).unreadCount, 1);
  });

  test("WebSocket: send_message moves the sender's mark too; the other member gets `read` after new_message", async () => {
    const a = await user("wa");
    const b = await user("wb");
    const chat = await direct(a, b);
    const as = await connect(a);
    const bs = await connect(b);
    for (let i = 1; i <= 3; i++) {
      as.send({ type: "send_message", chatId: chat.id, message: `ws ${i}`, clientMsgId: `ws-own-${i}` });
      await as.next(of("ack", (f) => f.clientMsgId === `ws-own-${i}`));
    }
    const read = await bs.next(of("read", (f) => f.seq === 3));
    assert.deepEqual(read, { type: "read", chatId: chat.id, userId: a.id, seq: 3 });
    const n = bs.frames.findIndex(of("new_message", (f) => f.seq === 3));
    assert.ok(n >= 0 && n < bs.frames.indexOf(read), "read after new_message");
    assert.equal((await listed(a, chat.id)).unreadCount, 0);
    assert.equal((await listed(b, chat.id)).unreadCount, 3);
    // The sender's own connections are told their mark too (their other devices clear the chat).
    assert.deepEqual(await as.next(of("read", (f) => f.seq === 3)), read);

    // recipientId opens the chat and still moves the sender's mark.
    const c = await user("wc");
    as.send({ type: "send_message", recipientId: c.id, message: "new", clientMsgId: "ws-own-r" });
    const ack = await as.next(of("ack", (f) => f.clientMsgId === "ws-own-r"));
    assert.equal((await listed(a, String(ack.chatId))).unreadCount, 0);
    assert.equal((await listed(c, String(ack.chatId))).unreadCount, 1);
  });
});

describe("chat list paging", () => {
  let p: User;
  let h: User;
  const chatIds: string[] = [];
  /** H's messages per chat: P never reads, so this is P's unreadCount. */
  const unread = new Map<string, number>();
  const lastText = new Map<string, string>();
  let baseline: string[] = [];
  let other: User;
  /** A group of `other`'s older than all of P's chats, that P joins after a snapshot. */
  let oldGroup: ChatView;

  const page = async (u: User, query: string) => {
    const res = await u.api.raw<{ chats: ChatView[]; hasMore: boolean; nextCursor: string | null }>(
      "GET",
      `/chats${query}`,
    );
    assert.equal(res.status, 200, `GET /chats${query}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const hSends = async (chatId: string, text: string) => {
    await sent(h, chatId, text);
    unread.set(chatId, (unread.get(chatId) ?? 0) + 1);
    lastText.set(chatId, text);
  };

  before(async () => {
    p = await user("pp");
    h = await user("ph");
    other = await user("po");
    oldGroup = await group(other, [h], "older than P's chats");
    for (let i = 0; i < 250; i++) {
      const chat = await group(p, [h], `paging ${i}`);
      chatIds.push(chat.id);
    }
    // Shuffle the activity order: messages into 40 chats, some twice.
    for (let i = 0; i < 40; i++) {
      const id = chatIds[(i * 37) % 250] as string;
      await hSends(id, `setup ${i}`);
    }
    // Past the list's snapshot margin, so the first page of every test sees all of this.
    await sleep(2_500);
  });

  test("a page answers {chats, hasMore, nextCursor}; the default limit is 50; every chat has the counts and mute fields", async () => {
    const first = await page(p, "");
    assert.deepEqual(Object.keys(first).sort(), ["chats", "hasMore", "nextCursor"]);
    assert.equal(first.chats.length, 50);
    assert.equal(first.hasMore, true);
    assert.equal(typeof first.nextCursor, "string");
    for (const c of first.chats) {
      assert.equal(typeof c.unreadCount, "number");
      assert.equal(typeof c.mentionCount, "number");
      assert.equal(c.muted, false);
      assert.equal(c.mutedUntil, null);
    }
    const max = await page(p, "?limit=200");
    assert.equal(max.chats.length, 200);
    const one = await page(p, "?limit=1");
    assert.equal(one.chats.length, 1);
    assert.equal(one.chats[0]?.id, max.chats[0]?.id);
  });

  test("pages of 50 cover all 250 chats exactly once, by last activity, newest first; the last page has hasMore false and nextCursor null", async () => {
    const seen: ChatView[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await page(p, cursor ? `?limit=50&cursor=${encodeURIComponent(cursor)}` : "?limit=50");
      pages += 1;
      assert.ok(res.chats.length <= 50);
      seen.push(...res.chats);
      if (!res.hasMore) assert.equal(res.nextCursor, null);
      else assert.equal(typeof res.nextCursor, "string");
      cursor = res.hasMore ? res.nextCursor : null;
      assert.ok(pages <= 6, "at most 6 pages");
    } while (cursor);
    assert.equal(pages, 5, "250 chats in pages of 50");
    const ids = seen.map((c) => c.id);
    assert.equal(new Set(ids).size, 250, "no chat repeated");
    assert.deepEqual([...ids].sort(), [...chatIds].sort(), "every chat listed");
    const activity = (c: ChatView) => Date.parse(c.lastMessage?.createdAt ?? c.createdAt);
    for (let i = 1; i < seen.length; i++) {
      const prev = seen[i - 1] as ChatView;
      const cur = seen[i] as ChatView;
      assert.ok(activity(prev) >= activity(cur), `chat ${i} is not newer than chat ${i - 1}`);
    }
    // The chats with messages come before every chat without.
    const withMessages = new Set(unread.keys());
    assert.deepEqual(
      new Set(ids.slice(0, withMessages.size)),
      withMessages,
      "the chats with messages are the most recent",
    );
    for (const c of seen) assert.equal(c.unreadCount, unread.get(c.id) ?? 0, `unreadCount of ${c.id}`);
    baseline = ids;
  });

  test("messages arriving into random chats between page requests neither skip nor repeat a chat; chats made after the first page stay out", async () => {
    assert.equal(baseline.length, 250, "the previous test set the baseline");
    const seen: ChatView[] = [];
    let res = await page(p, "?limit=50");
    seen.push(...res.chats);
    // After the snapshot: a chat P makes, one P is added to.
    const made = await group(p, [h], "after the snapshot");
    const joined = await group(other, [p], "joined after the snapshot");
    let round = 0;
    while (res.hasMore) {
      round += 1;
      const touched: string[] = [];
      // Into a chat already listed, the last one of the baseline, and random ones.
      for (const id of [
        baseline[round] as string,
        baseline[249 - round] as string,
        baseline[50 * round + 7] as string,
        chatIds[Math.floor(Math.random() * 250)] as string,
      ]) {
        if (!id) continue;
        await hSends(id, `between pages ${round} ${touched.length}`);
        touched.push(id);
      }
      res = await page(p, `?limit=50&cursor=${encodeURIComponent(res.nextCursor as string)}`);
      for (const c of res.chats) {
        assert.equal(c.unreadCount, unread.get(c.id) ?? 0, `current unreadCount of ${c.id}`);
        const text = lastText.get(c.id);
        if (text !== undefined) assert.equal(c.lastMessage?.message, text, `current lastMessage of ${c.id}`);
      }
      seen.push(...res.chats);
      assert.ok(round <= 6);
    }
    const ids = seen.map((c) => c.id);
    assert.ok(!ids.includes(made.id), "a chat made after the snapshot is not listed");
    assert.ok(!ids.includes(joined.id), "a chat made with P after the snapshot is not listed");
    assert.equal(new Set(ids).size, ids.length, "no chat repeated");
    assert.deepEqual(ids, baseline, "the chats in their place as of the snapshot");

    // A new first page, once past the snapshot margin, sees the new chats and the new order.
    await sleep(2_500);
    const fresh = await allChats(p, 100);
    assert.equal(fresh.length, 252);
    for (const c of [made, joined])
      assert.ok(
        fresh.some((f) => f.id === c.id),
        c.name ?? "",
      );
    const lastTouched = [...lastText.keys()].at(-1);
    assert.notDeepEqual(
      fresh.map((c) => c.id).filter((id) => id !== made.id && id !== joined.id),
      baseline,
      `the order moved (last touched ${lastTouched})`,
    );
  });

  test("an older chat P is added to after the first page is listed at most once by the later pages, and by a new first page", async (t) => {
    const first = await page(p, "?limit=50");
    await other.api.request("POST", `/chats/${oldGroup.id}/members`, { userId: p.id });
    const ids = first.chats.map((c) => c.id);
    let res = first;
    for (let round = 0; res.hasMore && round < 10; round++) {
      res = await page(p, `?limit=50&cursor=${encodeURIComponent(res.nextCursor as string)}`);
      ids.push(...res.chats.map((c) => c.id));
    }
    assert.equal(new Set(ids).size, ids.length, "no chat repeated");
    assert.equal(ids.filter((id) => id !== oldGroup.id).length, 252, "every chat P was in at the snapshot");
    t.diagnostic(
      `the chat joined after the snapshot is ${ids.includes(oldGroup.id) ? "" : "not "}in the later pages`,
    );
    assert.ok(
      (await allChats(p)).some((c) => c.id === oldGroup.id),
      "a new first page lists it",
    );
  });

  test("a message moves its chat to the top of a new first page within the snapshot margin; its lastMessage is current at once", async () => {
    const bottom = (await allChats(p)).at(-1) as ChatView;
    await hSends(bottom.id, "to the top");
    const now = await allChats(p);
    assert.equal(now.find((c) => c.id === bottom.id)?.lastMessage?.message, "to the top");
    const started = Date.now();
    await until(async () => (await page(p, "?limit=1")).chats[0]?.id === bottom.id, "the chat on top", 5_000);
    assert.ok(Date.now() - started < 4_000);
  });

  test("limit outside 1-200 or not an integer is 422 naming limit", async () => {
    for (const limit of ["0", "201", "x", "-1", "1.5", "1e9"]) {
      assert422(await p.api.raw("GET", `/chats?limit=${limit}`), "limit", `limit=${limit}`);
    }
    assert.equal((await p.api.raw("GET", "/chats?limit=")).status, 422, "an empty limit");
    assert.equal((await p.api.raw("GET", "/chats?page=2")).status, 422, "an unknown parameter");
  });

  test("a tampered or made-up cursor is 422 naming cursor; another user's cursor never shows the first user's chats", async (t) => {
    const first = await page(p, "?limit=50");
    const cursor = first.nextCursor as string;
    const at = Math.floor(cursor.length / 2);
    const flipped = cursor.slice(0, at) + (cursor[at] === "A" ? "B" : "A") + cursor.slice(at + 1);
    for (const [what, bad] of [
      ["one character flipped", flipped],
      ["random base64url", randomBytes(48).toString("base64url")],
      ["random base64", randomBytes(30).toString("base64")],
      ["not base64", "!!!not-a-cursor!!!"],
      ["cut short", cursor.slice(0, Math.max(1, cursor.length - 8))],
      ["a character added", `${cursor}A`],
    ] as const) {
      const res = await p.api.raw("GET", `/chats?limit=50&cursor=${encodeURIComponent(bad)}`);
      assert422(res, "cursor", what, "cursor");
    }
    assert.equal((await p.api.raw("GET", "/chats?cursor=")).status, 422, "an empty cursor");
    // A cursor older than its 30 minutes, made the way the server makes them.
    const real = decodeChatCursor(p.id, cursor);
    const expired = encodeChatCursor(p.id, {
      at: Date.now() - CURSOR_LIFETIME_MS - 60_000,
      below: real.below,
    });
    assert422(
      await p.api.raw("GET", `/chats?limit=50&cursor=${encodeURIComponent(expired)}`),
      "cursor",
      "an expired cursor",
      "cursorExpired",
    );
    assert.equal(
      (await p.api.raw("GET", `/chats?cursor=${"A".repeat(513)}`)).status,
      422,
      "a cursor over 512 characters",
    );

    // Another user with chats of their own, given P's cursor.
    const q = await user("pq");
    const qChats = new Set<string>();
    for (let i = 0; i < 3; i++) qChats.add((await group(q, [], `q ${i}`)).id);
    const res = await q.api.raw<{ chats: ChatView[] }>(
      "GET",
      `/chats?limit=50&cursor=${encodeURIComponent(cursor)}`,
    );
    if (res.status === 200) {
      t.diagnostic("another user's cursor is answered 200 with the caller's own chats");
      for (const c of res.body.chats) {
        assert.ok(qChats.has(c.id), `${c.id} is one of the caller's chats`);
        assert.ok(c.members.includes(q.id));
      }
    } else {
      t.diagnostic(`another user's cursor is answered ${res.status} ${JSON.stringify(res.body)}`);
      assert422(res, "cursor", "another user's cursor");
    }
    // The gateway still serves P's paging.
    assert.equal((await page(p, `?limit=50&cursor=${encodeURIComponent(cursor)}`)).chats.length, 50);
  });
});

describe("replies", () => {
  let a: User;
  let b: User;
  let chat: ChatView;
  let other: ChatView;
  let as: RawSocket;
  let bs: RawSocket;
  const long = `${"😀".repeat(150)}${"x".repeat(100)}`;

  before(async () => {
    a = await user("qa");
    b = await user("qb");
    const c = await user("qc");
    chat = await direct(a, b);
    other = await direct(a, c);
    as = await connect(a);
    bs = await connect(b);
  });

  test("POST with replyTo: the answer, the new_message frame and the history carry replyTo with a 200-code-point preview; a non-reply has no replyTo key", async () => {
    const original = await sent(a, chat.id, long);
    assert.ok(!("replyTo" in original), "a non-reply has no replyTo");
    assert.deepEqual(original.reactions, []);
    assert.deepEqual(original.mentions, []);
    const reply = await sent(b, chat.id, "an answer", { replyTo: original.id });
    const expected = {
      id: original.id,
      seq: original.seq,
      senderId: a.id,
      preview: [...long].slice(0, 200).join(""),
      deleted: false,
    };
    assert.deepEqual(reply.replyTo, expected);
    assert.equal([...(reply.replyTo?.preview ?? "")].length, 200);
    const frame = await as.next(of("new_message", (f) => f.id === reply.id));
    assert.deepEqual(frame.replyTo, expected);
    const msgs = await history(a, chat.id);
    assert.deepEqual(msgs.find((m) => m.id === reply.id)?.replyTo, expected);
    assert.ok(!("replyTo" in (msgs.find((m) => m.id === original.id) as MessageView)));

    // A short original is previewed whole.
    const short = await sent(a, chat.id, "short");
    const r2 = await sent(a, chat.id, "to myself", { replyTo: short.id });
    assert.equal(r2.replyTo?.preview, "short");
  });

  test("WebSocket send_message with replyTo: the frames carry replyTo", async () => {
    const original = await sent(a, chat.id, "ask over ws");
    bs.send({
      type: "send_message",
      chatId: chat.id,
      message: "answer over ws",
      clientMsgId: "ws-reply-1",
      replyTo: original.id,
    });
    const ack = await bs.next(of("ack", (f) => f.clientMsgId === "ws-reply-1"));
    const frame = await as.next(of("new_message", (f) => f.id === ack.messageId));
    assert.deepEqual(frame.replyTo, {
      id: original.id,
      seq: original.seq,
      senderId: a.id,
      preview: "ask over ws",
      deleted: false,
    });
    assert.deepEqual((await messageOf(a, chat.id, String(ack.messageId))).replyTo, frame.replyTo);
    // recipientId with replyTo as well.
    bs.send({
      type: "send_message",
      recipientId: a.id,
      message: "by recipient",
      clientMsgId: "ws-reply-2",
      replyTo: original.id,
    });
    const ack2 = await bs.next(of("ack", (f) => f.clientMsgId === "ws-reply-2"));
    assert.equal((await messageOf(a, chat.id, String(ack2.messageId))).replyTo?.id, original.id);
  });

  test("an edit of the original shows in the preview; an edit of the reply keeps replyTo; a deleted original previews as empty and deleted", async () => {
    const original = await sent(a, chat.id, "first words");
    const reply = await sent(b, chat.id, "re", { replyTo: original.id });
    await a.api.request("PATCH", `/chats/${chat.id}/messages/${original.id}`, { message: "better words" });
    assert.equal((await messageOf(b, chat.id, reply.id)).replyTo?.preview, "better words");
    const edited = await b.api.request<MessageView>("PATCH", `/chats/${chat.id}/messages/${reply.id}`, {
      message: "re, edited",
    });
    assert.equal(edited.replyTo?.preview, "better words");
    const editFrame = await as.next(of("message_edited", (f) => f.id === reply.id));
    assert.equal((editFrame.replyTo as { preview?: string } | undefined)?.preview, "better words");

    assert.equal((await a.api.raw("DELETE", `/chats/${chat.id}/messages/${original.id}`)).status, 204);
    assert.deepEqual((await messageOf(b, chat.id, reply.id)).replyTo, {
      id: original.id,
      seq: original.seq,
      senderId: a.id,
      preview: "",
      deleted: true,
    });
    // A reply to the deleted message is refused.
    assert422(
      await post(b, chat.id, "late", { replyTo: original.id }),
      "replyTo",
      "reply to a deleted message",
    );
  });

  test("replyTo of another chat, unknown or malformed is 422 naming replyTo, and nothing is stored", async () => {
    const elsewhere = await sent(a, other.id, "in the other chat");
    const before = await history(a, chat.id);
    const listedBefore = await listed(a, chat.id);
    for (const [what, replyTo] of [
      ["another chat's message", elsewhere.id],
      ["an unknown id", "no-such-message"],
      ["the chat's own id", chat.id],
    ] as const) {
      const res = await post(a, chat.id, "refused", { replyTo, clientMsgId: "reply-refused" });
      assert422(res, "replyTo", what);
    }
    assert.equal((await post(a, chat.id, "x", { replyTo: "bad id!" })).status, 422, "a malformed id");
    assert.equal((await post(a, chat.id, "x", { replyTo: 5 })).status, 422, "a number");
    as.send({
      type: "send_message",
      chatId: chat.id,
      message: "refused over ws",
      clientMsgId: "reply-refused-ws",
      replyTo: elsewhere.id,
    });
    const error = await as.next(of("error", (f) => f.ref === "reply-refused-ws"));
    assert.equal(error.code, "VALIDATION_FAILED");
    as.send({
      type: "send_message",
      chatId: chat.id,
      message: "refused",
      clientMsgId: "reply-refused-ws2",
      replyTo: 7,
    });
    assert.equal((await as.next(of("error", (f) => f.ref === "reply-refused-ws2"))).code, "INVALID_FRAME");

    assert.deepEqual(await history(a, chat.id), before, "the history is unchanged");
    assert.deepEqual((await listed(a, chat.id)).lastMessage, listedBefore.lastMessage);
    // The refused clientMsgId was not used up.
    const ok = await post(a, chat.id, "stored now", { clientMsgId: "reply-refused" });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.message, "stored now");
  });
});

describe("reactions", () => {
  let a: User;
  let b: User;
  let c: User;
  let chat: ChatView;
  let as: RawSocket;
  let bs: RawSocket;

  before(async () => {
    a = await user("xa");
    b = await user("xb");
    c = await user("xc");
    chat = await direct(a, b);
    as = await connect(a);
    bs = await connect(b);
  });

  const reactions = async (messageId: string) => (await messageOf(a, chat.id, messageId)).reactions;

  test("PUT and DELETE are 204 and idempotent; counts, userIds in reaction order, emoji in first-use order; a `reaction` frame per change and none for a no-op", async () => {
    const m = await sent(a, chat.id, "react to me");
    const isReaction = (f: Frame) => f.type === "reaction" && f.messageId === m.id;

    assert.equal((await react(a, chat.id, m.id, "👍")).status, 204);
    const expectAdd = {
      type: "reaction",
      chatId: chat.id,
      messageId: m.id,
      emoji: "👍",
      userId: a.id,
      op: "add",
      count: 1,
    };
    assert.deepEqual(await as.next(isReaction), expectAdd, "the reactor's own connection");
    assert.deepEqual(await bs.next(isReaction), expectAdd);
    assert.deepEqual(await reactions(m.id), [{ emoji: "👍", count: 1, userIds: [a.id] }]);

    assert.equal((await react(a, chat.id, m.id, "👍")).status, 204, "a repeat PUT");
    assert.equal(await countAfterPause(bs, isReaction), 1, "no frame for a repeat PUT");
    assert.deepEqual(await reactions(m.id), [{ emoji: "👍", count: 1, userIds: [a.id] }]);

    assert.equal((await react(b, chat.id, m.id, "👍")).status, 204);
    assert.deepEqual(await as.next((f) => isReaction(f) && f.userId === b.id), {
      ...expectAdd,
      userId: b.id,
      count: 2,
    });
    assert.equal((await react(b, chat.id, m.id, "🎉")).status, 204);
    await as.next((f) => isReaction(f) && f.emoji === "🎉");
    assert.deepEqual(await reactions(m.id), [
      { emoji: "👍", count: 2, userIds: [a.id, b.id] },
      { emoji: "🎉", count: 1, userIds: [b.id] },
    ]);

    assert.equal((await react(a, chat.id, m.id, "👍", "DELETE")).status, 204);
    assert.deepEqual(await bs.next((f) => isReaction(f) && f.op === "remove"), {
      ...expectAdd,
      op: "remove",
      count: 1,
    });
    const frames = bs.frames.filter(isReaction).length;
    assert.equal((await react(a, chat.id, m.id, "👍", "DELETE")).status, 204, "a repeat DELETE");
    assert.equal((await react(a, chat.id, m.id, "🎉", "DELETE")).status, 204, "a DELETE never reacted");
    assert.equal(await countAfterPause(bs, isReaction), frames, "no frame for a DELETE that changed nothing");

    assert.equal((await react(b, chat.id, m.id, "👍", "DELETE")).status, 204);
    const last = await as.next((f) => isReaction(f) && f.op === "remove" && f.userId === b.id);
    assert.equal(last.count, 0);
    assert.deepEqual(await reactions(m.id), [{ emoji: "🎉", count: 1, userIds: [b.id] }], "no empty entry");
    // Re-adding puts the emoji after the ones in use.
    assert.equal((await react(a, chat.id, m.id, "👍")).status, 204);
    assert.deepEqual(
      (await reactions(m.id)).map((r) => r.emoji),
      ["🎉", "👍"],
    );
  });

  test("every MessageView carries reactions and mentions: the send answer, new_message, history", async () => {
    const m = await sent(a, chat.id, "plain");
    assert.deepEqual([m.reactions, m.mentions], [[], []]);
    const frame = await bs.next(of("new_message", (f) => f.id === m.id));
    assert.deepEqual([frame.reactions, frame.mentions], [[], []]);
    await react(b, chat.id, m.id, "🔥");
    const edited = await a.api.request<MessageView>("PATCH", `/chats/${chat.id}/messages/${m.id}`, {
      message: "plain, edited",
    });
    assert.deepEqual(
      edited.reactions,
      [{ emoji: "🔥", count: 1, userIds: [b.id] }],
      "an edit keeps reactions",
    );
  });

  test("emoji forms: sequences, flags, keycaps and skin tones are one emoji each; a text-style ❤ is taken as ❤️", async () => {
    const m = await sent(a, chat.id, "forms");
    const valid = ["👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️", "🏳️‍🌈"];
    for (const e of valid) assert.equal((await react(a, chat.id, m.id, e)).status, 204, `PUT ${e}`);
    assert.deepEqual(
      (await reactions(m.id)).map((r) => r.emoji),
      valid,
    );
    const m2 = await sent(a, chat.id, "hearts");
    assert.equal((await react(a, chat.id, m2.id, "\u2764")).status, 204, "text-style heart");
    const frame = await bs.next(of("reaction", (f) => f.messageId === m2.id));
    assert.equal(frame.emoji, "\u2764\uFE0F");
    assert.equal((await react(b, chat.id, m2.id, "\u2764\uFE0F")).status, 204);
    assert.deepEqual(await reactions(m2.id), [{ emoji: "\u2764\uFE0F", count: 2, userIds: [a.id, b.id] }]);
    assert.equal((await react(a, chat.id, m2.id, "\u2764", "DELETE")).status, 204, "DELETE in text style");
    assert.deepEqual(await reactions(m2.id), [{ emoji: "\u2764\uFE0F", count: 1, userIds: [b.id] }]);
  });

  test("anything but one emoji is 422 naming emoji; nothing changes and the gateway keeps serving", async () => {
    const m = await sent(a, chat.id, "strict");
    await react(a, chat.id, m.id, "👍");
    const before = await reactions(m.id);
    const bad: [string, string, boolean][] = [
      ["a letter", "a", false],
      ["two emoji", "😀😀", false],
      ["a digit", "1", false],
      ["a hash", "#", false],
      ["an emoji and a letter", "👍a", false],
      ["a space", " ", false],
      ["a lone variation selector", "\uFE0F", false],
      ["a zero-width joiner", "\u200d", false],
      ["a long text", "x".repeat(65), false],
    ];
    for (const [what, emoji, encoded] of bad) {
      for (const method of ["PUT", "DELETE"]) {
        assert422(await react(a, chat.id, m.id, emoji, method, encoded), "emoji", `${method} ${what}`);
      }
    }
    // Not percent-encoded UTF-8: the path cannot be decoded.
    for (const raw of ["%F0", "%E2%9D", "%ZZ"]) {
      assertError(await react(a, chat.id, m.id, raw, "PUT", true), 400, "BAD_REQUEST", `PUT ${raw}`);
    }
    assert.equal(
      await countAfterPause(
        bs,
        of("reaction", (f) => f.messageId === m.id),
      ),
      1,
    );
    assert.deepEqual(await reactions(m.id), before, "the reactions are unchanged");
    const ok = await sent(a, chat.id, "still serving");
    assert.equal(ok.message, "still serving");
    assert.equal((await react(b, chat.id, ok.id, "👌")).status, 204);
  });

  test("a 21st distinct emoji is 422 (reactionLimit) and the message keeps its 20; the 20 can still be added to", async () => {
    const m = await sent(a, chat.id, "many");
    const twenty = [..."😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗"];
    assert.equal(twenty.length, 20);
    for (const e of twenty) assert.equal((await react(a, chat.id, m.id, e)).status, 204, e);
    assert422(await react(a, chat.id, m.id, "🤩"), "emoji", "the 21st", "reactionLimit");
    assert422(await react(b, chat.id, m.id, "🤩"), "emoji", "the 21st by another", "reactionLimit");
    const now = await reactions(m.id);
    assert.deepEqual(
      now.map((r) => r.emoji),
      twenty,
    );
    assert.equal((await react(b, chat.id, m.id, "😀")).status, 204, "one of the 20");
    assert.deepEqual((await reactions(m.id))[0], { emoji: "😀", count: 2, userIds: [a.id, b.id] });
    // Freeing a slot lets a new one in.
    assert.equal((await react(a, chat.id, m.id, "🤗", "DELETE")).status, 204);
    assert.equal((await react(a, chat.id, m.id, "🤩")).status, 204);
    assert.equal((await reactions(m.id)).length, 20);
  });

  test("userIds are the first 50 who reacted, in order, while count counts them all", async () => {
    const owner = await user("xo");
    const many: User[] = [];
    for (let i = 0; i < 52; i += 13)
      many.push(...(await Promise.all(Array.from({ length: 13 }, () => user("xr")))));
    const g = await group(owner, many, "fifty-two");
    const m = await sent(owner, g.id, "count us");
    for (const u of many) assert.equal((await react(u, g.id, m.id, "👏")).status, 204);
    const view = async () => (await messageOf(owner, g.id, m.id)).reactions;
    assert.deepEqual(await view(), [{ emoji: "👏", count: 52, userIds: many.slice(0, 50).map((u) => u.id) }]);
    // The second reactor leaves the 50; the 51st moves in.
    assert.equal((await react(many[1] as User, g.id, m.id, "👏", "DELETE")).status, 204);
    assert.deepEqual(await view(), [
      {
        emoji: "👏",
        count: 51,
        userIds: [many[0], ...many.slice(2, 51)].map((u) => (u as User).id),
      },
    ]);
  });

  test("an unknown message is 404 MESSAGE_NOT_FOUND, a deleted one too for PUT (DELETE is 204); deleting clears the reactions; a non-member is 403 CHAT_FORBIDDEN", async () => {
    const m = await sent(a, chat.id, "to delete");
    await react(b, chat.id, m.id, "👍");
    await as.next(of("reaction", (f) => f.messageId === m.id));
    assert.equal((await a.api.raw("DELETE", `/chats/${chat.id}/messages/${m.id}`)).status, 204);
    await as.next(of("message_deleted", (f) => f.id === m.id));
    assert.equal(
      await countAfterPause(
        as,
        of("reaction", (f) => f.messageId === m.id),
      ),
      1,
      "no reaction frame for the reactions a delete clears",
    );
    const tomb = await messageOf(a, chat.id, m.id);
    assert.equal(tomb.deleted, true);
    assert.deepEqual(tomb.reactions, [], "deleting clears the reactions");
    assert.deepEqual(tomb.mentions, []);
    assertError(await react(b, chat.id, m.id, "👍"), 404, "MESSAGE_NOT_FOUND", "PUT on a deleted message");
    // Removing a reaction from a deleted message has nothing left to remove: 204, no frame.
    const frames = as.frames.filter(of("reaction")).length;
    assert.equal((await react(b, chat.id, m.id, "👍", "DELETE")).status, 204, "DELETE on a deleted message");
    assert.equal(await countAfterPause(as, of("reaction")), frames, "no frame");
    for (const method of ["PUT", "DELETE"]) {
      assertError(
        await react(b, chat.id, "no-such-message", "👍", method),
        404,
        "MESSAGE_NOT_FOUND",
        `${method} unknown`,
      );
    }
    const live = await sent(a, chat.id, "members only");
    for (const method of ["PUT", "DELETE"]) {
      const real = await react(c, chat.id, live.id, "👍", method);
      assertError(real, 403, "CHAT_FORBIDDEN", `${method} by a non-member`);
      const fake = await react(c, "no-such-chat", live.id, "👍", method);
      assert.deepEqual(fake.body, real.body, "the same answer whether the chat exists or not");
    }
    // A message of another chat through this chat's path.
    const elsewhere = await sent(a, (await direct(a, c)).id, "elsewhere");
    assertError(
      await react(b, chat.id, elsewhere.id, "👍"),
      404,
      "MESSAGE_NOT_FOUND",
      "another chat's message",
    );
    assert.deepEqual((await messageOf(a, chat.id, live.id)).reactions, []);
  });
});

describe("mentions", () => {
  let a: User;
  let b: User;
  let c: User;
  let d: User;
  let chat: ChatView;

  before(async () => {
    a = await user("ma");
    b = await user("mb");
    c = await user("mc");
    d = await user("md");
    chat = await group(a, [b, c], "mentions");
  });

  const mentionCount = async (u: User) => {
    const got = await u.api.request<ChatView>("GET", `/chats/${chat.id}`);
    const inList = (await listed(u, chat.id)).mentionCount;
    assert.equal(got.mentionCount, inList, "GET /chats/:id and GET /chats agree");
    return got.mentionCount;
  };

  test("@username in any letter case naming members, in order of first mention, without duplicates, non-members or unknown names", async () => {
    const bs = await connect(b);
    const m = await sent(
      a,
      chat.id,
      `hi @${b.username.toUpperCase()} and (@${c.username}), @${b.username} again, @${d.username} @zz_${randomBytes(4).toString("hex")}`,
    );
    assert.deepEqual(m.mentions, [b.id, c.id]);
    assert.deepEqual((await bs.next(of("new_message", (f) => f.id === m.id))).mentions, [b.id, c.id]);
    assert.deepEqual((await messageOf(c, chat.id, m.id)).mentions, [b.id, c.id]);
  });

  test("the @ must start the text or follow a character that is not A-Za-z0-9_, and the name ends where those characters do", async () => {
    const none = await sent(
      a,
      chat.id,
      `mail@${b.username} x_@${b.username} 9@${c.username} @${b.username}x @${c.username}_2 @@`,
    );
    assert.deepEqual(none.mentions, []);
    assert.deepEqual((await sent(a, chat.id, `@${c.username}`)).mentions, [c.id], "at the start");
    assert.deepEqual(
      (await sent(a, chat.id, `café@${b.username}!`)).mentions,
      [b.id],
      "after é and before !",
    );
    assert.deepEqual(
      (await sent(a, chat.id, `-@${c.username}.@${b.username}`)).mentions,
      [c.id, b.id],
      "after - and .",
    );
  });

  test("mentionCount counts unread messages that mention the caller; a read clears it; the sender's self-mention never counts", async () => {
    const self = await sent(a, chat.id, `note to @${a.username}`);
    assert.deepEqual(self.mentions, [a.id]);
    assert.equal(await mentionCount(a), 0);
    // b: the first test's message, café@, -@ . @ = 3; c: first, at the start, -@ = 3.
    assert.equal(await mentionCount(b), 3);
    assert.equal(await mentionCount(c), 3);
    assert.equal((await b.api.request<ChatView>("GET", `/chats/${chat.id}`)).unreadCount, 6);
    assert.equal(
      (await c.api.raw("POST", `/chats/${chat.id}/read`, { body: { seq: self.seq } })).status,
      204,
    );
    assert.equal(await mentionCount(c), 0, "read past them");
    assert.equal(await mentionCount(b), 3, "b has not read");
  });

  test("an edit re-resolves the mentions; a delete clears them", async () => {
    const m = await sent(a, chat.id, `@${b.username} look`);
    assert.equal(await mentionCount(b), 4);
    assert.equal(await mentionCount(c), 0);
    const edited = await a.api.request<MessageView>("PATCH", `/chats/${chat.id}/messages/${m.id}`, {
      message: `@${c.username} look instead`,
    });
    assert.deepEqual(edited.mentions, [c.id]);
    assert.equal(await mentionCount(b), 3);
    assert.equal(await mentionCount(c), 1);
    assert.equal((await a.api.raw("DELETE", `/chats/${chat.id}/messages/${m.id}`)).status, 204);
    assert.deepEqual((await messageOf(b, chat.id, m.id)).mentions, []);
    assert.equal(await mentionCount(c), 0);
    // b reads everything: 0.
    const last = (await history(b, chat.id)).at(-1) as MessageView;
    await b.api.request("POST", `/chats/${chat.id}/read`, { seq: last.seq });
    assert.equal(await mentionCount(b), 0);
  });

  test("a user added later is mentioned from then on; one who left is no longer", async () => {
    const e = await user("me");
    const before = await sent(a, chat.id, `@${e.username} are you here?`);
    assert.deepEqual(before.mentions, []);
    await a.api.request("POST", `/chats/${chat.id}/members`, { userId: e.id });
    assert.deepEqual((await sent(a, chat.id, `@${e.username} now you are`)).mentions, [e.id]);
    assert.equal(await mentionCount(e), 1);
    await a.api.request("DELETE", `/chats/${chat.id}/members/${e.id}`);
    assert.deepEqual((await sent(a, chat.id, `@${e.username} gone`)).mentions, []);
  });
});

describe("blocking", () => {
  let a: User;
  let b: User;
  let c: User;
  let dm: ChatView;
  let grp: ChatView;

  before(async () => {
    a = await user("ba");
    b = await user("bb");
    c = await user("bc");
    dm = await direct(a, b);
    await sent(a, dm.id, "before the block");
    grp = await group(a, [b, c], "blocking");
  });

  const blocks = async (u: User) =>
    (await u.api.request<{ users: PublicProfile[] }>("GET", "/users/me/blocks")).users;

  test("PUT/DELETE are 204 and idempotent; GET lists public profiles, newest block first; oneself is 422, an unknown user 404", async () => {
    const x = await user("bx");
    const y = await user("by");
    assert.deepEqual(await blocks(x), []);
    assert.equal((await x.api.raw("PUT", `/users/me/blocks/${y.id}`)).status, 204);
    assert.equal((await x.api.raw("PUT", `/users/me/blocks/${y.id}`)).status, 204, "again");
    assert.equal((await x.api.raw("PUT", `/users/me/blocks/${c.id}`)).status, 204);
    const list = await blocks(x);
    assert.deepEqual(
      list.map((p) => p.id),
      [c.id, y.id],
    );
    assert.equal(list[1]?.username, y.username);
    assert.ok(!("email" in (list[1] as object)), "public profiles, no email");
    assert.deepEqual(await blocks(y), [], "the blocked user's own list is empty");

    assert422(await x.api.raw("PUT", `/users/me/blocks/${x.id}`), "userId", "blocking oneself");
    assertError(await x.api.raw("PUT", "/users/me/blocks/no-such-user"), 404, "USER_NOT_FOUND", "unknown");
    assert.equal((await x.api.raw("PUT", "/users/me/blocks/bad%20id")).status, 422, "a malformed id");
    assert.equal((await x.api.raw("DELETE", "/users/me/blocks/no-such-user")).status, 204, "DELETE unknown");
    assert.equal((await x.api.raw("DELETE", `/users/me/blocks/${c.id}`)).status, 204);
    assert.equal((await x.api.raw("DELETE", `/users/me/blocks/${c.id}`)).status, 204, "again");
    assert.deepEqual(
      (await blocks(x)).map((p) => p.id),
      [y.id],
    );
    assert.equal((await x.api.raw("GET", "/users/me/blocks", { token: null })).status, 401);

    // No direct chat can be opened either way, and none was made.
    assertError(
      await y.api.raw("POST", "/chats", { body: { type: "direct", userId: x.id } }),
      403,
      "BLOCKED",
      "the blocked opens",
    );
    assertError(
      await x.api.raw("POST", "/chats", { body: { type: "direct", userId: y.id } }),
      403,
      "BLOCKED",
      "the blocker opens",
    );
    assert.equal((await allChats(x)).length, 0, "no chat was made");
    await x.api.request("DELETE", `/users/me/blocks/${y.id}`);
    assert.equal(
      (await y.api.raw("POST", "/chats", { body: { type: "direct", userId: x.id } })).status,
      201,
      "made once the block is lifted",
    );
  });

  test("a block stops the pair's direct chat both ways over REST and WebSocket (BLOCKED), their typing and presence; group messages still flow; unblocking restores it all", async () => {
    const cs = await connect(c);
    const as = await connect(a);
    const early = await connect(b);
    await as.next(of("presence", (f) => f.userId === b.id && f.status === "online"));
    await early.next(of("presence", (f) => f.userId === a.id && f.status === "online"));
    const fromB = (f: Frame) => f.type === "presence" && f.userId === b.id;
    const fromA = (f: Frame) => f.type === "presence" && f.userId === a.id;
    assert.equal((await a.api.raw("PUT", `/users/me/blocks/${b.id}`)).status, 204);
    // Those connected when the block is made are told the other now reads as offline, never seen.
    const hiding = { type: "presence", status: "offline", lastSeen: null };
    assert.deepEqual(await as.next((f) => fromB(f) && f.status === "offline"), { ...hiding, userId: b.id });
    assert.deepEqual(await early.next((f) => fromA(f) && f.status === "offline"), {
      ...hiding,
      userId: a.id,
    });
    early.close();
    await cs.next(of("presence", (f) => f.userId === b.id && f.status === "offline"));
    const dmBefore = await history(a, dm.id);

    for (const [who, other] of [
      [b, a],
      [a, b],
    ] as const) {
      assertError(
        await who.api.raw("POST", "/chats", { body: { type: "direct", userId: other.id } }),
        403,
        "BLOCKED",
        "opening the existing direct chat",
      );
      assertError(await post(who, dm.id, "blocked?"), 403, "BLOCKED", "REST send");
    }
    const bs = await connect(b);
    for (const [s, other, tag] of [
      [bs, a, "b"],
      [as, b, "a"],
    ] as const) {
      s.send({ type: "send_message", chatId: dm.id, message: "ws", clientMsgId: `blk-chat-${tag}` });
      const e1 = await s.next(of("error", (f) => f.ref === `blk-chat-${tag}`));
      assert.equal(e1.code, "BLOCKED");
      s.send({ type: "send_message", recipientId: other.id, message: "ws", clientMsgId: `blk-rcpt-${tag}` });
      const e2 = await s.next(of("error", (f) => f.ref === `blk-rcpt-${tag}`));
      assert.equal(e2.code, "BLOCKED");
    }
    assert.deepEqual(await history(a, dm.id), dmBefore, "nothing stored");

    // Presence: b came online again after the block: c was told, a was not.
    await cs.next(
      of(
        "presence",
        (f) => f.userId === b.id && f.status === "online" && cs.frames.filter(fromB).length >= 3,
      ),
    );
    await countAfterPause(as, fromB);
    assert.deepEqual(
      as.frames.filter(fromB).map((f) => f.status),
      ["online", "offline"],
      "a heard nothing of b after the block's own frame",
    );
    assert.equal(bs.frames.filter(fromA).length, 0, "b (connecting after the block) sees no presence of a");
    const presence = (await platform.broker.call(
      "chat.presence",
      { userIds: [b.id, c.id] },
      { meta: { user: { id: a.id, sessionId: "test" } } },
    )) as { presence: { userId: string; status: string; lastSeen: string | null }[] };
    assert.deepEqual(presence.presence, [
      { userId: b.id, status: "offline", lastSeen: null },
      { userId: c.id, status: "online", lastSeen: null },
    ]);

    // Typing in the group: c gets it, the blocked side does not.
    bs.send({ type: "typing", chatId: grp.id });
    await cs.next(of("typing", (f) => f.userId === b.id));
    as.send({ type: "typing", chatId: grp.id });
    await cs.next(of("typing", (f) => f.userId === a.id));
    await sleep(400);
    assert.equal(as.frames.filter(of("typing", (f) => f.userId === b.id)).length, 0, "a gets no typing of b");
    assert.equal(bs.frames.filter(of("typing", (f) => f.userId === a.id)).length, 0, "b gets no typing of a");

    // Group messages flow both ways.
    const byB = await sent(b, grp.id, "from b in the group");
    await as.next(of("new_message", (f) => f.id === byB.id));
    const byA = await sent(a, grp.id, "from a in the group");
    await bs.next(of("new_message", (f) => f.id === byA.id));

    // b going offline is not told to a either.
    bs.close();
    await cs.next((f) => fromB(f) && f.status === "offline" && cs.frames.filter(fromB).length >= 4);
    await countAfterPause(as, fromB);
    assert.equal(as.frames.filter(fromB).length, 2, "a heard nothing of b going offline");

    // Unblock: everything is back; a is told b's real state at once.
    assert.equal((await a.api.raw("DELETE", `/users/me/blocks/${b.id}`)).status, 204);
    const real = await as.next((f) => fromB(f) && as.frames.filter(fromB).length >= 3);
    assert.equal(real.status, "offline");
    assert.ok(!Number.isNaN(Date.parse(String(real.lastSeen))), `b's real lastSeen: ${real.lastSeen}`);
    const b2 = await connect(b);
    await as.next(of("presence", (f) => f.userId === b.id && f.status === "online"));
    await b2.next(of("presence", (f) => f.userId === a.id && f.status === "online"));
    assert.equal((await post(b, dm.id, "hello again")).status, 201);
    assert.equal((await b.api.raw("POST", "/chats", { body: { type: "direct", userId: a.id } })).status, 200);
    b2.send({ type: "send_message", chatId: dm.id, message: "ws again", clientMsgId: "unblocked-ws" });
    await b2.next(of("ack", (f) => f.clientMsgId === "unblocked-ws"));
    b2.send({ type: "typing", chatId: grp.id });
    await as.next(of("typing", (f) => f.userId === b.id));
  });

  test("the block works from whichever side made it: b blocking a stops a as well", async () => {
    assert.equal((await b.api.raw("PUT", `/users/me/blocks/${a.id}`)).status, 204);
    assertError(await post(a, dm.id, "to b"), 403, "BLOCKED", "a sends after b blocked a");
    assertError(await post(b, dm.id, "to a"), 403, "BLOCKED", "b sends after b blocked a");
    // Both blocking each other: lifting one block leaves the other.
    assert.equal((await a.api.raw("PUT", `/users/me/blocks/${b.id}`)).status, 204);
    assert.equal((await a.api.raw("DELETE", `/users/me/blocks/${b.id}`)).status, 204);
    assertError(await post(a, dm.id, "still"), 403, "BLOCKED", "b's block remains");
    assert.equal((await b.api.raw("DELETE", `/users/me/blocks/${a.id}`)).status, 204);
    assert.equal((await post(a, dm.id, "free")).status, 201);
  });
});

describe("muting", () => {
  let a: User;
  let b: User;
  let c: User;
  let chat: ChatView;

  before(async () => {
    a = await user("ua");
    b = await user("ub");
    c = await user("uc");
    chat = await direct(a, b);
  });

  const view = async (u: User) => {
    const got = await u.api.request<ChatView>("GET", `/chats/${chat.id}`);
    const inList = await listed(u, chat.id);
    assert.deepEqual([inList.muted, inList.mutedUntil], [got.muted, got.mutedUntil], "list and get agree");
    return got;
  };
  const mute = (u: User, body: unknown) => u.api.raw("PUT", `/chats/${chat.id}/mute`, { body });

  test("PUT with a future time or null is 204; muted and mutedUntil show for the caller only; DELETE unmutes, idempotent", async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    assert.equal((await mute(a, { until })).status, 204);
    let v = await view(a);
    assert.equal(v.muted, true);
    assert.equal(Date.parse(v.mutedUntil as string), Date.parse(until));
    assert.deepEqual([(await view(b)).muted, (await view(b)).mutedUntil], [false, null], "b's view");

    assert.equal((await mute(a, { until: "2099-01-01T12:00:00+02:00" })).status, 204, "an offset");
    v = await view(a);
    assert.equal(v.mutedUntil, "2099-01-01T10:00:00.000Z", "the end as a UTC time");

    assert.equal((await mute(a, { until: null })).status, 204);
    v = await view(a);
    assert.deepEqual([v.muted, v.mutedUntil], [true, null], "muted always");

    // A muted chat still counts unread messages, and its frames still come.
    const as = await connect(a);
    const unread = v.unreadCount ?? 0;
    const whileMuted = await sent(b, chat.id, "while muted");
    assert.equal((await view(a)).unreadCount, unread + 1);
    await as.next(of("new_message", (f) => f.id === whileMuted.id));
    as.close();

    // The open answer shows the caller's mute too.
    const opened = await a.api.raw<ChatView>("POST", "/chats", { body: { type: "direct", userId: b.id } });
    assert.equal(opened.status, 200);
    assert.deepEqual([opened.body.muted, opened.body.mutedUntil], [true, null]);

    assert.equal((await a.api.raw("DELETE", `/chats/${chat.id}/mute`)).status, 204);
    v = await view(a);
    assert.deepEqual([v.muted, v.mutedUntil], [false, null]);
    assert.equal((await a.api.raw("DELETE", `/chats/${chat.id}/mute`)).status, 204, "again");
  });

  test("a time not in the future, a bad format or a missing until is 422 naming until, and changes nothing", async () => {
    assert.equal((await mute(a, { until: null })).status, 204);
    for (const until of [
      "2020-01-01T00:00:00Z",
      new Date(Date.now() - 1_000).toISOString(),
      "tomorrow",
      "2030-01-01",
      "2030-01-01T00:00:00",
      "2030-13-45T99:99:99Z",
      "",
      12345,
      true,
    ]) {
      assert422(await mute(a, { until }), "until", `until ${JSON.stringify(until)}`);
    }
    assert422(await mute(a, {}), "until", "no until");
    assert.equal((await mute(a, { until: null, forever: true })).status, 422, "an unknown field");
    const v = await view(a);
    assert.deepEqual([v.muted, v.mutedUntil], [true, null], "still muted always");
    await a.api.request("DELETE", `/chats/${chat.id}/mute`);
  });

  test("a non-member is 403 CHAT_FORBIDDEN", async () => {
    const until = new Date(Date.now() + 60_000).toISOString();
    assertError(await mute(c, { until }), 403, "CHAT_FORBIDDEN", "PUT by a non-member");
    assertError(await c.api.raw("DELETE", `/chats/${chat.id}/mute`), 403, "CHAT_FORBIDDEN", "DELETE");
    assertError(
      await c.api.raw("PUT", "/chats/no-such-chat/mute", { body: { until } }),
      403,
      "CHAT_FORBIDDEN",
      "an unknown chat",
    );
  });

  test("a mute whose time has passed reads as not muted", async () => {
    const until = new Date(Date.now() + 2_000).toISOString();
    assert.equal((await mute(a, { until })).status, 204);
    assert.equal((await view(a)).muted, true);
    await sleep(Math.max(0, Date.parse(until) - Date.now()) + 500);
    const v = await view(a);
    assert.deepEqual([v.muted, v.mutedUntil], [false, null]);
  });

  test("every chat answer has muted and mutedUntil: open, get, list, addMember", async () => {
    const g = await a.api.raw<ChatView>("POST", "/chats", {
      body: { type: "group", name: "mute views", memberIds: [] },
    });
    assert.equal(g.status, 201);
    assert.deepEqual([g.body.muted, g.body.mutedUntil], [false, null]);
    await a.api.request("PUT", `/chats/${g.body.id}/mute`, { until: null });
    const added = await a.api.request<ChatView>("POST", `/chats/${g.body.id}/members`, { userId: c.id });
    assert.deepEqual([added.muted, added.mutedUntil], [true, null], "the owner's own mute");
    const cView = await c.api.request<ChatView>("GET", `/chats/${g.body.id}`);
    assert.deepEqual([cView.muted, cView.mutedUntil], [false, null]);
  });
});

describe("pins", () => {
  let a: User;
  let b: User;
  let c: User;
  let dm: ChatView;
  let as: RawSocket;
  let bs: RawSocket;

  before(async () => {
    a = await user("na");
    b = await user("nb");
    c = await user("nc");
    dm = await direct(a, b);
    as = await connect(a);
    bs = await connect(b);
  });

  const pins = async (u: User, chatId: string) =>
    (await u.api.request<{ pins: PinView[] }>("GET", `/chats/${chatId}/pins`)).pins;
  const pin = (u: User, chatId: string, messageId: string, method = "PUT") =>
    u.api.raw(method, `/chats/${chatId}/pins/${messageId}`);

  test("direct chat: any member pins; GET lists newest pin first with pinnedBy and pinnedAt; pins_changed to both; idempotent with no second event", async () => {
    const m1 = await sent(a, dm.id, "first pinned");
    const m2 = await sent(b, dm.id, "second pinned");
    const isPin = (f: Frame) => f.type === "pins_changed" && f.chatId === dm.id;
    assert.equal((await pin(a, dm.id, m1.id)).status, 204);
    const expected = { type: "pins_changed", chatId: dm.id, messageId: m1.id, userId: a.id, op: "add" };
    assert.deepEqual(await as.next(isPin), expected);
    assert.deepEqual(await bs.next(isPin), expected);
    await sleep(5);
    assert.equal((await pin(b, dm.id, m2.id)).status, 204);
    await as.next((f) => isPin(f) && f.messageId === m2.id);
    const list = await pins(a, dm.id);
    assert.deepEqual(
      list.map((p) => [p.message.id, p.pinnedBy]),
      [
        [m2.id, b.id],
        [m1.id, a.id],
      ],
    );
    assert.ok(Date.parse(list[0]?.pinnedAt as string) >= Date.parse(list[1]?.pinnedAt as string));
    assert.equal(list[0]?.message.message, "second pinned");
    assert.deepEqual(await pins(b, dm.id), list);

    assert.equal((await pin(b, dm.id, m1.id)).status, 204, "pinning again");
    assert.equal(await countAfterPause(bs, isPin), 2, "no event for a pin that was there");
    assert.deepEqual(await pins(a, dm.id), list, "unchanged");

    // The pinned message as it is now.
    await a.api.request("PATCH", `/chats/${dm.id}/messages/${m1.id}`, { message: "first, edited" });
    assert.equal(
      (await pins(a, dm.id)).find((p) => p.message.id === m1.id)?.message.message,
      "first, edited",
    );

    assert.equal((await pin(a, dm.id, m2.id, "DELETE")).status, 204);
    assert.deepEqual(await bs.next((f) => isPin(f) && f.op === "remove"), {
      type: "pins_changed",
      chatId: dm.id,
      messageId: m2.id,
      userId: a.id,
      op: "remove",
    });
    const events = bs.frames.filter(isPin).length;
    assert.equal((await pin(a, dm.id, m2.id, "DELETE")).status, 204, "unpinning again");
    const m3 = await sent(a, dm.id, "never pinned");
    assert.equal((await pin(a, dm.id, m3.id, "DELETE")).status, 204, "unpinning what was not pinned");
    assert.equal(await countAfterPause(bs, isPin), events, "no event for an unpin that changed nothing");
    assert.deepEqual(
      (await pins(a, dm.id)).map((p) => p.message.id),
      [m1.id],
    );
  });

  test("deleting a pinned message drops its pin with a pins_changed remove; a deleted or unknown message is 404", async () => {
    const m = await sent(b, dm.id, "pinned then deleted");
    assert.equal((await pin(a, dm.id, m.id)).status, 204);
    await bs.next(of("pins_changed", (f) => f.messageId === m.id && f.op === "add"));
    assert.equal((await b.api.raw("DELETE", `/chats/${dm.id}/messages/${m.id}`)).status, 204);
    const removed = await as.next(of("pins_changed", (f) => f.messageId === m.id && f.op === "remove"));
    assert.equal(removed.chatId, dm.id);
    assert.equal(typeof removed.userId, "string");
    assert.ok(!(await pins(a, dm.id)).some((p) => p.message.id === m.id));
    assertError(await pin(a, dm.id, m.id), 404, "MESSAGE_NOT_FOUND", "pinning a deleted message");
    assertError(await pin(a, dm.id, "no-such-message"), 404, "MESSAGE_NOT_FOUND", "an unknown message");
    // Unpinning has nothing to find: any id answers 204.
    assert.equal((await pin(a, dm.id, m.id, "DELETE")).status, 204, "unpinning a deleted message");
    assert.equal((await pin(a, dm.id, "no-such-message", "DELETE")).status, 204, "unpinning an unknown id");
    const elsewhere = await sent(a, (await direct(a, c)).id, "another chat");
    assertError(await pin(a, dm.id, elsewhere.id), 404, "MESSAGE_NOT_FOUND", "another chat's message");
    assert.equal((await pin(a, dm.id, "bad id!")).status, 422, "a malformed id");
  });

  test("group: the owner pins and unpins, a member is 403 CHAT_FORBIDDEN, a non-member 403 for GET too", async () => {
    const g = await group(a, [b], "pins");
    const m = await sent(b, g.id, "pin me");
    assertError(await pin(b, g.id, m.id), 403, "CHAT_FORBIDDEN", "a member pins");
    assert.deepEqual(await pins(b, g.id), []);
    assert.equal((await pin(a, g.id, m.id)).status, 204);
    assertError(await pin(b, g.id, m.id, "DELETE"), 403, "CHAT_FORBIDDEN", "a member unpins");
    assert.equal((await pins(b, g.id)).length, 1, "a member reads the pins");
    for (const [method, path] of [
      ["GET", `/chats/${g.id}/pins`],
      ["PUT", `/chats/${g.id}/pins/${m.id}`],
      ["DELETE", `/chats/${g.id}/pins/${m.id}`],
    ] as const) {
      const real = await c.api.raw(method, path);
      assertError(real, 403, "CHAT_FORBIDDEN", `${method} by a non-member`);
      assert.deepEqual((await c.api.raw(method, path.replace(g.id, "no-such-chat"))).body, real.body);
    }
    assert.equal((await pin(a, g.id, m.id, "DELETE")).status, 204);
    assert.deepEqual(await pins(a, g.id), []);
  });

  test("a 51st pin is 422 (pinLimit) and 50 stay; unpinning one makes room", async () => {
    const g = await group(a, [b], "many pins");
    const msgs: MessageView[] = [];
    for (let i = 0; i < 51; i++) msgs.push(await sent(a, g.id, `pin ${i}`));
    for (const m of msgs.slice(0, 50)) assert.equal((await pin(a, g.id, m.id)).status, 204);
    const last = msgs[50] as MessageView;
    assert422(await pin(a, g.id, last.id), "messageId", "the 51st pin", "pinLimit");
    assert.equal((await pin(a, g.id, msgs[3]?.id as string)).status, 204, "re-pinning at the limit");
    const list = await pins(a, g.id);
    assert.equal(list.length, 50);
    assert.ok(!list.some((p) => p.message.id === last.id));
    assert.equal((await pin(a, g.id, msgs[0]?.id as string, "DELETE")).status, 204);
    assert.equal((await pin(a, g.id, last.id)).status, 204);
    const after = await pins(a, g.id);
    assert.equal(after.length, 50);
    assert.equal(after[0]?.message.id, last.id, "newest pin first");
    // The gateway still serves.
    assert.equal((await post(a, g.id, "after the pins")).status, 201);
  });
});

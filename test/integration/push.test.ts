/**
 * Web Push through the REST API on one embedded platform, to the push-service stand-in
 * (test/support/push-service.ts), which verifies each push's VAPID JWT and decrypts it as a
 * browser would (docs/api.md, "Web Push").
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ApiClient, type ApiResponse } from "../../client/rest-client.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { type PushServiceStandIn, startPushService } from "../support/push-service.ts";
import { RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let stand: PushServiceStandIn;
let wsUrl: string;
const sockets: RawSocket[] = [];

interface User {
  api: ApiClient;
  id: string;
  username: string;
  displayName: string;
  token: string;
}

before(async () => {
  platform = await startEmbedded({ PUSH_ALLOW_INSECURE: "true", WS_RATE_LIMIT: "1000/10" });
  stand = await startPushService();
  wsUrl = `${platform.url.replace("http", "ws")}/ws`;
});
after(async () => {
  for (const s of sockets) s.close();
  await platform.stop();
  await stand.close();
});

async function user(prefix = "p"): Promise<User> {
  const api = new ApiClient(platform.url);
  const res = await api.register(newUser(prefix));
  const me = await api.me();
  return {
    api,
    id: res.user.id,
    username: res.user.username,
    displayName: me.displayName,
    token: res.accessToken,
  };
}

/** A user with one subscription at the stand-in; resolves its endpoint. */
async function subscribed(u: User): Promise<string> {
  const sub = stand.createSubscription();
  assert.deepEqual(await u.api.subscribePush(sub), { created: true });
  return sub.endpoint;
}

async function raw(
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<ApiResponse> {
  const res = await fetch(`${platform.url}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null } as ApiResponse;
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

const messageIds = (endpoint: string) => stand.received(endpoint).map((p) => p.payload.messageId);

describe("push keys and subscriptions", () => {
  test("the VAPID public key is an uncompressed P-256 point, the same on every ask, no token needed", async () => {
    const res = await raw("GET", "/push/vapid-public-key", undefined);
    assert.equal(res.status, 200);
    const { publicKey } = res.body as { publicKey: string };
    assert.match(publicKey, /^[A-Za-z0-9_-]{87}$/);
    const bytes = Buffer.from(publicKey, "base64url");
    assert.equal(bytes.length, 65);
    assert.equal(bytes[0], 4);
    assert.equal(await new ApiClient(platform.url).pushPublicKey(), publicKey);
  });

  test("subscribing answers 201, then 200 for the same endpoint", async () => {
    const u = await user();
    const sub = stand.createSubscription();
    const first = await raw("POST", "/push/subscriptions", u.token, sub);
    assert.equal(first.status, 201);
    assert.deepEqual(first.body, { created: true });
    const again = await raw("POST", "/push/subscriptions", u.token, sub);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { created: false });
  });

  test("subscribing needs an access token", async () => {
    const res = await raw("POST", "/push/subscriptions", undefined, stand.createSubscription());
    assert.equal(res.status, 401);
  });

  test("bad keys, unknown fields and oversized fields are 422 naming the field", async () => {
    const u = await user();
    const good = stand.createSubscription();
    const cases: [unknown, string][] = [
      [{ ...good, keys: { ...good.keys, p256dh: randomBytes(64).toString("base64url") } }, "keys.p256dh"],
      [{ ...good, keys: { ...good.keys, auth: randomBytes(8).toString("base64url") } }, "keys.auth"],
      [{ ...good, keys: { ...good.keys, auth: "not base64!" } }, "keys.auth"],
      [{ ...good, keys: { p256dh: good.keys.p256dh, auth: { $ne: "" } } }, "keys.auth"],
      [{ ...good, endpoint: "ftp://127.0.0.1/x" }, "endpoint"],
      [{ ...good, endpoint: `https://push.example.com/${"x".repeat(2100)}` }, "endpoint"],
      [{ ...good, expirationTime: null }, "expirationTime"],
    ];
    for (const [body, field] of cases) {
      const res = await raw("POST", "/push/subscriptions", u.token, body);
      assert.equal(res.status, 422, `${field}: ${JSON.stringify(res.body)}`);
      const error = (res.body as { error: { code: string; details?: { field: string }[] } }).error;
      assert.equal(error.code, "VALIDATION_FAILED");
      assert.ok(
        error.details?.some((d) => d.field === field),
        `${field} named: ${JSON.stringify(res.body)}`,
      );
    }
  });

  test("removing a subscription is idempotent", async () => {
    const u = await user();
    const endpoint = await subscribed(u);
    assert.equal((await raw("DELETE", "/push/subscriptions", u.token, { endpoint })).status, 204);
    assert.equal((await raw("DELETE", "/push/subscriptions", u.token, { endpoint })).status, 204);
  });
});

describe("pushes for new messages", () => {
  test("an offline user gets a push for a direct message, verified and decrypted", async () => {
    const [a, b] = [await user("sa"), await user("rb")];
    const endpoint = await subscribed(b);
    const chat = await a.api.openDirect(b.id);
    const text = `hello 😀 ${"x".repeat(200)}`;
    const sent = await a.api.sendMessage(chat.id, text);
    const [push] = await stand.waitForEndpoint(endpoint, 1);
    assert.deepEqual(push?.payload, {
      type: "message",
      chatId: chat.id,
      messageId: sent.id,
      seq: sent.seq,
      senderId: a.id,
      senderName: a.displayName,
      preview: [...text].slice(0, 100).join(""),
    });
    assert.equal(push?.headers.ttl, "86400");
    assert.equal(push?.headers.urgency, "normal");
    assert.match(String(push?.headers.topic), /^[A-Za-z0-9_-]{32}$/);
    assert.deepEqual(stand.refused, []);
  });

  test("no push while the user has a socket open; one once it is closed", async () => {
    const [a, b, c] = [await user("sa"), await user("on"), await user("off")];
    const [eb, ec] = [await subscribed(b), await subscribed(c)];
    const socketA = await connect(a);
    const socketB = await connect(b);
    const toB = await a.api.openDirect(b.id);
    const toC = await a.api.openDirect(c.id);
    const missed = await a.api.sendMessage(toB.id, "you are online");
    await socketB.next((f) => f.type === "new_message" && f.id === missed.id);
    // The push to C is queued after the one B would get: once it is there, B's would be too.
    await a.api.sendMessage(toC.id, "fence");
    await stand.waitForEndpoint(ec, 1);
    assert.deepEqual(messageIds(eb), []);
    socketB.close();
    await socketA.next((f) => f.type === "presence" && f.userId === b.id && f.status === "offline");
    const later = await a.api.sendMessage(toB.id, "now you are away");
    await stand.waitForEndpoint(eb, 1);
    assert.deepEqual(messageIds(eb), [later.id]);
  });

  test("no push for a muted chat, nor across a block", async () => {
    const [a, b, c] = [await user("sa"), await user("mu"), await user("bl")];
    const [eb, ec] = [await subscribed(b), await subscribed(c)];
    const toB = await a.api.openDirect(b.id);
    const toC = await a.api.openDirect(c.id);
    assert.equal((await raw("PUT", `/chats/${toB.id}/mute`, b.token, { until: null })).status, 204);
    await a.api.sendMessage(toB.id, "muted");
    const fence = await a.api.sendMessage(toC.id, "fence");
    await stand.waitForEndpoint(ec, 1);
    assert.deepEqual(messageIds(eb), []);
    assert.deepEqual(messageIds(ec), [fence.id]);
    // A block in a group: C blocks A, and A mentions C (and B) there.
    const group = await a.api.openGroup("blocked", [b.id, c.id]);
    await c.api.block(a.id);
    assert.equal((await raw("DELETE", `/chats/${toB.id}/mute`, b.token)).status, 204);
    const mention = await a.api.sendMessage(group.id, `@${c.username} @${b.username} hi`);
    await stand.waitForEndpoint(eb, 1);
    assert.deepEqual(messageIds(eb), [mention.id]);
    assert.deepEqual(messageIds(ec), [fence.id]);
  });

  test("in a group only the mentioned offline members get a push", async () => {
    const [a, b, c, d] = [await user("ga"), await user("gb"), await user("gc"), await user("gd")];
    const [ea, eb, ec, ed] = [
      await subscribed(a),
      await subscribed(b),
      await subscribed(c),
      await subscribed(d),
    ];
    const socketD = await connect(d);
    const group = await a.api.openGroup("team", [b.id, c.id, d.id]);
    const plain = await a.api.sendMessage(group.id, "no one in particular");
    const mention = await a.api.sendMessage(group.id, `@${b.username} and @${d.username} and @${a.username}`);
    await socketD.next((f) => f.type === "new_message" && f.id === mention.id);
    const [push] = await stand.waitForEndpoint(eb, 1);
    assert.equal(push?.payload.messageId, mention.id);
    assert.ok(plain.id);
    // A direct message to C after both, as a fence: C gets that one only.
    const fence = await a.api.sendMessage((await a.api.openDirect(c.id)).id, "fence");
    await stand.waitForEndpoint(ec, 1);
    assert.deepEqual(messageIds(ec), [fence.id]);
    assert.deepEqual(messageIds(eb), [mention.id]);
    assert.deepEqual(messageIds(ed), [], "D has a socket open");
    assert.deepEqual(messageIds(ea), [], "the sender gets none");
  });

  test("a 410 removes the subscription", async () => {
    const [a, b] = [await user("sa"), await user("gone")];
    const sub = stand.createSubscription();
    assert.deepEqual(await b.api.subscribePush(sub), { created: true });
    stand.answer(sub.endpoint, 410);
    await a.api.sendMessage((await a.api.openDirect(b.id)).id, "to a browser that left");
    await until(() => stand.refusedOnPurpose(sub.endpoint) === 1, "the 410");
    // Once it is removed, registering it again creates it anew.
    await until(async () => (await b.api.subscribePush(sub)).created, "the subscription removed");
    assert.deepEqual(stand.received(sub.endpoint), []);
  });

  test("a 429 with Retry-After is retried, and the push arrives once", async () => {
    const [a, b] = [await user("sa"), await user("busy")];
    const endpoint = await subscribed(b);
    stand.answer(endpoint, 429, 1, "1");
    const chat = await a.api.openDirect(b.id);
    const first = await a.api.sendMessage(chat.id, "after a wait");
    await stand.waitForEndpoint(endpoint, 1);
    assert.equal(stand.refusedOnPurpose(endpoint), 1);
    const second = await a.api.sendMessage(chat.id, "next");
    await stand.waitForEndpoint(endpoint, 2);
    assert.deepEqual(messageIds(endpoint), [first.id, second.id]);
  });

  test("every subscription of a user gets the push; a removed one stops getting them", async () => {
    const [a, b] = [await user("sa"), await user("two")];
    const [kept, removed] = [await subscribed(b), await subscribed(b)];
    const chat = await a.api.openDirect(b.id);
    const first = await a.api.sendMessage(chat.id, "to both");
    await stand.waitForEndpoint(kept, 1);
    await stand.waitForEndpoint(removed, 1);
    await b.api.unsubscribePush(removed);
    const second = await a.api.sendMessage(chat.id, "to one");
    await stand.waitForEndpoint(kept, 2);
    assert.deepEqual(messageIds(kept), [first.id, second.id]);
    assert.deepEqual(messageIds(removed), [first.id]);
  });

  test("an endpoint subscribed by another user moves to them", async () => {
    const [a, b, c] = [await user("sa"), await user("old"), await user("new")];
    const sub = stand.createSubscription();
    assert.deepEqual(await b.api.subscribePush(sub), { created: true });
    assert.deepEqual(await c.api.subscribePush(sub), { created: true });
    await a.api.sendMessage((await a.api.openDirect(b.id)).id, "to the old owner");
    const toC = await a.api.sendMessage((await a.api.openDirect(c.id)).id, "to the new owner");
    await stand.waitForEndpoint(sub.endpoint, 1);
    const fence = await a.api.sendMessage((await a.api.openDirect(c.id)).id, "fence");
    await stand.waitForEndpoint(sub.endpoint, 2);
    assert.deepEqual(messageIds(sub.endpoint), [toC.id, fence.id]);
  });
});

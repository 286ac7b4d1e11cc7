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

const messageIds = (endpoint: string) => stand.received(endpoint).map((p) => p.payload.messageId);

let fence: { from: User; chatId: string; endpoint: string } | undefined;
/**
 * Resolves once the pushes of every message sent so far have arrived: the sender works its queue
 * in order, so two pushes to a fence user, each sent after the one before arrived, come after them.
 */
async function settled(): Promise<void> {
  if (!fence) {
    const [from, to] = [await user("fa"), await user("fb")];
    const endpoint = await subscribed(to);
    fence = { from, chatId: (await from.api.openDirect(to.id)).id, endpoint };
  }
  for (let i = 0; i < 2; i++) {
    const n = stand.received(fence.endpoint).length;
    await fence.from.api.sendMessage(fence.chatId, "fence");
    await stand.waitForEndpoint(fence.endpoint, n + 1);
  }
}

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

  test("a renamed sender's next push carries the new name", async () => {
    const [a, b] = [await user("rn"), await user("rr")];
    const endpoint = await subscribed(b);
    const chat = await a.api.openDirect(b.id);
    await a.api.sendMessage(chat.id, "before");
    await stand.waitForEndpoint(endpoint, 1);
    await a.api.updateMe({ displayName: "Renamed Sender" });
    await a.api.sendMessage(chat.id, "after");
    const pushes = await stand.waitForEndpoint(endpoint, 2);
    assert.deepEqual(
      pushes.map((p) => p.payload.senderName),
      [a.displayName, "Renamed Sender"],
    );
  });

  test("no push while the user has a socket open; one once it is closed", async () => {
    const [a, b] = [await user("sa"), await user("on")];
    const eb = await subscribed(b);
    const socketA = await connect(a);
    const socketB = await connect(b);
    const toB = await a.api.openDirect(b.id);
    const missed = await a.api.sendMessage(toB.id, "you are online");
    await socketB.next((f) => f.type === "new_message" && f.id === missed.id);
    await settled();
    assert.deepEqual(messageIds(eb), []);
    socketB.close();
    await socketA.next((f) => f.type === "presence" && f.userId === b.id && f.status === "offline");
    const later = await a.api.sendMessage(toB.id, "now you are away");
    await stand.waitForEndpoint(eb, 1);
    await settled();
    assert.deepEqual(messageIds(eb), [later.id]);
  });

  test("no push for a muted chat; one again once it is unmuted", async () => {
    const [a, b] = [await user("sa"), await user("mu")];
    const eb = await subscribed(b);
    const toB = await a.api.openDirect(b.id);
    assert.equal((await raw("PUT", `/chats/${toB.id}/mute`, b.token, { until: null })).status, 204);
    await a.api.sendMessage(toB.id, "muted");
    await settled();
    assert.deepEqual(messageIds(eb), []);
    assert.equal((await raw("DELETE", `/chats/${toB.id}/mute`, b.token)).status, 204);
    const unmuted = await a.api.sendMessage(toB.id, "unmuted");
    await stand.waitForEndpoint(eb, 1);
    assert.deepEqual(messageIds(eb), [unmuted.id]);
  });

  test("no push across a block, whoever made it", async () => {
    const [a, b, c] = [await user("sa"), await user("bb"), await user("bc")];
    const [eb, ec] = [await subscribed(b), await subscribed(c)];
    const group = await a.api.openGroup("blocked", [b.id, c.id]);
    // C blocks A, and A blocks B; both are mentioned in the group, where they still share a chat.
    await c.api.block(a.id);
    await a.api.block(b.id);
    await a.api.sendMessage(group.id, `@${c.username} @${b.username} hi`);
    await settled();
    assert.deepEqual(messageIds(ec), []);
    assert.deepEqual(messageIds(eb), []);
    // Lifted, the next mention reaches C.
    await c.api.unblock(a.id);
    const after = await a.api.sendMessage(group.id, `@${c.username} again`);
    await stand.waitForEndpoint(ec, 1);
    assert.deepEqual(messageIds(ec), [after.id]);
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
    await settled();
    assert.deepEqual(messageIds(ec), [], "C is not mentioned");
    assert.deepEqual(messageIds(eb), [mention.id]);
    assert.deepEqual(messageIds(ed), [], "D has a socket open");
    assert.deepEqual(messageIds(ea), [], "the sender gets none");
  });

  test("a 410 removes the subscription: the next message sends nothing to it", async () => {
    const [a, b] = [await user("sa"), await user("gone")];
    const sub = stand.createSubscription();
    assert.deepEqual(await b.api.subscribePush(sub), { created: true });
    const kept = await subscribed(b);
    stand.answer(sub.endpoint, 410);
    const chat = await a.api.openDirect(b.id);
    const first = await a.api.sendMessage(chat.id, "to a browser that left");
    await stand.waitForEndpoint(kept, 1);
    await settled();
    assert.equal(stand.refusedOnPurpose(sub.endpoint), 1);
    const second = await a.api.sendMessage(chat.id, "to the browser that stayed");
    await stand.waitForEndpoint(kept, 2);
    await settled();
    // A push to it now would have been accepted and recorded: none came.
    assert.equal(stand.refusedOnPurpose(sub.endpoint), 1);
    assert.deepEqual(stand.received(sub.endpoint), []);
    assert.deepEqual(messageIds(kept), [first.id, second.id]);
    // Registering it again creates it anew.
    assert.deepEqual(await b.api.subscribePush(sub), { created: true });
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
    await settled();
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
    await settled();
    assert.deepEqual(messageIds(sub.endpoint), [toC.id]);
  });
});

describe("push subscriptions on a platform that allows only public https endpoints", () => {
  let strict: Platform;
  before(async () => {
    strict = await startEmbedded({ PUSH_PREVIEW: "false" });
  });
  after(() => strict?.stop());

  test("http, loopback, private and link-local endpoints are 422 naming endpoint; a public https one is 201", async () => {
    const api = new ApiClient(strict.url);
    const { accessToken } = await api.register(newUser("st"));
    const keys = stand.createSubscription().keys;
    const post = (endpoint: string) =>
      fetch(`${strict.url}/push/subscriptions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${accessToken}` },
        body: JSON.stringify({ endpoint, keys }),
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown }));
    for (const endpoint of [
      stand.createSubscription().endpoint,
      "http://push.example.com/send/1",
      "https://127.0.0.1/send/1",
      "https://localhost:8443/send/1",
      "https://10.1.2.3/send/1",
      "https://192.168.0.10/send/1",
      "https://169.254.169.254/latest",
      "https://[::1]/send/1",
      "https://[fd12::1]/send/1",
      "https://[::ffff:127.0.0.1]/send/1",
    ]) {
      const res = await post(endpoint);
      assert.equal(res.status, 422, `${endpoint}: ${JSON.stringify(res.body)}`);
      const error = (res.body as { error: { code: string; details?: { field: string }[] } }).error;
      assert.equal(error.code, "VALIDATION_FAILED");
      assert.deepEqual(
        error.details?.map((d) => d.field),
        ["endpoint"],
      );
    }
    const ok = await post("https://push.example.com/send/abc");
    assert.equal(ok.status, 201);
    assert.deepEqual(ok.body, { created: true });
  });
});

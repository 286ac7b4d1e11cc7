/** Web Push pieces without a platform: endpoint rules, topics, previews, and the sender. */
import assert from "node:assert/strict";
import { createECDH, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import webPush from "web-push";
import type { MessageView } from "../../../lib/contracts.ts";
import { ValidationFailedError } from "../../../lib/errors.ts";
import { checkSubscription, isInternalHost } from "../../../lib/push/endpoint-rules.ts";
import {
  PushSender,
  type PushTarget,
  publicOnlyLookup,
  pushTopic,
  retryAfterMs,
} from "../../../lib/push/push-sender.ts";
import {
  PREVIEW_LENGTH,
  PushNotifier,
  type PushNotifierDeps,
  previewOf,
  pushAudience,
} from "../../../services/chat/push-notifier.ts";
import type { PushSubscriptionRecord } from "../../../services/chat/push-subscriptions.repo.ts";
import { type Receipt, receiptIdOf } from "../../../services/chat/receipts.repo.ts";
import { type PushServiceStandIn, startPushService } from "../../support/push-service.ts";

const point = () => createECDH("prime256v1").generateKeys().toString("base64url");
const secret = () => randomBytes(16).toString("base64url");
const strict = { allowInsecure: false };

function fieldsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationFailedError, `a ValidationFailedError, got ${String(err)}`);
    return ((err as { data: { field: string }[] }).data ?? []).map((d) => d.field);
  }
  assert.fail("no error thrown");
}

describe("push endpoint rules", () => {
  test("a public https endpoint with good keys passes, keys without padding", () => {
    const p256dh = point();
    const auth = secret();
    const sub = checkSubscription(
      {
        endpoint: "https://fcm.googleapis.com/fcm/send/abc",
        keys: { p256dh: `${p256dh}=`, auth: `${auth}==` },
      },
      strict,
    );
    assert.deepEqual(sub, { endpoint: "https://fcm.googleapis.com/fcm/send/abc", p256dh, auth });
  });

  for (const endpoint of [
    "http://push.example.com/x",
    "ftp://push.example.com/x",
    "not a url",
    "https://localhost/x",
    "https://foo.localhost/x",
    "https://127.0.0.1/x",
    "https://127.1.2.3:8443/x",
    "https://0x7f000001/x",
    "https://10.0.0.5/x",
    "https://172.16.4.1/x",
    "https://192.168.1.2/x",
    "https://169.254.169.254/latest/meta-data",
    "https://0.0.0.0/x",
    "https://[::1]/x",
    "https://[::]/x",
    "https://[fd00::1]/x",
    "https://[fe80::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[::ffff:10.1.2.3]/x",
    "https://user:pw@push.example.com/x",
  ]) {
    test(`${endpoint} is refused naming endpoint`, () => {
      assert.deepEqual(
        fieldsOf(() => checkSubscription({ endpoint, keys: { p256dh: point(), auth: secret() } }, strict)),
        ["endpoint"],
      );
    });
  }

  test("public addresses and names are not internal", () => {
    for (const host of ["8.8.8.8", "[2001:4860:4860::8888]", "push.example.com", "172.32.0.1", "11.0.0.1"]) {
      assert.equal(isInternalHost(host), false, host);
    }
  });

  test("with allowInsecure, http and loopback endpoints pass; other schemes do not", () => {
    const keys = { p256dh: point(), auth: secret() };
    assert.equal(
      checkSubscription({ endpoint: "http://127.0.0.1:9000/push/1", keys }, { allowInsecure: true }).endpoint,
      "http://127.0.0.1:9000/push/1",
    );
    assert.deepEqual(
      fieldsOf(() => checkSubscription({ endpoint: "ftp://127.0.0.1/x", keys }, { allowInsecure: true })),
      ["endpoint"],
    );
  });

  test("keys of the wrong size, not on the curve, compressed or not base64url are refused by field", () => {
    const endpoint = "https://push.example.com/x";
    const compressed = Buffer.from(point(), "base64url");
    compressed[0] = 0x02;
    const offCurve = Buffer.alloc(65, 7);
    offCurve[0] = 0x04;
    for (const p256dh of [
      randomBytes(64).toString("base64url"),
      compressed.toString("base64url"),
      offCurve.toString("base64url"),
      "!!!",
      `${point()}A`,
    ]) {
      assert.deepEqual(
        fieldsOf(() => checkSubscription({ endpoint, keys: { p256dh, auth: secret() } }, strict)),
        ["keys.p256dh"],
      );
    }
    for (const auth of [
      randomBytes(15).toString("base64url"),
      randomBytes(32).toString("base64url"),
      "a+b/",
    ]) {
      assert.deepEqual(
        fieldsOf(() => checkSubscription({ endpoint, keys: { p256dh: point(), auth } }, strict)),
        ["keys.auth"],
      );
    }
    assert.deepEqual(
      fieldsOf(() => checkSubscription({ endpoint: "http://x", keys: { p256dh: "x", auth: "y" } }, strict)),
      ["endpoint", "keys.p256dh", "keys.auth"],
    );
  });
});

describe("push topics and previews", () => {
  test("a topic is 32 base64url characters, one per user and chat", () => {
    const t = pushTopic("user-1", "chat-1");
    assert.match(t, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(pushTopic("user-1", "chat-1"), t);
    assert.notEqual(pushTopic("user-2", "chat-1"), t);
    assert.notEqual(pushTopic("user-1", "chat-2"), t);
    assert.notEqual(pushTopic("user-1c", "hat-1"), pushTopic("user-1", "chat-1"));
  });

  test("the preview keeps the first 100 code points and never splits a surrogate pair", () => {
    assert.equal(previewOf("hello"), "hello");
    assert.equal(previewOf("x".repeat(250)), "x".repeat(PREVIEW_LENGTH));
    const emoji = "😀".repeat(150);
    const p = previewOf(emoji);
    assert.equal([...p].length, 100);
    assert.equal(p, "😀".repeat(100));
    assert.equal(p.length, 200);
  });

  test("direct chats push to the other member, groups to mentioned members but the sender", () => {
    const msg = (mentions: string[]) => ({ senderId: "a", mentions }) as unknown as MessageView;
    assert.deepEqual(pushAudience({ type: "direct", members: ["a", "b"] }, msg([])), ["b"]);
    assert.deepEqual(pushAudience({ type: "group", members: ["a", "b", "c", "d"] }, msg([])), []);
    assert.deepEqual(pushAudience({ type: "group", members: ["a", "b", "c", "d"] }, msg(["c", "a", "z"])), [
      "c",
    ]);
  });

  test("Retry-After reads as seconds or an HTTP date", () => {
    assert.equal(retryAfterMs("3"), 3000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(retryAfterMs(undefined), undefined);
    assert.equal(retryAfterMs("soon"), undefined);
  });
});

describe("push sender against the stand-in", () => {
  let stand: PushServiceStandIn;
  const keys = webPush.generateVAPIDKeys();
  before(async () => {
    stand = await startPushService();
  });
  after(() => stand.close());

  function sender(onGone: (t: PushTarget) => void = () => undefined) {
    const results: string[] = [];
    const warnings: string[] = [];
    const s = new PushSender<PushTarget>({
      keys,
      subject: "mailto:ops@example.test",
      onGone,
      logger: { warn: (m: unknown) => warnings.push(String(m)) },
      counted: (r) => results.push(r),
      backoffMs: 10,
    });
    return { s, results, warnings };
  }
  const target = () => {
    const sub = stand.createSubscription();
    return { endpoint: sub.endpoint, ...sub.keys };
  };

  test("1,000 pushes arrive, each verified and decrypted, with the headers of the contract", async () => {
    const { s, results } = sender();
    const targets = Array.from({ length: 1000 }, target);
    const before = stand.total();
    for (const [i, t] of targets.entries()) s.send(t, JSON.stringify({ i }), pushTopic(`u${i}`, "c"));
    await s.idle();
    assert.equal(stand.total() - before, 1000);
    assert.deepEqual(stand.refused, []);
    assert.equal(results.filter((r) => r === "sent").length, 1000);
    const [first] = stand.received(targets[7]?.endpoint ?? "");
    assert.deepEqual(first?.payload, { i: 7 });
    assert.equal(first?.headers.ttl, "86400");
    assert.equal(first?.headers.urgency, "normal");
    assert.equal(first?.headers.topic, pushTopic("u7", "c"));
    s.close();
  });

  test("one VAPID header serves an origin", async () => {
    const { s } = sender();
    const [a, b] = [target(), target()];
    s.send(a, "{}", "t");
    s.send(b, "{}", "t");
    await s.idle();
    assert.equal(
      stand.received(a.endpoint)[0]?.headers.authorization,
      stand.received(b.endpoint)[0]?.headers.authorization,
    );
    s.close();
  });

  test("404 and 410 call onGone without retrying", async () => {
    const gone: string[] = [];
    const { s, results } = sender((t) => gone.push(t.endpoint));
    const [a, b] = [target(), target()];
    stand.answer(a.endpoint, 404);
    stand.answer(b.endpoint, 410);
    s.send(a, "{}", "t");
    s.send(b, "{}", "t");
    await s.idle();
    assert.deepEqual(gone.sort(), [a.endpoint, b.endpoint].sort());
    assert.deepEqual(results, ["gone", "gone"]);
    assert.equal(stand.received(a.endpoint).length, 0);
  });

  test("5xx and 429 are retried until they pass; the push arrives once", async () => {
    const { s, results } = sender();
    const t = target();
    stand.answer(t.endpoint, 503, 2);
    stand.answer(t.endpoint, 429, 1, "0");
    s.send(t, '{"n":1}', "t");
    await s.idle();
    assert.equal(stand.received(t.endpoint).length, 1);
    assert.equal(stand.refusedOnPurpose(t.endpoint), 3);
    assert.deepEqual(results, ["retried", "retried", "retried", "sent"]);
  });

  test("a push refused 5 times is given up and logged; a 400 is not retried", async () => {
    const { s, results, warnings } = sender();
    const [a, b] = [target(), target()];
    stand.answer(a.endpoint, 500, 10);
    stand.answer(b.endpoint, 400, 10);
    s.send(a, "{}", "t");
    s.send(b, "{}", "t");
    await s.idle();
    assert.equal(stand.refusedOnPurpose(a.endpoint), 5);
    assert.equal(stand.refusedOnPurpose(b.endpoint), 1);
    assert.equal(results.filter((r) => r === "retried").length, 4);
    assert.equal(results.filter((r) => r === "failed").length, 2);
    assert.equal(warnings.length, 2);
  });
  test("a push that cannot be encrypted, or whose host resolves inside, fails at once without retries", async () => {
    const { s, results, warnings } = sender();
    const bad = { ...target(), p256dh: Buffer.alloc(65, 1).toString("base64url") };
    const inside = { ...target(), endpoint: target().endpoint.replace("127.0.0.1", "localhost") };
    s.send(bad, "{}", "t");
    s.send(inside, "{}", "t");
    await s.idle();
    assert.deepEqual(results, ["failed", "failed"]);
    assert.equal(stand.received(bad.endpoint).length + stand.received(inside.endpoint).length, 0);
    assert.ok(warnings.some((w) => w.includes("after 1 attempts")));
    s.close();
  });
});

describe("connecting to a push service", () => {
  const resolve = (host: string) =>
    new Promise<{ code?: string; address?: unknown }>((done) =>
      publicOnlyLookup(host, {}, (err, address) => done(err ? { code: err.code } : { address })),
    );

  test("a name that resolves to an internal address is refused when connecting", async () => {
    assert.equal((await resolve("localhost")).code, "EPUSHINTERNAL");
    assert.equal((await resolve("127.0.0.1")).code, "EPUSHINTERNAL");
    assert.equal((await resolve("::1")).code, "EPUSHINTERNAL");
  });

  test("a public address passes", async () => {
    assert.deepEqual(await resolve("93.184.215.14"), { address: "93.184.215.14" });
  });
});

describe("push notifier decisions", () => {
  const chatId = "chat-1";
  const message = (over: Partial<MessageView> = {}) =>
    ({
      id: "m-1",
      chatId,
      seq: 7,
      senderId: "a",
      message: "hello there",
      mentions: [],
      ...over,
    }) as MessageView;
  const subOf = (userId: string, n = 1): PushSubscriptionRecord => ({
    _id: `${userId}-${n}`,
    userId,
    endpoint: `https://push.example.com/${userId}/${n}`,
    p256dh: "k",
    auth: "s",
    createdAt: new Date(),
    updatedAt: new Date(),
  });
  const receipt = (userId: string, mute: Partial<Receipt> = {}): Receipt => ({
    _id: receiptIdOf(chatId, userId),
    chatId,
    userId,
    lastReadSeq: 0,
    createdAt: new Date(),
    updatedAt: new Date(),
    ...mute,
  });

  /** A notifier over fakes; every subscription of a user is `subOf(user)`, unless `subs` says. */
  function fake(options: {
    online?: string[];
    hidden?: string[];
    receipts?: Receipt[];
    subs?: (userIds: string[]) => PushSubscriptionRecord[];
    preview?: boolean;
    failSubscriptions?: boolean;
  }) {
    const calls = { hiddenFrom: 0, receiptsOf: 0, subscriptionsOf: 0, senderName: 0 };
    const pushes: { target: PushSubscriptionRecord; payload: Record<string, unknown>; topic: string }[] = [];
    const errors: unknown[] = [];
    const deps: PushNotifierDeps = {
      isOnline: (u) => (options.online ?? []).includes(u),
      hiddenFrom: async (_sender, ids) => {
        calls.hiddenFrom += 1;
        return new Set(ids.filter((id) => (options.hidden ?? []).includes(id)));
      },
      receiptsOf: async (chat, ids) => {
        calls.receiptsOf += 1;
        return (options.receipts ?? []).filter((r) => r.chatId === chat && ids.includes(r.userId));
      },
      subscriptionsOf: async (ids) => {
        calls.subscriptionsOf += 1;
        if (options.failSubscriptions) throw new Error("store down");
        return options.subs ? options.subs(ids) : ids.map((id) => subOf(id));
      },
      senderName: async () => {
        calls.senderName += 1;
        return "Ann";
      },
      push: (target, payload, topic) => pushes.push({ target, payload: JSON.parse(payload), topic }),
      preview: options.preview ?? true,
      onError: (err) => errors.push(err),
    };
    const notifier = new PushNotifier(deps);
    return { notifier, calls, pushes, errors };
  }
  const recipients = (pushes: { target: PushSubscriptionRecord }[]) =>
    pushes.map((p) => p.target.userId).sort();

  test("a direct message is pushed to the offline other member with the payload of the contract", async () => {
    const { notifier, pushes } = fake({});
    notifier.messageStored({ type: "direct", members: ["a", "b"] }, message());
    await notifier.idle();
    assert.equal(pushes.length, 1);
    assert.deepEqual(pushes[0]?.payload, {
      type: "message",
      chatId,
      messageId: "m-1",
      seq: 7,
      senderId: "a",
      senderName: "Ann",
      preview: "hello there",
    });
    assert.equal(pushes[0]?.topic, pushTopic("b", chatId));
  });

  test("nothing is looked up for a member who is online", async () => {
    const { notifier, pushes, calls } = fake({ online: ["b"] });
    notifier.messageStored({ type: "direct", members: ["a", "b"] }, message());
    await notifier.idle();
    assert.deepEqual(pushes, []);
    assert.deepEqual(calls, { hiddenFrom: 0, receiptsOf: 0, subscriptionsOf: 0, senderName: 0 });
  });

  test("a group message goes to the mentioned members who are offline, not muted and not blocked", async () => {
    const future = new Date(Date.now() + 3_600_000);
    const past = new Date(Date.now() - 1_000);
    const { notifier, pushes } = fake({
      online: ["c"],
      hidden: ["d"],
      receipts: [
        receipt("e", { muted: true, mutedUntil: null }),
        receipt("f", { muted: true, mutedUntil: future }),
        receipt("g", { muted: true, mutedUntil: past }),
        receipt("h"),
      ],
    });
    const members = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    notifier.messageStored(
      { type: "group", members },
      message({ mentions: ["a", "b", "c", "d", "e", "f", "g", "h"] }),
    );
    await notifier.idle();
    assert.deepEqual(recipients(pushes), ["b", "g", "h"]);
  });

  test("no preview with preview off, nor for a message without text", async () => {
    const off = fake({ preview: false });
    off.notifier.messageStored({ type: "direct", members: ["a", "b"] }, message());
    const empty = fake({});
    empty.notifier.messageStored({ type: "direct", members: ["a", "b"] }, message({ message: "" }));
    await Promise.all([off.notifier.idle(), empty.notifier.idle()]);
    for (const { pushes } of [off, empty]) {
      assert.equal(pushes.length, 1);
      assert.equal("preview" in (pushes[0]?.payload ?? {}), false);
      assert.equal(pushes[0]?.payload.senderName, "Ann");
    }
  });

  test("a long text is cut to 100 code points in the payload", async () => {
    const { notifier, pushes } = fake({});
    notifier.messageStored({ type: "direct", members: ["a", "b"] }, message({ message: "é😀".repeat(80) }));
    await notifier.idle();
    assert.equal([...String(pushes[0]?.payload.preview)].length, PREVIEW_LENGTH);
  });

  test("every subscription of a recipient gets the push; one that moved to another user does not", async () => {
    const { notifier, pushes } = fake({
      subs: () => [subOf("b", 1), subOf("b", 2), subOf("z", 1)],
    });
    notifier.messageStored({ type: "direct", members: ["a", "b"] }, message());
    await notifier.idle();
    assert.deepEqual(
      pushes.map((p) => p.target._id),
      ["b-1", "b-2"],
    );
  });

  test("1,000 offline members of a group are served with one lookup of each kind", async () => {
    const members = Array.from({ length: 1001 }, (_, i) => (i === 0 ? "a" : `m${i}`));
    const { notifier, pushes, calls } = fake({
      receipts: [receipt("m5", { muted: true, mutedUntil: null })],
    });
    notifier.messageStored({ type: "group", members }, message({ mentions: members }));
    await notifier.idle();
    assert.equal(pushes.length, 999);
    assert.equal(recipients(pushes).includes("m5"), false);
    assert.deepEqual(calls, { hiddenFrom: 1, receiptsOf: 1, subscriptionsOf: 1, senderName: 1 });
  });

  test("a failing lookup is reported and never thrown to the send", async () => {
    const { notifier, pushes, errors } = fake({ failSubscriptions: true });
    assert.doesNotThrow(() => notifier.messageStored({ type: "direct", members: ["a", "b"] }, message()));
    await notifier.idle();
    assert.deepEqual(pushes, []);
    assert.equal((errors[0] as Error).message, "store down");
  });
});

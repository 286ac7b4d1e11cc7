import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ValidationFailedError } from "../../../../lib/errors.ts";
import {
  CURSOR_LIFETIME_MS,
  decodeChatCursor,
  encodeChatCursor,
} from "../../../../services/chat/chat-cursor.ts";
import { activityKeyAt, activityKeyOf, appendActivity } from "../../../../services/chat/chats.repo.ts";
import { normalizeEmoji } from "../../../../services/chat/emoji.ts";
import { MAX_MENTION_NAMES, mentionedNames } from "../../../../services/chat/mentions.ts";
import { mentionCountOf, muteOf, type Receipt } from "../../../../services/chat/receipts.repo.ts";
import { previewOf } from "../../../../services/chat/views.ts";

describe("reaction emoji", () => {
  test("one RGI emoji is taken as it is, a text-style one in its emoji form", () => {
    for (const e of ["😀", "❤️", "👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "🏳️‍🌈"]) assert.equal(normalizeEmoji(e), e);
    assert.equal(normalizeEmoji("❤"), "❤️");
    assert.equal(normalizeEmoji("☺"), "☺️");
  });
  test("anything but exactly one emoji is refused", () => {
    for (const e of ["", "a", "😀😀", "😀 ", " 😀", "#", "1", "\uFE0F", "👍a", "x".repeat(65), "\uD83D"]) {
      assert.equal(normalizeEmoji(e), null, JSON.stringify(e));
    }
  });
});

describe("mentions", () => {
  test("@username after a non-username character, lower-cased, first mention order, no repeats", () => {
    assert.deepEqual(mentionedNames("@Bob hi @bob, a@carl.com (@alice_1) @ab @dave!"), [
      "bob",
      "alice_1",
      "dave",
    ]);
  });
  test("a name longer than 32 characters is not a mention, nor part of one", () => {
    assert.deepEqual(mentionedNames(`@${"x".repeat(33)} @${"y".repeat(32)}`), ["y".repeat(32)]);
  });
  test("at most MAX_MENTION_NAMES names are resolved", () => {
    const text = Array.from({ length: 80 }, (_, i) => `@user${i}`).join(" ");
    assert.equal(mentionedNames(text).length, MAX_MENTION_NAMES);
  });
});

describe("the chat list's cursor", () => {
  test("round-trips for its user", () => {
    const now = Date.now();
    const text = encodeChatCursor("u1", { at: now, below: "2026-01-01T00:00:00.000Z|c1" });
    assert.deepEqual(decodeChatCursor("u1", text, now), { at: now, below: "2026-01-01T00:00:00.000Z|c1" });
  });
  test("altered, made up, another user's or expired: 422 naming cursor", () => {
    const now = Date.now();
    const text = encodeChatCursor("u1", { at: now, below: "k" });
    const flipped = (text[0] === "A" ? "B" : "A") + text.slice(1);
    for (const bad of [
      flipped,
      "abc",
      "abc.def",
      `${text}.x`,
      Buffer.from("[1,2,3]").toString("base64url"),
    ]) {
      assert.throws(
        () => decodeChatCursor("u1", bad, now),
        (err: ValidationFailedError) => (err.data as { field: string; type: string }[])[0]?.type === "cursor",
      );
    }
    assert.throws(() => decodeChatCursor("u2", text, now), ValidationFailedError);
    assert.throws(
      () => decodeChatCursor("u1", text, now + CURSOR_LIFETIME_MS + 1),
      (err: ValidationFailedError) => (err.data as { type: string }[])[0]?.type === "cursorExpired",
    );
  });
});

describe("a chat's activity log", () => {
  const at = (ms: number) => new Date(ms);
  test("answers the key written by a time, none before the first", () => {
    const log = [
      { w: at(1_000), k: "a" },
      { w: at(2_000), k: "b" },
      { w: at(3_000), k: "c" },
    ];
    assert.equal(activityKeyAt({ activityLog: log, activityKey: "c" }, 999), undefined);
    assert.equal(activityKeyAt({ activityLog: log, activityKey: "c" }, 1_000), "a");
    assert.equal(activityKeyAt({ activityLog: log, activityKey: "c" }, 2_500), "b");
    assert.equal(activityKeyAt({ activityLog: log, activityKey: "c" }, 9_000), "c");
  });
  test("keeps what a cursor's lifetime needs: the entries since then and the one before", () => {
    let log = [{ w: at(0), k: "k0" }];
    for (let t = 10; t <= 100; t += 10) log = appendActivity(log, { w: at(t), k: `k${t}` }, 35);
    assert.deepEqual(
      log.map((e) => e.k),
      ["k60", "k70", "k80", "k90", "k100"],
    );
    // At any time within the last 35 ms, the key then is still known.
    assert.equal(activityKeyAt({ activityLog: log, activityKey: "k100" }, 65), "k60");
  });
  test("keys sort by time, then id", () => {
    const a = activityKeyOf(new Date("2026-01-01T00:00:00.000Z"), "b");
    const b = activityKeyOf(new Date("2026-01-01T00:00:00.001Z"), "a");
    assert.ok(a < b);
    assert.ok(activityKeyOf(new Date(0), "a") < activityKeyOf(new Date(0), "b"));
  });
});

describe("receipt views", () => {
  const receipt = (r: Partial<Receipt>): Receipt =>
    ({
      _id: "c:u",
      chatId: "c",
      userId: "u",
      lastReadSeq: 0,
      createdAt: new Date(),
      updatedAt: new Date(),
      ...r,
    }) as Receipt;
  test("mentions after the read mark count", () => {
    assert.equal(mentionCountOf(receipt({ lastReadSeq: 3, mentionSeqs: [1, 3, 4, 9] })), 2);
    assert.equal(mentionCountOf(undefined), 0);
  });
  test("a mute is in force until its time, always when it has none", () => {
    const now = Date.now();
    assert.deepEqual(muteOf(receipt({ muted: true, mutedUntil: null }), now), {
      muted: true,
      mutedUntil: null,
    });
    const until = new Date(now + 1_000);
    assert.deepEqual(muteOf(receipt({ muted: true, mutedUntil: until }), now), {
      muted: true,
      mutedUntil: until.toISOString(),
    });
    assert.deepEqual(muteOf(receipt({ muted: true, mutedUntil: until }), now + 1_000), {
      muted: false,
      mutedUntil: null,
    });
    assert.deepEqual(muteOf(receipt({ muted: false }), now), { muted: false, mutedUntil: null });
  });
});

test("a reply's preview is the first 200 code points", () => {
  assert.equal(previewOf("😀".repeat(250)), "😀".repeat(200));
  assert.equal(previewOf("short"), "short");
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  activityOf,
  EMOJI,
  followsToDepth,
  latencyOf,
  listProblems,
  pageProblems,
  planChatList,
  planReactions,
  quantile,
} from "../../../bench/chat/plan.ts";

describe("chat benchmarks' plans and checks", () => {
  test("percentiles are nearest-rank over the sorted samples, NaN when there are none", () => {
    const times = Array.from({ length: 100 }, (_, i) => 100 - i);
    const l = latencyOf(times);
    assert.equal(l.samples, 100);
    assert.equal(l.p50, 51);
    assert.equal(l.p99, 100);
    assert.equal(l.max, 100);
    assert.equal(l.mean, 50.5);
    assert.ok(Number.isNaN(quantile([], 0.5)));
    assert.equal(quantile([7], 0.99), 7);
  });

  test("the page after 4,000 chats in pages of 50 is 80 follows of nextCursor away", () => {
    assert.equal(followsToDepth(4_000, 50), 80);
    assert.equal(followsToDepth(0, 50), 0);
    assert.equal(followsToDepth(4_001, 50), 81);
    assert.throws(() => followsToDepth(10, 0));
  });

  test("the chat-list plan: half direct chats with distinct users, every message sent once, in each chat's order", () => {
    const plan = planChatList(1, 1_000, 500);
    assert.equal(plan.chats.length, 1_000);
    const directs = plan.chats.filter((c) => c.type === "direct");
    assert.equal(directs.length, 500);
    assert.equal(new Set(directs.map((c) => c.others[0])).size, 500);
    for (const c of plan.chats) {
      if (c.type === "group") assert.ok(c.others.length >= 2 && c.others.length <= 4);
      assert.ok(c.senders.length >= 1 && c.senders.length <= 3);
      assert.ok(c.senders.every((s) => s === -1 || c.others.includes(s)));
      assert.ok(c.mentions.every((m, k) => !m || c.senders[k] !== -1));
    }
    const total = plan.chats.reduce((n, c) => n + c.senders.length, 0);
    assert.equal(plan.sends.length, total);
    const seen = new Map<number, number>();
    for (const [chat, k] of plan.sends) {
      assert.equal(k, seen.get(chat) ?? 0, "a chat's messages are sent in order");
      seen.set(chat, k + 1);
    }
    // Shuffled: the chats' first sends are not in the order of creation.
    const firsts = plan.sends.filter(([, k]) => k === 0).map(([c]) => c);
    assert.notDeepEqual(
      firsts,
      [...firsts].sort((a, b) => a - b),
    );
    // The same seed, the same plan.
    assert.deepEqual(planChatList(1, 1_000, 500), plan);
    assert.throws(() => planChatList(1, 1_000, 499));
  });

  test("a walk over the list: duplicates, missing chats and a step back in activity are reported", () => {
    const at = (iso: string, id: string, last?: string) => ({
      id,
      createdAt: iso,
      lastMessage: last ? { createdAt: last } : null,
    });
    const a = at("2026-01-01T00:00:00Z", "a", "2026-01-03T00:00:00Z");
    const b = at("2026-01-02T00:00:00Z", "b");
    const c = at("2026-01-01T00:00:00Z", "c", "2026-01-02T00:00:00Z");
    assert.equal(activityOf(a), Date.parse("2026-01-03T00:00:00Z"));
    assert.equal(activityOf(b), Date.parse("2026-01-02T00:00:00Z"));
    const all = new Set(["a", "b", "c"]);
    assert.deepEqual(listProblems([a, b, c], all), [], "a tie (b, c) may go either way");
    assert.deepEqual(listProblems([a, c, b], all), []);
    const wrong = listProblems([b, a, a], all);
    assert.equal(wrong.length, 3);
    assert.match(wrong[0] as string, /1 chats listed twice/);
    assert.match(wrong[1] as string, /1 of 3 chats missing/);
    assert.match(wrong[2] as string, /1 places out of order, the first: chat 2 \(a\)/);
    // A walk that stopped early: no missing chats, the rest as before.
    assert.deepEqual(listProblems([a, b], undefined), []);
    assert.equal(listProblems([b, a, a], undefined).length, 2);
  });

  test("the reactions plan: every reply answers an earlier message and has 20 emoji from 3 distinct members", () => {
    const shape = { originals: 10, replies: 50, members: 10, emoji: 20, perEmoji: 3 };
    const plan = planReactions(7, shape);
    assert.equal(new Set(EMOJI).size, 20);
    const segmenter = new Intl.Segmenter("en", { granularity: "grapheme" });
    for (const e of EMOJI) assert.equal([...segmenter.segment(e)].length, 1, `${e} is one grapheme`);
    assert.equal(plan.replyTo.length, 50);
    for (const [j, to] of plan.replyTo.entries()) assert.ok(to >= 0 && to < 10 + j);
    for (const reactions of plan.reactions) {
      assert.equal(reactions.length, 60);
      for (let e = 0; e < 20; e++) {
        const users = reactions.filter(([, x]) => x === e).map(([m]) => m);
        assert.equal(new Set(users).size, 3);
        assert.ok(users.every((m) => m >= 0 && m < 10));
      }
    }
    assert.throws(() => planReactions(7, { ...shape, perEmoji: 11 }));
  });

  test("a history page is checked for replies and reactions, or for their absence", () => {
    const reacted = Array.from({ length: 3 }, (_, i) => ({
      seq: 11 + i,
      replyTo: { seq: 1 + i },
      reactions: Array.from({ length: 2 }, (_, e) => ({ emoji: String(e), count: 3 })),
    }));
    const expect = { length: 3, replies: true, emoji: 2, perEmoji: 3 };
    assert.deepEqual(pageProblems(reacted, expect), []);
    assert.match(pageProblems(reacted.slice(1), expect)[0] as string, /2 messages, not 3/);
    const noReply = [{ ...reacted[0], replyTo: undefined, seq: 11 }];
    assert.match(pageProblems(noReply, { ...expect, length: 1 })[0] as string, /not a reply/);
    const plain = [{ seq: 1, reactions: [] }];
    const plainShape = { length: 1, replies: false, emoji: 0, perEmoji: 0 };
    assert.deepEqual(pageProblems(plain, plainShape), []);
    assert.match(pageProblems(reacted.slice(0, 1), plainShape)[0] as string, /is a reply/);
    const reactedOnly = [{ seq: 1, reactions: reacted[0]?.reactions }];
    assert.match(pageProblems(reactedOnly, plainShape)[0] as string, /has 2 emoji \(counts 3,3\), not 0 x 0/);
    assert.deepEqual(pageProblems(reactedOnly, { ...plainShape, emoji: 2, perEmoji: 3 }), []);
  });
});

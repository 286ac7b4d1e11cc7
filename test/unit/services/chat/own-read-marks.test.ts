/** A sender's read marks written behind the send: bounded writes, newest wins, overlay until written, retries. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OwnReadMarks } from "../../../../services/chat/own-read-marks.ts";
import type { Receipt } from "../../../../services/chat/receipts.repo.ts";

/** A receipts store whose writes the test finishes by hand. */
function store() {
  const writes: Array<{ chatId: string; userId: string; seq: number; ok: () => void; fail: () => void }> = [];
  const stored = new Map<string, number>();
  return {
    writes,
    stored,
    markRead: (chatId: string, userId: string, seq: number) =>
      new Promise<boolean>((resolve, reject) => {
        writes.push({
          chatId,
          userId,
          seq,
          ok: () => {
            stored.set(`${chatId}:${userId}`, Math.max(stored.get(`${chatId}:${userId}`) ?? 0, seq));
            resolve(true);
          },
          fail: () => reject(new Error("store down")),
        });
      }),
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Waits until the store was asked for `n` writes; fails after 5 s instead of waiting on. */
async function writesReach(s: { writes: unknown[] }, n: number): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (s.writes.length < n) {
    assert.ok(performance.now() < deadline, `${s.writes.length} writes asked for, not ${n}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const receipt = (lastReadSeq: number): Receipt => ({
  _id: "c1:u1",
  chatId: "c1",
  userId: "u1",
  lastReadSeq,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

describe("OwnReadMarks", () => {
  test("writes at most maxInFlight at once, one per user and chat, the newest mark replacing a waiting one", async () => {
    const s = store();
    const marks = new OwnReadMarks(s, () => undefined, 2);
    marks.record("c1", "u1", 1);
    marks.record("c2", "u2", 1);
    marks.record("c3", "u3", 1);
    marks.record("c1", "u1", 2);
    marks.record("c1", "u1", 3);
    assert.equal(s.writes.length, 2, "two in flight");
    assert.deepEqual(
      s.writes.map((w) => [w.chatId, w.seq]),
      [
        ["c1", 1],
        ["c2", 1],
      ],
    );
    s.writes[0]?.ok();
    await settle();
    // c3 waited first; c1's newest (3) waits behind it, and is written once, not for 2 and 3.
    assert.deepEqual(
      s.writes.slice(2).map((w) => [w.chatId, w.seq]),
      [["c3", 1]],
    );
    s.writes[1]?.ok();
    await settle();
    assert.deepEqual(
      s.writes.slice(3).map((w) => [w.chatId, w.seq]),
      [["c1", 3]],
    );
    for (const w of s.writes.slice(2)) w.ok();
    await marks.flushed();
    assert.equal(marks.backlog, 0);
    assert.equal(s.stored.get("c1:u1"), 3);
    assert.equal(s.writes.length, 4);
  });

  test("until written, overlay() shows the mark over the stored receipt, or makes one", async () => {
    const s = store();
    const marks = new OwnReadMarks(s, () => undefined, 1);
    assert.equal(marks.overlay("c1", "u1", undefined), undefined);
    marks.record("c1", "u1", 7);
    assert.equal(marks.overlay("c1", "u1", receipt(3))?.lastReadSeq, 7);
    assert.equal(marks.overlay("c1", "u1", receipt(9))?.lastReadSeq, 9, "a later read stands");
    const made = marks.overlay("c1", "u1", undefined);
    assert.equal(made?.lastReadSeq, 7);
    assert.equal(made?.chatId, "c1");
    assert.equal(marks.overlay("c2", "u1", receipt(3))?.lastReadSeq, 3, "other chats untouched");
    s.writes[0]?.ok();
    await marks.flushed();
    assert.equal(marks.pendingOf("c1", "u1"), undefined);
    assert.equal(marks.overlay("c1", "u1", receipt(7))?.lastReadSeq, 7);
  });

  test("a failed write is reported and tried again, and the mark shows meanwhile", async () => {
    const s = store();
    const errors: unknown[] = [];
    const marks = new OwnReadMarks(s, (err) => errors.push(err), 1);
    marks.record("c1", "u1", 5);
    s.writes[0]?.fail();
    await settle();
    assert.equal(errors.length, 1);
    assert.equal(marks.pendingOf("c1", "u1"), 5, "still owed");
    assert.equal(marks.overlay("c1", "u1", undefined)?.lastReadSeq, 5);
    // The retry comes after RETRY_MS (1 s), not before.
    const failedAt = performance.now();
    await writesReach(s, 2);
    assert.ok(performance.now() - failedAt >= 990, "not before RETRY_MS");
    assert.equal(s.writes.length, 2);
    assert.equal(s.writes[1]?.seq, 5);
    s.writes[1]?.ok();
    await marks.flushed();
    assert.equal(s.stored.get("c1:u1"), 5);
  });

  test("a failed write holds back its own mark only: the others are written meanwhile", async () => {
    const s = store();
    const marks = new OwnReadMarks(s, () => undefined, 1);
    marks.record("c1", "u1", 5);
    marks.record("c2", "u2", 7);
    marks.record("c3", "u3", 9);
    s.writes[0]?.fail();
    await settle();
    // At once, not after the failed mark's retry time: the next mark's write.
    assert.equal(s.writes.length, 2);
    assert.deepEqual([s.writes[1]?.chatId, s.writes[1]?.seq], ["c2", 7]);
    s.writes[1]?.ok();
    await settle();
    assert.deepEqual([s.writes[2]?.chatId, s.writes[2]?.seq], ["c3", 9]);
    s.writes[2]?.ok();
    await settle();
    assert.equal(s.writes.length, 3, "the failed mark waits for its retry time");
    assert.equal(marks.pendingOf("c1", "u1"), 5);
    await writesReach(s, 4);
    assert.deepEqual([s.writes[3]?.chatId, s.writes[3]?.seq], ["c1", 5]);
    s.writes[3]?.ok();
    await marks.flushed();
    assert.deepEqual([...s.stored].sort(), [
      ["c1:u1", 5],
      ["c2:u2", 7],
      ["c3:u3", 9],
    ]);
    assert.equal(marks.backlog, 0);
  });

  test("a mark that keeps failing waits twice as long after each failure, up to the longest wait", async () => {
    const s = store();
    const marks = new OwnReadMarks(s, () => undefined, 1, { firstMs: 20, maxMs: 40 });
    const tried: number[] = [];
    marks.record("c1", "u1", 5);
    for (let attempt = 0; attempt < 7; attempt++) {
      await writesReach(s, attempt + 1);
      tried.push(performance.now());
      if (attempt < 6) s.writes[attempt]?.fail();
    }
    const gaps = tried.slice(1).map((t, i) => t - (tried[i] as number));
    // 20, then 40 (the longest wait) from then on, each measured from the failure before it; a
    // timer fires no earlier than asked (a millisecond of rounding allowed).
    for (const [i, least] of [20, 40, 40, 40, 40, 40].entries()) {
      assert.ok((gaps[i] as number) >= least - 1, `retry ${i + 1} after ${gaps[i]} ms, not before ${least}`);
    }
    // Doubling without the bound would wait 160 + 320 + 640 ms for the last three.
    const lastThree = (gaps[3] as number) + (gaps[4] as number) + (gaps[5] as number);
    assert.ok(lastThree < 400, `the wait stops growing at the longest: ${gaps.map(Math.round)} ms`);
    s.writes[6]?.ok();
    await marks.flushed();
    assert.equal(s.stored.get("c1:u1"), 5, "written once the store answers");
    assert.equal(marks.backlog, 0);
  });

  test("a retry whose time comes between the timer's pump and its next look still goes", async () => {
    const s = store();
    // The clock reads 0 until armed. Then the retry timer's pump reads 19.5 (the mark is due at
    // 20: a timer may fire a moment early), and the look for the next retry time after it 20.5.
    let armed = false;
    let reads = 0;
    const now = () => (armed ? (++reads === 1 ? 19.5 : 20.5) : 0);
    const marks = new OwnReadMarks(s, () => undefined, 1, { firstMs: 20, maxMs: 40, now });
    marks.record("c1", "u1", 5);
    s.writes[0]?.fail();
    await settle();
    armed = true;
    await writesReach(s, 2);
    assert.equal(s.writes[1]?.seq, 5, "retried");
    assert.ok(reads >= 3, "the timer's pump, its look for the next time, and the pump that took it");
    s.writes[1]?.ok();
    await marks.flushed();
    assert.equal(s.stored.get("c1:u1"), 5);
  });

  test("a mark recorded while its older one failed goes at its turn, newest first", async () => {
    const s = store();
    const marks = new OwnReadMarks(s, () => undefined, 1);
    marks.record("c1", "u1", 5);
    marks.record("c1", "u1", 6);
    s.writes[0]?.fail();
    await settle();
    assert.deepEqual([s.writes[1]?.chatId, s.writes[1]?.seq], ["c1", 6], "the newer mark, without waiting");
    s.writes[1]?.ok();
    await marks.flushed();
    assert.equal(s.stored.get("c1:u1"), 6);
    assert.equal(marks.backlog, 0);
  });

  test("a mark at or below one already written or waiting is dropped", async () => {
    const s = store();
    const marks = new OwnReadMarks(s, () => undefined, 1);
    marks.record("c1", "u1", 4);
    marks.record("c1", "u1", 4);
    marks.record("c1", "u1", 2);
    assert.equal(s.writes.length, 1);
    s.writes[0]?.ok();
    await marks.flushed();
    assert.equal(s.writes.length, 1);
  });
});

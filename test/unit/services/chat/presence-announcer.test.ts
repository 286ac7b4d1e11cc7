import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { PresenceView, ServerFrame } from "../../../../lib/contracts.ts";
import { PresenceAnnouncer } from "../../../../services/chat/presence-announcer.ts";

/** Chats as member lists; contacts are derived the way ChatLogic.contactsOfEach does. */
function harness(chats: string[][], options: { announcer?: boolean; failFirst?: boolean } = {}) {
  const online = new Set<string>();
  const queries: string[][] = [];
  const sent: { to: string[]; userId: string; status: string }[] = [];
  let release: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  let failures = options.failFirst ? 1 : 0;
  const errors: unknown[] = [];
  const announcer = new PresenceAnnouncer({
    contactsOf: async (userIds) => {
      queries.push([...userIds]);
      await gate;
      if (failures-- > 0) throw new Error("store down");
      return new Map(
        userIds.map((u) => [
          u,
          [...new Set(chats.filter((c) => c.includes(u)).flatMap((c) => c.filter((m) => m !== u)))],
        ]),
      );
    },
    presenceOf: (userId): PresenceView => ({
      userId,
      status: online.has(userId) ? "online" : "offline",
      lastSeen: online.has(userId) ? null : "2026-01-01T00:00:00.000Z",
    }),
    // Delivery reaches online users only, as PresenceMap.route does.
    deliver: (userIds, frame: ServerFrame) => {
      const to = userIds.filter((u) => online.has(u));
      const f = frame as unknown as PresenceView;
      if (to.length > 0) sent.push({ to: to.sort(), userId: f.userId, status: f.status });
    },
    isAnnouncer: () => options.announcer ?? true,
    onError: (err) => errors.push(err),
  });
  return {
    announcer,
    online,
    queries,
    sent,
    errors,
    hold() {
      gate = new Promise((resolve) => (release = resolve));
    },
    release() {
      gate = undefined;
      release?.();
    },
    /** What each user was told: "subject:status" entries. */
    inbox(user: string) {
      return sent
        .filter((s) => s.to.includes(user))
        .map((s) => `${s.userId}:${s.status}`)
        .sort();
    },
  };
}

describe("PresenceAnnouncer", () => {
  test("an idle node announces a single change at once: contacts learn it, the user learns who is online", async () => {
    const h = harness([["a", "b"], ["a", "c"], ["d"]]);
    h.online.add("b");
    h.online.add("a");
    h.announcer.online("a");
    await h.announcer.idle();
    assert.deepEqual(h.queries, [["a"]]);
    assert.deepEqual(h.inbox("b"), ["a:online"]);
    assert.deepEqual(h.inbox("a"), ["b:online"]);
    h.online.delete("a");
    h.announcer.offline(["a"]);
    await h.announcer.idle();
    assert.deepEqual(h.inbox("b"), ["a:offline", "a:online"]);
  });

  test("changes that arrive while a query runs go out together in one query, each frame once", async () => {
    const group = ["u1", "u2", "u3", "u4"];
    const h = harness([group, ["u4", "x"]]);
    h.online.add("x");
    h.online.add("u1");
    h.hold();
    h.announcer.online("u1");
    for (const u of ["u2", "u3", "u4"]) {
      h.online.add(u);
      h.announcer.online(u);
    }
    h.release();
    await h.announcer.idle();
    assert.deepEqual(h.queries, [["u1"], ["u2", "u3", "u4"]]);
    // Everyone knows everyone else in the group once, and x (online before) is told of u4 only.
    for (const u of group) {
      const expected = group.filter((o) => o !== u).map((o) => `${o}:online`);
      if (u === "u4") expected.push("x:online");
      assert.deepEqual(h.inbox(u), expected.sort(), u);
    }
    assert.deepEqual(h.inbox("x"), ["u4:online"]);
  });

  test("a user who came and went within one batch is announced once, as offline", async () => {
    const h = harness([["a", "b"]]);
    h.online.add("b");
    h.hold();
    h.announcer.online("b");
    h.announcer.online("a");
    h.announcer.offline(["a"]);
    h.release();
    await h.announcer.idle();
    assert.deepEqual(h.inbox("b"), ["a:offline"]);
  });

  test("a failed query is reported and later changes are still announced", async () => {
    const h = harness([["a", "b"]], { failFirst: true });
    h.online.add("a");
    h.online.add("b");
    h.announcer.online("a");
    await h.announcer.idle();
    assert.equal(h.errors.length, 1);
    h.announcer.online("b");
    await h.announcer.idle();
    assert.deepEqual(h.inbox("a"), ["b:online"]);
  });

  test("a node that is not the announcer does no lookups", async () => {
    const h = harness([["a", "b"]], { announcer: false });
    h.online.add("a");
    h.announcer.online("a");
    await h.announcer.idle();
    assert.deepEqual(h.queries, []);
    assert.deepEqual(h.sent, []);
  });
});

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let alice: ApiClient;
let aliceId: string;

before(async () => {
  platform = await startEmbedded();
  alice = new ApiClient(platform.url);
  aliceId = (await alice.register({ ...newUser("alice"), displayName: "Alice" })).user.id;
});
after(() => platform.stop());

describe("GET /users/me and PATCH /users/me", () => {
  test("the own profile includes the email", async () => {
    const me = await alice.me();
    assert.equal(me.id, aliceId);
    assert.match(me.email, /@example\.test$/);
    assert.equal(me.displayName, "Alice");
    assert.equal(me.bio, null);
  });

  test("an update changes the fields given and is visible to others at once", async () => {
    const bob = new ApiClient(platform.url);
    await bob.register(newUser("bob"));
    assert.equal((await bob.user(aliceId)).displayName, "Alice");
    const updated = await alice.updateMe({
      displayName: "Alice B",
      bio: "Hi ✨ 你好",
      avatarUrl: "https://a.test/x.png",
    });
    assert.equal(updated.displayName, "Alice B");
    assert.equal(updated.bio, "Hi ✨ 你好");
    const seen = await bob.user(aliceId);
    assert.equal(seen.displayName, "Alice B", "the cached read was invalidated");
    assert.equal(seen.avatarUrl, "https://a.test/x.png");
    const cleared = await alice.updateMe({ avatarUrl: null });
    assert.equal(cleared.avatarUrl, null);
  });

  test("an http or javascript avatarUrl, an over-long bio and an empty update are 422", async () => {
    for (const body of [
      { avatarUrl: "http://a.test/x.png" },
      { avatarUrl: "javascript:alert(1)" },
      { avatarUrl: "https://" },
      { bio: "b".repeat(501) },
      { displayName: "" },
      { displayName: "d".repeat(65) },
      {},
      { displayName: 42 },
      { email: "new@example.test" },
      { displayName: { $ne: "" } },
    ]) {
      const res = await alice.raw("PATCH", "/users/me", { body });
      assert.equal(res.status, 422, `${JSON.stringify(body)} -> ${res.status}`);
    }
  });

  test("without a token it is 401 with WWW-Authenticate: Bearer", async () => {
    const res = await alice.raw("GET", "/users/me", { token: null });
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
  });
});

describe("public profiles", () => {
  test("GET /users/:id never includes the email", async () => {
    const res = await alice.raw("GET", `/users/${aliceId}`);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body as object).sort(), [
      "avatarUrl",
      "bio",
      "createdAt",
      "displayName",
      "id",
      "username",
    ]);
  });

  test("an unknown id and an unknown username are 404", async () => {
    assert.equal((await alice.raw("GET", "/users/no-such-user")).status, 404);
    assert.equal((await alice.raw("GET", "/users/by-username/nosuchuser")).status, 404);
  });

  test("by-username matches in any letter case", async () => {
    const me = await alice.me();
    const res = await alice.raw("GET", `/users/by-username/${me.username.toUpperCase()}`);
    assert.equal(res.status, 200);
    assert.equal((res.body as { id: string }).id, aliceId);
    assert.equal((res.body as { email?: string }).email, undefined);
  });
});

describe("GET /users?q=", () => {
  test("prefix search pages through every match exactly once, in username order", async () => {
    const prefix = `srch${Date.now().toString(36)}`;
    const names: string[] = [];
    for (let i = 0; i < 7; i++) {
      const u = { ...newUser(), username: `${prefix}_${i}` };
      names.push(u.username);
      await new ApiClient(platform.url).register(u);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await alice.searchUsers(prefix.toUpperCase(), { limit: 3, cursor });
      seen.push(...res.users.map((u) => u.username));
      for (const u of res.users) assert.equal((u as { email?: string }).email, undefined);
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    assert.deepEqual(seen, names);
  });

  test("regex characters in q match literally", async () => {
    const res = await alice.searchUsers(".*");
    assert.deepEqual(res.users, []);
  });

  test("a missing q, a bad limit and a forged cursor are 422", async () => {
    for (const query of [
      "",
      "?q=a&limit=0",
      "?q=a&limit=51",
      "?q=a&limit=x",
      "?q=a&cursor=%24%24%24",
      "?q[$ne]=x",
    ]) {
      const res = await alice.raw("GET", `/users${query}`);
      assert.equal(res.status, 422, `${query} -> ${res.status}`);
    }
  });
});

/**
 * Account deletion (`DELETE /users/me`) and the data export (`GET /users/me/export`), through the
 * gateway of an embedded node.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { Store } from "../../lib/store/types.ts";
import type { AccountSecurity } from "../../services/auth/account-security.ts";
import { totpCode } from "../../services/auth/two-factor.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { startPushService } from "../support/push-service.ts";
import { RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;

before(async () => {
  platform = await startEmbedded({ USERNAME_HOLD_DAYS: "0", PUSH_ALLOW_INSECURE: "true" });
});
after(() => platform.stop());

function codeOf(body: unknown): string | undefined {
  return (body as { error?: { code?: string } }).error?.code;
}

async function registered(input = newUser()) {
  const api = new ApiClient(platform.url);
  const res = await api.raw<{ user: { id: string }; accessToken: string; refreshToken: string }>(
    "POST",
    "/auth/register",
    {
      body: input,
    },
  );
  assert.equal(res.status, 201);
  return { ...input, api, id: res.body.user.id, token: res.body.accessToken, refresh: res.body.refreshToken };
}

async function directChat(a: Awaited<ReturnType<typeof registered>>, b: { id: string }) {
  const chat = await a.api.raw<{ id: string }>("POST", "/chats", {
    body: { type: "direct", userId: b.id },
    token: a.token,
  });
  assert.ok(chat.status === 201 || chat.status === 200);
  return chat.body.id;
}

async function send(u: Awaited<ReturnType<typeof registered>>, chatId: string, message: string) {
  const res = await u.api.raw<{ id: string }>("POST", `/chats/${chatId}/messages`, {
    body: { message, clientMsgId: `m-${Math.random().toString(36).slice(2)}` },
    token: u.token,
  });
  assert.equal(res.status, 201);
  return res.body.id;
}

type History = {
  messages: { id: string; senderId: string; message: string; deleted?: boolean; deletedAt?: string | null }[];
};

describe("DELETE /users/me", () => {
  test("a wrong password is 403 and nothing changes", async () => {
    const u = await registered();
    const res = await u.api.raw("DELETE", "/users/me", {
      body: { password: "nope-nope-nope" },
      token: u.token,
    });
    assert.equal(res.status, 403);
    assert.equal(codeOf(res.body), "WRONG_PASSWORD");
    assert.equal((await u.api.raw("GET", "/users/me", { token: u.token })).status, 200);
  });

  test("deletes: sessions and sockets end, login fails, the profile is erased, messages stay", async () => {
    const u = await registered();
    const other = await registered();
    const chatId = await directChat(other, u);
    await send(u, chatId, "a message that stays");
    const socket = new RawSocket(`${platform.url.replace("http", "ws")}/ws`, { token: u.token });
    await socket.opened();

    const res = await u.api.raw("DELETE", "/users/me", { body: { password: u.password }, token: u.token });
    assert.equal(res.status, 204);
    assert.equal((await socket.closed).code, 4001);
    assert.equal((await u.api.raw("GET", "/users/me", { token: u.token })).status, 401);
    assert.equal(
      (await u.api.raw("POST", "/auth/refresh", { body: { refreshToken: u.refresh }, token: null })).status,
      401,
    );
    const login = await new ApiClient(platform.url).raw("POST", "/auth/login", {
      body: { email: u.email, password: u.password },
    });
    assert.equal(login.status, 401);

    const profile = await other.api.raw<Record<string, unknown>>("GET", `/users/${u.id}`, {
      token: other.token,
    });
    assert.equal(profile.status, 200);
    assert.deepEqual(
      {
        displayName: profile.body.displayName,
        username: profile.body.username,
        bio: profile.body.bio,
        deleted: profile.body.deleted,
      },
      { displayName: "Deleted user", username: "", bio: null, deleted: true },
    );
    const history = await other.api.raw<History>("GET", `/chats/${chatId}/messages`, { token: other.token });
    const kept = history.body.messages.find((m) => m.senderId === u.id);
    assert.equal(kept?.message, "a message that stays");
    const byName = await other.api.raw("GET", `/users/by-username/${u.username}`, { token: other.token });
    assert.equal(byName.status, 404);
  });

  test("the account's push subscriptions go with it", async () => {
    const push = await startPushService();
    try {
      const u = await registered();
      const sub = push.createSubscription();
      assert.equal(
        (await u.api.raw("POST", "/push/subscriptions", { body: sub, token: u.token })).status,
        201,
      );
      const chatStore = (platform.broker.getLocalService("chat") as unknown as { store: Store }).store;
      const subs = chatStore.collection<{ _id: string; userId: string }>("push_subscriptions");
      assert.equal((await subs.find({ userId: u.id }, { limit: 10 })).length, 1);
      assert.equal(
        (await u.api.raw("DELETE", "/users/me", { body: { password: u.password }, token: u.token })).status,
        204,
      );
      assert.equal((await subs.find({ userId: u.id }, { limit: 10 })).length, 0);
    } finally {
      await push.close();
    }
  });

  test("with eraseMessages the text goes too: the messages read as deleted", async () => {
    const u = await registered();
    const other = await registered();
    const chatId = await directChat(other, u);
    const id = await send(u, chatId, "erase me");
    const res = await u.api.raw("DELETE", "/users/me", {
      body: { password: u.password, eraseMessages: true },
      token: u.token,
    });
    assert.equal(res.status, 204);
    const history = await other.api.raw<History>("GET", `/chats/${chatId}/messages`, { token: other.token });
    const erased = history.body.messages.find((m) => m.id === id);
    assert.ok(erased, "the message keeps its place");
    assert.equal(erased.message, "");
    assert.ok(erased.deleted === true || Boolean(erased.deletedAt), "shown as deleted");
  });

  test("the email is free at once; the username after the hold; the id is never another user's", async () => {
    const u = await registered();
    assert.equal(
      (await u.api.raw("DELETE", "/users/me", { body: { password: u.password }, token: u.token })).status,
      204,
    );
    const sameName = await new ApiClient(platform.url).raw("POST", "/auth/register", {
      body: { ...newUser(), username: u.username },
    });
    assert.equal(sameName.status, 409, "the username is held until housekeeping frees it");
    const security = (platform.broker.getLocalService("auth") as unknown as { security: AccountSecurity })
      .security;
    await security.sweepDeletions(new Date(Date.now() + 1000));
    const again = await registered({ ...newUser(), username: u.username, email: u.email });
    assert.notEqual(again.id, u.id);
  });

  test("with two-factor on, a code is needed: none or a wrong one is 403", async () => {
    const u = await registered();
    const setup = await u.api.raw<{ secret: string }>("POST", "/auth/2fa/setup", {
      body: {},
      token: u.token,
    });
    await u.api.raw("POST", "/auth/2fa/enable", {
      body: { code: totpCode(setup.body.secret) },
      token: u.token,
    });
    const none = await u.api.raw("DELETE", "/users/me", { body: { password: u.password }, token: u.token });
    assert.equal(none.status, 403);
    assert.equal(codeOf(none.body), "INVALID_MFA_CODE");
    const wrong = await u.api.raw("DELETE", "/users/me", {
      body: { password: u.password, code: "000000" },
      token: u.token,
    });
    assert.equal(wrong.status, 403);
    const ok = await u.api.raw("DELETE", "/users/me", {
      body: { password: u.password, code: totpCode(setup.body.secret, Date.now() + 30_000) },
      token: u.token,
    });
    assert.equal(ok.status, 204);
  });

  test("unknown fields and a body that is not an object are 422", async () => {
    const u = await registered();
    assert.equal(
      (await u.api.raw("DELETE", "/users/me", { body: { password: u.password, extra: 1 }, token: u.token }))
        .status,
      422,
    );
    assert.equal((await u.api.raw("DELETE", "/users/me", { body: {}, token: u.token })).status, 422);
    assert.equal(
      (
        await u.api.raw("DELETE", "/users/me", {
          body: { password: u.password, eraseMessages: "yes" },
          token: u.token,
        })
      ).status,
      422,
    );
  });
});

describe("GET /users/me/export", () => {
  test("streams the caller's data as one JSON document, at most once an hour", async () => {
    const u = await registered();
    const other = await registered();
    const chatId = await directChat(u, other);
    const mine = [await send(u, chatId, "one"), await send(u, chatId, "two")];
    await send(other, chatId, "not mine");
    const res = await fetch(`${platform.url}/users/me/export`, {
      headers: { authorization: `Bearer ${u.token}` },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-disposition") ?? "", /attachment/);
    const doc = (await res.json()) as {
      exportedAt: string;
      account: { id: string; email: string };
      profile: { username: string };
      sessions: unknown[];
      chats: { id: string }[];
      messages: { id: string; senderId: string }[];
      uploads: unknown[];
    };
    assert.equal(doc.account.id, u.id);
    assert.equal(doc.account.email, u.email);
    assert.equal(doc.profile.username, u.username);
    assert.ok(doc.sessions.length >= 1);
    assert.deepEqual(
      doc.chats.map((c) => c.id),
      [chatId],
    );
    assert.deepEqual(doc.messages.map((m) => m.id).sort(), [...mine].sort());
    assert.ok(doc.messages.every((m) => m.senderId === u.id));
    assert.deepEqual(doc.uploads, []);

    const again = await fetch(`${platform.url}/users/me/export`, {
      headers: { authorization: `Bearer ${u.token}` },
    });
    assert.equal(again.status, 429);
    assert.ok(Number(again.headers.get("retry-after")) > 0);
    await again.body?.cancel();
  });

  test("without a token is 401; POST is 405", async () => {
    const res = await fetch(`${platform.url}/users/me/export`);
    assert.equal(res.status, 401);
    await res.body?.cancel();
    const post = await fetch(`${platform.url}/users/me/export`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  });
});

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { Store } from "../../lib/store/types.ts";
import { hashRefreshToken } from "../../services/auth/auth.logic.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
let api: ApiClient;
/** A short window for repeats of a just-rotated refresh token, so the tests can wait it out. */
const REUSE_GRACE_MS = 300;
const pastTheGrace = () => new Promise((r) => setTimeout(r, REUSE_GRACE_MS + 100));

before(async () => {
  platform = await startEmbedded({ REFRESH_REUSE_GRACE_MS: String(REUSE_GRACE_MS) });
  api = new ApiClient(platform.url);
});
after(() => platform.stop());

function errorCode(body: unknown): string | undefined {
  return (body as { error?: { code?: string } }).error?.code;
}

describe("POST /auth/register", () => {
  test("creates the account and answers 201 with the user and a token pair", async () => {
    const input = newUser();
    const res = await api.raw("POST", "/auth/register", { body: { ...input, displayName: "Ann É" } });
    assert.equal(res.status, 201);
    const body = res.body as { user: Record<string, string>; expiresIn: number; refreshToken: string };
    assert.deepEqual(Object.keys(body).sort(), ["accessToken", "expiresIn", "refreshToken", "user"]);
    assert.equal(body.user.email, input.email);
    assert.equal(body.user.username, input.username);
    assert.equal(body.user.displayName, "Ann É");
    assert.equal(body.expiresIn, 900);
    assert.ok(body.refreshToken.length >= 43, "at least 256 random bits");
    assert.match(res.headers.get("x-request-id") ?? "", /.+/);
  });

  test("an email already registered is 409 EMAIL_TAKEN, in any letter case", async () => {
    const input = newUser();
    assert.equal((await api.raw("POST", "/auth/register", { body: input })).status, 201);
    const again = await api.raw("POST", "/auth/register", {
      body: { ...newUser(), email: input.email.toUpperCase() },
    });
    assert.equal(again.status, 409);
    assert.equal(errorCode(again.body), "EMAIL_TAKEN");
  });

  test("a username taken in another letter case is 409 USERNAME_TAKEN", async () => {
    const input = newUser();
    assert.equal((await api.raw("POST", "/auth/register", { body: input })).status, 201);
    const again = await api.raw("POST", "/auth/register", {
      body: { ...newUser(), username: input.username.toUpperCase() },
    });
    assert.equal(again.status, 409);
    assert.equal(errorCode(again.body), "USERNAME_TAKEN");
  });

  test("a common password is 422 with a password detail", async () => {
    const res = await api.raw("POST", "/auth/register", { body: { ...newUser(), password: "password123" } });
    assert.equal(res.status, 422);
    const details = (res.body as { error: { details: { field: string }[] } }).error.details;
    assert.equal(details[0]?.field, "password");
  });

  test("passwords of 8 and of 128 characters are accepted and not truncated", async () => {
    const long = `${"Zq7-".repeat(32)}`;
    const user = { ...newUser(), password: long };
    assert.equal((await api.raw("POST", "/auth/register", { body: user })).status, 201);
    const truncated = await api.raw("POST", "/auth/login", {
      body: { email: user.email, password: long.slice(0, 72) },
    });
    assert.equal(truncated.status, 401);
    const short = { ...newUser(), password: "kq8#vL2m" };
    assert.equal((await api.raw("POST", "/auth/register", { body: short })).status, 201);
  });

  test("50 concurrent registrations of one email give exactly one 201", async () => {
    const base = newUser("race");
    const register = (i: number) =>
      api.raw("POST", "/auth/register", {
        body: { ...base, username: `${base.username.slice(0, 24)}_${i}` },
      });
    const statuses = new Map<number, number>();
    // The burst is more than the auth node's hashing admits at once: the excess is refused at once
    // with 503 and Retry-After, and is sent again after it, as a client does, until all are answered.
    let pending = Array.from({ length: 50 }, (_, i) => i);
    for (let round = 0; pending.length > 0 && round < 20; round++) {
      const answers = await Promise.all(pending.map(async (i) => [i, await register(i)] as const));
      let wait = 0;
      for (const [i, res] of answers) {
        statuses.set(i, res.status);
        if (res.status === 503) {
          const retryAfter = Number(res.headers.get("retry-after"));
          assert.ok(retryAfter >= 1, "a 503 says when to come back");
          wait = Math.max(wait, retryAfter);
        }
      }
      pending = answers.filter(([, res]) => res.status === 503).map(([i]) => i);
      if (pending.length) await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
    const all = [...statuses.values()];
    assert.equal(all.filter((s) => s === 201).length, 1, `statuses: ${all.join(",")}`);
    assert.equal(all.filter((s) => s === 409).length, 49, `statuses: ${all.join(",")}`);
  });
});

describe("POST /auth/login", () => {
  test("by email and by username (any case) answers 200 with the register shape", async () => {
    const input = newUser();
    await api.raw("POST", "/auth/register", { body: input });
    const byEmail = await api.raw("POST", "/auth/login", {
      body: { email: input.email, password: input.password },
    });
    assert.equal(byEmail.status, 200);
    assert.deepEqual(Object.keys(byEmail.body as object).sort(), [
      "accessToken",
      "expiresIn",
      "refreshToken",
      "user",
    ]);
    const byName = await api.raw("POST", "/auth/login", {
      body: { username: input.username.toUpperCase(), password: input.password },
    });
    assert.equal(byName.status, 200);
  });

  test("unknown account and wrong password give the same 401 body", async () => {
    const input = newUser();
    await api.raw("POST", "/auth/register", { body: input });
    const wrong = await api.raw("POST", "/auth/login", {
      body: { email: input.email, password: "wrong-password-1" },
    });
    const unknown = await api.raw("POST", "/auth/login", {
      body: { email: `nobody-${input.email}`, password: "wrong-password-1" },
    });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(wrong.body, unknown.body);
  });

  test("both or neither of email and username is 422", async () => {
    const both = await api.raw("POST", "/auth/login", {
      body: { email: "a@b.test", username: "abc", password: "x" },
    });
    const neither = await api.raw("POST", "/auth/login", { body: { password: "x" } });
    assert.equal(both.status, 422);
    assert.equal(neither.status, 422);
  });
});

describe("refresh tokens", () => {
  test("a refresh rotates the pair and spends the old refresh token", async () => {
    const reg = (await api.raw("POST", "/auth/register", { body: newUser() })).body as Record<string, string>;
    const first = await api.raw("POST", "/auth/refresh", { body: { refreshToken: reg.refreshToken } });
    assert.equal(first.status, 200);
    const pair = first.body as Record<string, string>;
    assert.notEqual(pair.refreshToken, reg.refreshToken);
    assert.deepEqual(Object.keys(pair).sort(), ["accessToken", "expiresIn", "refreshToken"]);
  });

  test("reusing a spent refresh token after the grace window revokes the whole family, access tokens included", async () => {
    const reg = (await api.raw("POST", "/auth/register", { body: newUser() })).body as Record<string, string>;
    const next = (await api.raw("POST", "/auth/refresh", { body: { refreshToken: reg.refreshToken } }))
      .body as Record<string, string>;
    await pastTheGrace();
    const reuse = await api.raw("POST", "/auth/refresh", { body: { refreshToken: reg.refreshToken } });
    assert.equal(reuse.status, 401);
    const afterReuse = await api.raw("POST", "/auth/refresh", { body: { refreshToken: next.refreshToken } });
    assert.equal(afterReuse.status, 401, "the newest token of the family is revoked too");
    const me = await api.raw("GET", "/users/me", { token: next.accessToken });
    assert.equal(me.status, 401);
  });

  test("concurrent refreshes with one token all get the same new pair, and the session lives on", async () => {
    const reg = (await api.raw("POST", "/auth/register", { body: newUser() })).body as Record<string, string>;
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        api.raw("POST", "/auth/refresh", { body: { refreshToken: reg.refreshToken } }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
    const pairs = results.map((r) => r.body as Record<string, string>);
    for (const pair of pairs) assert.deepEqual(pair, pairs[0], "one successor pair for every retry");
    const winner = pairs[0] as Record<string, string>;
    assert.equal((await api.raw("GET", "/users/me", { token: winner.accessToken })).status, 200);
    const next = await api.raw("POST", "/auth/refresh", { body: { refreshToken: winner.refreshToken } });
    assert.equal(next.status, 200, "the successor refreshes as usual");
  });

  test("a live token stored before sessions held their current token still refreshes once", async () => {
    const reg = (await api.raw("POST", "/auth/register", { body: newUser() })).body as {
      user: { id: string };
    };
    const store = (platform.broker.getLocalService("auth") as unknown as { store: Store }).store;
    const sessionId = randomUUID();
    const token = randomBytes(32).toString("base64url");
    const now = new Date();
    const expiresAt = new Date(now.getTime() + 3_600_000);
    await store.collection("sessions").insertOne({
      _id: sessionId,
      userId: reg.user.id,
      userAgent: "older release",
      ip: "127.0.0.1",
      createdAt: now,
      updatedAt: now,
      lastUsedAt: now,
      expiresAt,
    } as never);
    await store.collection("refresh_tokens").insertOne({
      _id: hashRefreshToken(token),
      sessionId,
      userId: reg.user.id,
      createdAt: now,
      updatedAt: now,
      expiresAt,
    } as never);
    const first = await api.raw("POST", "/auth/refresh", { body: { refreshToken: token } });
    assert.equal(first.status, 200);
    const pair = first.body as Record<string, string>;
    const second = await api.raw("POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    assert.equal(second.status, 200, "the session now holds its current token");
    const reuse = await api.raw("POST", "/auth/refresh", { body: { refreshToken: token } });
    assert.equal(reuse.status, 401);
    const afterReuse = await api.raw("POST", "/auth/refresh", {
      body: { refreshToken: (second.body as Record<string, string>).refreshToken },
    });
    assert.equal(afterReuse.status, 401, "reusing the old token revoked the family");
  });

  test("an unknown refresh token is 401", async () => {
    const res = await api.raw("POST", "/auth/refresh", { body: { refreshToken: "x".repeat(43) } });
    assert.equal(res.status, 401);
  });

  test("a refresh token used as an access token is 401", async () => {
    const reg = (await api.raw("POST", "/auth/register", { body: newUser() })).body as Record<string, string>;
    const res = await api.raw("GET", "/users/me", { token: reg.refreshToken });
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
  });
});

describe("sessions and logout", () => {
  test("logout answers 204 and makes that session's access token unusable at once", async () => {
    const client = new ApiClient(platform.url);
    await client.register(newUser());
    const token = client.accessToken;
    assert.equal((await api.raw("GET", "/users/me", { token })).status, 200);
    const res = await api.raw("POST", "/auth/logout", { body: {}, token });
    assert.equal(res.status, 204);
    assert.equal(res.body, "");
    assert.equal((await api.raw("GET", "/users/me", { token })).status, 401);
  });

  test("logout-all revokes every session; sessions lists and revokes one by one", async () => {
    const input = newUser();
    const a = new ApiClient(platform.url, { headers: { "user-agent": "device-a" } });
    const b = new ApiClient(platform.url, { headers: { "user-agent": "device-b" } });
    await a.register(input);
    await b.login({ email: input.email, password: input.password });
    const c = new ApiClient(platform.url);
    await c.login({ email: input.email, password: input.password });

    const list = await a.sessions();
    assert.equal(list.sessions.length, 3);
    assert.equal(list.sessions.filter((s) => s.current).length, 1);
    assert.ok(list.sessions.some((s) => s.userAgent === "device-b"));

    const bSession = (await b.sessions()).sessions.find((s) => s.current);
    assert.ok(bSession);
    const revoke = await api.raw("DELETE", `/auth/sessions/${bSession.id}`, { token: a.accessToken });
    assert.equal(revoke.status, 204);
    assert.equal((await api.raw("GET", "/users/me", { token: b.accessToken })).status, 401);
    const again = await api.raw("DELETE", `/auth/sessions/${bSession.id}`, { token: a.accessToken });
    assert.equal(again.status, 404);

    const all = await api.raw("POST", "/auth/logout-all", { body: {}, token: a.accessToken });
    assert.equal(all.status, 204);
    assert.equal((await api.raw("GET", "/users/me", { token: a.accessToken })).status, 401);
    assert.equal((await api.raw("GET", "/users/me", { token: c.accessToken })).status, 401);
  });

  test("another user's session id is 404, not revoked", async () => {
    const a = new ApiClient(platform.url);
    const b = new ApiClient(platform.url);
    await a.register(newUser());
    await b.register(newUser());
    const bSession = (await b.sessions()).sessions[0];
    assert.ok(bSession);
    const res = await api.raw("DELETE", `/auth/sessions/${bSession.id}`, { token: a.accessToken });
    assert.equal(res.status, 404);
    assert.equal((await api.raw("GET", "/users/me", { token: b.accessToken })).status, 200);
  });
});

describe("GET /.well-known/jwks.json", () => {
  test("publishes Ed25519 public keys only", async () => {
    const res = await api.raw("GET", "/.well-known/jwks.json");
    assert.equal(res.status, 200);
    const keys = (res.body as { keys: Record<string, string>[] }).keys;
    assert.ok(keys.length >= 1);
    for (const key of keys) {
      assert.equal(key.kty, "OKP");
      assert.equal(key.crv, "Ed25519");
      assert.equal(key.alg, "EdDSA");
      assert.ok(key.kid);
      assert.equal(key.d, undefined, "no private part");
    }
  });

  test("rotating the signing key logs nobody out and publishes both keys", async () => {
    const client = new ApiClient(platform.url);
    await client.register(newUser());
    await platform.broker.call("auth.rotateKeys");
    const keys = ((await api.raw("GET", "/.well-known/jwks.json")).body as { keys: unknown[] }).keys;
    assert.ok(keys.length >= 2);
    assert.equal((await api.raw("GET", "/users/me", { token: client.accessToken })).status, 200);
    const fresh = new ApiClient(platform.url);
    await fresh.register(newUser());
    assert.equal((await api.raw("GET", "/users/me", { token: fresh.accessToken })).status, 200);
  });
});

/**
 * A refresh retried with the same token within REFRESH_REUSE_GRACE_MS (a lost answer, a flaky
 * network) gets the same new pair; any other reuse revokes the session, as RFC 9700 advises.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { Store } from "../../lib/store/types.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

const GRACE_MS = 1_000;
let platform: Awaited<ReturnType<typeof startEmbedded>>;
let api: ApiClient;

before(async () => {
  platform = await startEmbedded({ REFRESH_REUSE_GRACE_MS: String(GRACE_MS) });
  api = new ApiClient(platform.url);
});
after(() => platform.stop());

type Pair = { accessToken: string; refreshToken: string; expiresIn: number };
const refresh = (refreshToken: string) => api.raw("POST", "/auth/refresh", { body: { refreshToken } });
const signUp = async () => (await api.raw("POST", "/auth/register", { body: newUser() })).body as Pair;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("refresh retries within the grace window", () => {
  test("a retry of the refresh gets the same pair, and the session lives on", async () => {
    const first = await signUp();
    const a = await refresh(first.refreshToken);
    const b = await refresh(first.refreshToken);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.deepEqual(b.body, a.body, "the same successor pair");
    const next = (a.body as Pair).refreshToken;
    assert.equal((await api.raw("GET", "/users/me", { token: (b.body as Pair).accessToken })).status, 200);
    assert.equal((await refresh(next)).status, 200, "the successor is still the session's token");
  });

  test("after the window a repeat revokes the whole session", async () => {
    const first = await signUp();
    const pair = (await refresh(first.refreshToken)).body as Pair;
    await wait(GRACE_MS + 200);
    assert.equal((await refresh(first.refreshToken)).status, 401);
    assert.equal((await refresh(pair.refreshToken)).status, 401, "the successor is revoked too");
    assert.equal((await api.raw("GET", "/users/me", { token: pair.accessToken })).status, 401);
  });

  test("within the window, a token older than the last one spent revokes the session", async () => {
    const first = await signUp();
    const second = (await refresh(first.refreshToken)).body as Pair;
    const third = (await refresh(second.refreshToken)).body as Pair;
    assert.equal((await refresh(first.refreshToken)).status, 401);
    assert.equal((await refresh(third.refreshToken)).status, 401, "the family is revoked");
  });

  test("a retry after logout is 401", async () => {
    const first = await signUp();
    const pair = (await refresh(first.refreshToken)).body as Pair;
    assert.equal((await api.raw("POST", "/auth/logout", { body: {}, token: pair.accessToken })).status, 204);
    assert.equal((await refresh(first.refreshToken)).status, 401);
  });

  test("the store keeps the successor pair only sealed, never the tokens in plain text", async () => {
    const first = await signUp();
    const pair = (await refresh(first.refreshToken)).body as Pair;
    const store = (platform.broker.getLocalService("auth") as unknown as { store: Store }).store;
    const dump = JSON.stringify([
      await store.collection("sessions").find({}, { limit: 10_000 }),
      await store.collection("refresh_tokens").find({}, { limit: 10_000 }),
    ]);
    for (const token of [first.refreshToken, pair.refreshToken, pair.accessToken])
      assert.ok(!dump.includes(token), "no token in plain text");
    assert.ok(dump.includes('"sealedPair":"v1.'), "the sealed pair is there");
  });
});

describe("with REFRESH_REUSE_GRACE_MS=0", () => {
  let strict: Awaited<ReturnType<typeof startEmbedded>>;
  before(async () => {
    strict = await startEmbedded({ REFRESH_REUSE_GRACE_MS: "0" });
  });
  after(() => strict.stop());

  test("any repeat revokes at once", async () => {
    const client = new ApiClient(strict.url);
    const first = (await client.raw("POST", "/auth/register", { body: newUser() })).body as Pair;
    const pair = (await client.raw("POST", "/auth/refresh", { body: { refreshToken: first.refreshToken } }))
      .body as Pair;
    const again = await client.raw("POST", "/auth/refresh", { body: { refreshToken: first.refreshToken } });
    assert.equal(again.status, 401);
    const next = await client.raw("POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    assert.equal(next.status, 401);
  });
});

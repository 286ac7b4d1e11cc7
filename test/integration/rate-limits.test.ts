import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;

describe("rate limits on a lone node", () => {
  let platform: Platform;
  before(async () => {
    platform = await startEmbedded({
      RATE_LIMIT_REGISTER_IP: "3/60",
      RATE_LIMIT_LOGIN_IP: "1000/60",
      RATE_LIMIT_LOGIN_ACCOUNT: "3/60",
    });
  });
  after(() => platform.stop());

  test("registrations per IP: 429 with Retry-After, and a forged X-Forwarded-For does not reset it", async () => {
    const api = new ApiClient(platform.url);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await api.raw("POST", "/auth/register", {
        body: newUser(),
        headers: { "x-forwarded-for": `203.0.113.${i}` },
      });
      statuses.push(res.status);
      if (res.status === 429) {
        assert.match(res.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
        assert.equal((res.body as { error: { code: string } }).error.code, "RATE_LIMITED");
      }
    }
    assert.deepEqual(statuses, [201, 201, 201, 429, 429]);
  });

  test("failed logins per account pause that account, even with the right password", async () => {
    const input = newUser();
    const owner = new ApiClient(platform.url);
    await platform.broker.call("auth.register", input, { meta: { clientIp: "198.51.100.7" } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push(
        (await owner.raw("POST", "/auth/login", { body: { email: input.email, password: "not-it-123" } }))
          .status,
      );
    }
    const right = await owner.raw("POST", "/auth/login", {
      body: { email: input.email, password: input.password },
    });
    statuses.push(right.status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    const other = newUser();
    await platform.broker.call("auth.register", other, { meta: { clientIp: "198.51.100.8" } });
    const unaffected = await owner.raw("POST", "/auth/login", {
      body: { email: other.email, password: other.password },
    });
    assert.equal(unaffected.status, 200, "another account is not paused");
  });
});

describe("behind a trusted proxy", () => {
  let platform: Platform;
  before(async () => {
    platform = await startEmbedded({ RATE_LIMIT_REGISTER_IP: "2/60", TRUSTED_PROXIES: "127.0.0.1" });
  });
  after(() => platform.stop());

  test("X-Forwarded-For from a trusted proxy names the client, so each client has its own budget", async () => {
    const api = new ApiClient(platform.url);
    const send = (ip: string) =>
      api
        .raw("POST", "/auth/register", { body: newUser(), headers: { "x-forwarded-for": ip } })
        .then((r) => r.status);
    assert.deepEqual(
      [await send("192.0.2.1"), await send("192.0.2.1"), await send("192.0.2.1")],
      [201, 201, 429],
    );
    assert.equal(await send("192.0.2.2"), 201);
  });
});

/**
 * The failed-login limit counts per account, whichever name the login gives (email or username, any
 * letter case); a name of no account has a budget of its own, with the same answers.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

let platform: Awaited<ReturnType<typeof startEmbedded>>;
let api: ApiClient;

before(async () => {
  platform = await startEmbedded({ RATE_LIMIT_LOGIN_ACCOUNT: "4/60", RATE_LIMIT_LOGIN_IP: "100000/60" });
  api = new ApiClient(platform.url);
});
after(() => platform.stop());

const login = (body: Record<string, string>) => api.raw("POST", "/auth/login", { body });

describe("failed logins per account", () => {
  test("wrong passwords by email and by username, in any case, count against one budget", async () => {
    const input = newUser();
    await api.register(input);
    const wrong = "not-the-password-1";
    const statuses = [
      (await login({ email: input.email, password: wrong })).status,
      (await login({ email: input.email.toUpperCase(), password: wrong })).status,
      (await login({ username: input.username, password: wrong })).status,
      (await login({ username: input.username.toUpperCase(), password: wrong })).status,
    ];
    assert.deepEqual(statuses, [401, 401, 401, 401]);
    const rightPassword: Record<string, string>[] = [
      { email: input.email, password: input.password },
      { username: input.username.toLowerCase(), password: input.password },
    ];
    for (const body of rightPassword) {
      const paused = await login(body);
      assert.equal(paused.status, 429, JSON.stringify(body));
      assert.match(paused.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
    }
  });

  test("a name of no account answers as an account does: 401 with the same body, then 429", async () => {
    const known = newUser();
    await api.register(known);
    const unknown = newUser();
    const answers = async (body: Record<string, string>) => {
      const out: { status: number; body: unknown }[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await login(body);
        out.push({ status: res.status, body: res.body });
      }
      return out;
    };
    const ofKnown = await answers({ email: known.email, password: "wrong-password-9" });
    const ofUnknown = await answers({ email: unknown.email, password: "wrong-password-9" });
    assert.deepEqual(
      ofKnown.map((a) => a.status),
      [401, 401, 401, 401, 429],
    );
    assert.deepEqual(ofUnknown, ofKnown);
  });

  test("another account is not paused", async () => {
    const victim = newUser();
    const other = newUser();
    await api.register(victim);
    await api.register(other);
    for (let i = 0; i < 4; i++) await login({ username: victim.username, password: "wrong-password-9" });
    assert.equal((await login({ email: victim.email, password: victim.password })).status, 429);
    assert.equal((await login({ email: other.email, password: other.password })).status, 200);
  });
});

/**
 * ApiClient's account calls against a fake fetch: two-factor sign-in, email verification, password
 * reset and change, two-factor settings, deletion, export and push subscriptions: the paths,
 * methods, bodies and tokens it sends, and what it keeps of the answers.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ApiClient, ApiError, expectSession, isMfaChallenge } from "../../../client/index.ts";
import { type Answer, BASE, fakeFetch, on } from "./fake-server.ts";

interface Seen {
  method: string;
  path: string;
  body: unknown;
  authorization: string | null;
}

/** A fetch answering "METHOD path" from `routes` (each answer used in turn), recording the bearer sent. */
function scripted(routes: Record<string, Answer[]>): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    const text = typeof init?.body === "string" ? init.body : undefined;
    const method = init?.method ?? "GET";
    seen.push({
      method,
      path: url.pathname,
      body: text === undefined ? undefined : JSON.parse(text),
      authorization: headers.get("authorization"),
    });
    const answer = routes[`${method} ${url.pathname}`]?.shift() ?? {
      status: 404,
      body: { error: { code: "NOT_FOUND", message: "no route" } },
    };
    const status = answer.status ?? (answer.body === undefined ? 204 : 200);
    if (answer.body === undefined) return new Response(null, { status });
    return new Response(JSON.stringify(answer.body), {
      status,
      headers: { "content-type": "application/json" },
    });
  };
  return { fetch: fetch as typeof globalThis.fetch, seen };
}

const user = {
  id: "me",
  email: "a@example.test",
  emailVerified: false,
  username: "me",
  displayName: "Me",
  createdAt: "x",
};
const session = (n: number) => ({ user, accessToken: `a${n}`, refreshToken: `r${n}`, expiresIn: 900 });
const challenge = { mfaRequired: true, mfaToken: "m".repeat(43), expiresIn: 300 };

async function signedIn(...routes: Parameters<typeof fakeFetch>) {
  const fake = fakeFetch(...routes);
  const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
  await api.login({ username: "me_user", password: "whatever-pw" });
  return { api, calls: fake.calls };
}

describe("two-factor sign-in", () => {
  test("a challenged login answers the challenge and keeps no tokens; verifyMfa with a code signs in", async () => {
    const fake = scripted({
      "POST /auth/login": [{ status: 200, body: challenge }],
      "POST /auth/2fa/verify": [{ status: 200, body: session(1) }],
      "GET /users/me": [{ status: 200, body: { id: "me" } }],
    });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    const res = await api.login({ email: "a@example.test", password: "pw-pw-pw-pw" });
    assert.ok(isMfaChallenge(res));
    assert.equal(res.mfaToken, challenge.mfaToken);
    assert.equal(api.accessToken, undefined);
    assert.equal(api.refreshToken, undefined);
    assert.throws(() => expectSession(res), /two-factor/);

    const done = await api.verifyMfa({ mfaToken: res.mfaToken, code: "123456" });
    assert.equal(done.user.id, "me");
    assert.equal(api.accessToken, "a1");
    assert.equal(api.refreshToken, "r1");
    assert.deepEqual(fake.seen[1], {
      method: "POST",
      path: "/auth/2fa/verify",
      body: { mfaToken: challenge.mfaToken, code: "123456" },
      authorization: null,
    });
    await api.me();
    assert.equal(fake.seen[2]?.authorization, "Bearer a1");
  });

  test("verifyMfa with a recovery code sends only recoveryCode", async () => {
    const fake = scripted({ "POST /auth/2fa/verify": [{ status: 200, body: session(2) }] });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    await api.verifyMfa({ mfaToken: "t", recoveryCode: "k7m2p-x9qrt" });
    assert.deepEqual(fake.seen[0]?.body, { mfaToken: "t", recoveryCode: "k7m2p-x9qrt" });
    assert.equal(api.accessToken, "a2");
  });

  test("a refused code throws the server's code and keeps no tokens", async () => {
    const fake = scripted({
      "POST /auth/2fa/verify": [
        { status: 401, body: { error: { code: "INVALID_MFA_CODE", message: "no" } } },
      ],
    });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    await assert.rejects(
      api.verifyMfa({ mfaToken: "t", code: "000000" }),
      (err) => err instanceof ApiError && err.status === 401 && err.code === "INVALID_MFA_CODE",
    );
    assert.equal(api.accessToken, undefined);
  });

  test("a login without two-factor authentication keeps the tokens as before", async () => {
    const fake = scripted({ "POST /auth/login": [{ status: 200, body: session(3) }] });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    const res = await api.login({ username: "me", password: "pw-pw-pw-pw" });
    assert.equal(isMfaChallenge(res), false);
    assert.equal(expectSession(res).user.id, "me");
    assert.equal(api.accessToken, "a3");
  });
});

describe("email verification", () => {
  test("verifyEmail sends the token without a bearer, then refreshes the signed-in tokens once", async () => {
    const fake = scripted({
      "POST /auth/login": [{ status: 200, body: session(1) }],
      "POST /auth/verify-email": [{ status: 204 }],
      "POST /auth/refresh": [
        { status: 200, body: { accessToken: "a9", refreshToken: "r9", expiresIn: 900 } },
      ],
    });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    await api.login({ username: "me", password: "pw-pw-pw-pw" });
    await api.verifyEmail("T".repeat(43));
    assert.deepEqual(
      fake.seen.slice(1).map((s) => [s.method, s.path, s.body, s.authorization]),
      [
        ["POST", "/auth/verify-email", { token: "T".repeat(43) }, null],
        ["POST", "/auth/refresh", { refreshToken: "r1" }, null],
      ],
    );
    assert.equal(api.accessToken, "a9");
  });

  test("signed out, verifyEmail refreshes nothing", async () => {
    const fake = scripted({ "POST /auth/verify-email": [{ status: 204 }] });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    await api.verifyEmail("tok");
    assert.deepEqual(
      fake.seen.map((s) => s.path),
      ["/auth/verify-email"],
    );
  });

  test("a refused token throws INVALID_TOKEN and refreshes nothing", async () => {
    const fake = scripted({
      "POST /auth/login": [{ status: 200, body: session(1) }],
      "POST /auth/verify-email": [{ status: 400, body: { error: { code: "INVALID_TOKEN", message: "no" } } }],
    });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    await api.login({ username: "me", password: "pw-pw-pw-pw" });
    await assert.rejects(
      api.verifyEmail("bad"),
      (err) => err instanceof ApiError && err.code === "INVALID_TOKEN",
    );
    assert.equal(fake.seen.length, 2);
    assert.equal(api.accessToken, "a1");
  });
});

describe("account calls", () => {
  test("each call's method, path and body", async () => {
    const { api, calls } = await signedIn(
      on("POST", "/auth/verify-email/resend", { status: 202 }),
      on("POST", "/auth/email", { status: 202 }),
      on("POST", "/auth/password-reset", { status: 202 }),
      on("POST", "/auth/password-reset/confirm", { status: 204 }),
      on("POST", "/auth/password", { status: 204 }),
      on("GET", "/auth/account", { body: { id: "me", mfaEnabled: false, recoveryCodesLeft: 0 } }),
      on("POST", "/auth/2fa/setup", { body: { secret: "ABC", uri: "otpauth://totp/x?secret=ABC" } }),
      on("POST", "/auth/2fa/enable", { body: { recoveryCodes: ["a", "b"] } }),
      on("POST", "/auth/2fa/disable", { status: 204 }),
      on("GET", "/push/vapid-public-key", { body: { publicKey: "BPK" } }),
      on("POST", "/push/subscriptions", { status: 201, body: { created: true } }),
      on("DELETE", "/push/subscriptions", { status: 204 }),
    );
    await api.resendVerification();
    await api.changeEmail("new@example.test", "pw");
    await api.requestPasswordReset("a@example.test");
    await api.confirmPasswordReset("tok", "new-password-1");
    await api.changePassword("old-pw", "new-pw-long");
    assert.equal((await api.account()).id, "me");
    assert.deepEqual(await api.mfaSetup(), { secret: "ABC", uri: "otpauth://totp/x?secret=ABC" });
    assert.deepEqual(await api.mfaEnable("123456"), { recoveryCodes: ["a", "b"] });
    await api.mfaDisable("pw", "654321");
    assert.equal(await api.pushPublicKey(), "BPK");
    const sub = {
      endpoint: "https://push.example.test/x",
      keys: { p256dh: "P", auth: "A" },
      expirationTime: null,
    };
    assert.deepEqual(await api.subscribePush(sub), { created: true });
    await api.unsubscribePush("https://push.example.test/x");
    assert.deepEqual(calls, [
      { method: "POST", path: "/auth/verify-email/resend", body: {} },
      { method: "POST", path: "/auth/email", body: { newEmail: "new@example.test", password: "pw" } },
      { method: "POST", path: "/auth/password-reset", body: { email: "a@example.test" } },
      {
        method: "POST",
        path: "/auth/password-reset/confirm",
        body: { token: "tok", password: "new-password-1" },
      },
      {
        method: "POST",
        path: "/auth/password",
        body: { currentPassword: "old-pw", newPassword: "new-pw-long" },
      },
      { method: "GET", path: "/auth/account", body: undefined },
      { method: "POST", path: "/auth/2fa/setup", body: {} },
      { method: "POST", path: "/auth/2fa/enable", body: { code: "123456" } },
      { method: "POST", path: "/auth/2fa/disable", body: { password: "pw", code: "654321" } },
      { method: "GET", path: "/push/vapid-public-key", body: undefined },
      // expirationTime is no field of the route (422): only endpoint and keys go.
      {
        method: "POST",
        path: "/push/subscriptions",
        body: { endpoint: "https://push.example.test/x", keys: { p256dh: "P", auth: "A" } },
      },
      { method: "DELETE", path: "/push/subscriptions", body: { endpoint: "https://push.example.test/x" } },
    ]);
  });

  test("the signed-out routes go without a bearer, the others with it", async () => {
    const fake = scripted({
      "POST /auth/login": [{ status: 200, body: session(1) }],
      "POST /auth/password-reset": [{ status: 202 }],
      "POST /auth/password-reset/confirm": [{ status: 204 }],
      "GET /push/vapid-public-key": [{ body: { publicKey: "K" } }],
      "POST /auth/password": [{ status: 204 }],
    });
    const api = new ApiClient(BASE, { fetch: fake.fetch, retry: false });
    await api.login({ username: "me", password: "pw-pw-pw-pw" });
    await api.requestPasswordReset("a@example.test");
    await api.confirmPasswordReset("tok", "new-password-1");
    await api.pushPublicKey();
    await api.changePassword("a", "b");
    assert.deepEqual(
      fake.seen.map((s) => [s.path, s.authorization]),
      [
        ["/auth/login", null],
        ["/auth/password-reset", null],
        ["/auth/password-reset/confirm", null],
        ["/push/vapid-public-key", null],
        ["/auth/password", "Bearer a1"],
      ],
    );
  });

  test("a refusal throws the server's status and code", async () => {
    const { api } = await signedIn(
      on("POST", "/auth/email", { status: 403, body: { error: { code: "WRONG_PASSWORD", message: "no" } } }),
      on("POST", "/auth/2fa/enable", {
        status: 409,
        body: { error: { code: "MFA_NOT_SET_UP", message: "no" } },
      }),
    );
    await assert.rejects(
      api.changeEmail("b@example.test", "wrong"),
      (err) => err instanceof ApiError && err.status === 403 && err.code === "WRONG_PASSWORD",
    );
    await assert.rejects(
      api.mfaEnable("123456"),
      (err) => err instanceof ApiError && err.status === 409 && err.code === "MFA_NOT_SET_UP",
    );
  });

  test("exportData answers the parsed document", async () => {
    const doc = { exportedAt: "2030-01-01T00:00:00.000Z", account: { id: "me" }, messages: [{ id: "m1" }] };
    const { api, calls } = await signedIn(on("GET", "/users/me/export", { body: doc }));
    assert.deepEqual(await api.exportData(), doc);
    assert.deepEqual(calls, [{ method: "GET", path: "/users/me/export", body: undefined }]);
  });

  test("an export over the limit throws 429 RATE_LIMITED", async () => {
    const { api } = await signedIn(
      on("GET", "/users/me/export", {
        status: 429,
        body: { error: { code: "RATE_LIMITED", message: "later" } },
      }),
    );
    await assert.rejects(api.exportData(), (err) => err instanceof ApiError && err.status === 429);
  });
});

describe("account deletion", () => {
  test("DELETE /users/me with the JSON body, then the tokens are gone", async () => {
    const { api, calls } = await signedIn(on("DELETE", "/users/me", { status: 204 }));
    assert.equal(api.accessToken, "t");
    await api.deleteAccount({ password: "pw", code: "123456", eraseMessages: true });
    assert.deepEqual(calls, [
      { method: "DELETE", path: "/users/me", body: { password: "pw", code: "123456", eraseMessages: true } },
    ]);
    assert.equal(api.accessToken, undefined);
    assert.equal(api.refreshToken, undefined);
  });

  test("without a code or eraseMessages only the password goes", async () => {
    const { api, calls } = await signedIn(on("DELETE", "/users/me", { status: 204 }));
    await api.deleteAccount({ password: "pw" });
    assert.deepEqual(calls[0]?.body, { password: "pw" });
  });

  test("a refused deletion keeps the tokens", async () => {
    const { api } = await signedIn(
      on("DELETE", "/users/me", {
        status: 403,
        body: { error: { code: "INVALID_MFA_CODE", message: "no" } },
      }),
    );
    await assert.rejects(
      api.deleteAccount({ password: "pw" }),
      (err) => err instanceof ApiError && err.code === "INVALID_MFA_CODE",
    );
    assert.equal(api.accessToken, "t");
  });
});

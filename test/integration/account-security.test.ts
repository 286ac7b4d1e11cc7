/**
 * Email verification and change, password reset and change, and two-factor authentication, through
 * the gateway of an embedded node, which writes its mails as .eml files (no SMTP_URL) that these
 * tests follow the links of. test/cluster/account-mail.test.ts does the same over SMTP to Mailpit.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { Store } from "../../lib/store/types.ts";
import { hashToken } from "../../services/auth/mailed-tokens.repo.ts";
import { totpCode } from "../../services/auth/two-factor.ts";
import { waitForOutboxMail } from "../support/outbox.ts";
import { newUser, startEmbedded } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

type Platform = Awaited<ReturnType<typeof startEmbedded>>;
let platform: Platform;
const seen = new Set<string>();

before(async () => {
  platform = await startEmbedded({ RATE_LIMIT_LOGIN_ACCOUNT: "100/900" });
});
after(() => platform.stop());

function codeOf(body: unknown): string | undefined {
  return (body as { error?: { code?: string } }).error?.code;
}

function authStore(): Store {
  return (platform.broker.getLocalService("auth") as unknown as { store: Store }).store;
}

async function registered(input = newUser()) {
  const api = new ApiClient(platform.url);
  const res = await api.raw<{
    user: { id: string; emailVerified: boolean };
    accessToken: string;
    refreshToken: string;
  }>("POST", "/auth/register", { body: input });
  assert.equal(res.status, 201);
  return {
    ...input,
    api,
    id: res.body.user.id,
    token: res.body.accessToken,
    refresh: res.body.refreshToken,
    user: res.body.user,
  };
}

function mailTo(to: string, match: RegExp) {
  return waitForOutboxMail(platform.dataDir, to, match, { exclude: seen });
}

describe("email verification", () => {
  test("registration mails a link; the link verifies the address once", async () => {
    const u = await registered();
    assert.equal(u.user.emailVerified, false);
    const mail = await mailTo(u.email, /#verify-email=/);
    assert.ok(mail.token, "the mail carries a token of 256 bits");
    const account = await u.api.raw<{ emailVerified: boolean }>("GET", "/auth/account", { token: u.token });
    assert.equal(account.body.emailVerified, false);

    const verified = await u.api.raw("POST", "/auth/verify-email", {
      body: { token: mail.token },
      token: null,
    });
    assert.equal(verified.status, 204);
    assert.equal(
      (await u.api.raw<{ emailVerified: boolean }>("GET", "/auth/account", { token: u.token })).body
        .emailVerified,
      true,
    );
    const me = await u.api.raw<{ emailVerified: boolean }>("GET", "/users/me", { token: u.token });
    assert.equal(me.body.emailVerified, true);

    const again = await u.api.raw("POST", "/auth/verify-email", { body: { token: mail.token }, token: null });
    assert.equal(again.status, 400);
    assert.equal(codeOf(again.body), "INVALID_TOKEN");
    const resend = await u.api.raw("POST", "/auth/verify-email/resend", { body: {}, token: u.token });
    assert.equal(resend.status, 409);
    assert.equal(codeOf(resend.body), "EMAIL_ALREADY_VERIFIED");
  });

  test("a forged, an expired and a malformed token answer the same 400", async () => {
    const u = await registered();
    const mail = await mailTo(u.email, /#verify-email=/);
    const forged = await u.api.raw("POST", "/auth/verify-email", {
      body: { token: "A".repeat(43) },
      token: null,
    });
    assert.equal(forged.status, 400);
    assert.equal(codeOf(forged.body), "INVALID_TOKEN");
    await authStore()
      .collection("mailed_tokens")
      .updateOne({ _id: hashToken(mail.token ?? "") }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await u.api.raw("POST", "/auth/verify-email", {
      body: { token: mail.token },
      token: null,
    });
    assert.equal(expired.status, 400);
    assert.deepEqual(expired.body, forged.body);
    const empty = await u.api.raw("POST", "/auth/verify-email", { body: { token: "" }, token: null });
    assert.equal(empty.status, 422);
    const oversized = await u.api.raw("POST", "/auth/verify-email", {
      body: { token: "x".repeat(500) },
      token: null,
    });
    assert.equal(oversized.status, 422);
  });

  test("resend mails a new link and spends the old one", async () => {
    const u = await registered();
    const first = await mailTo(u.email, /#verify-email=/);
    const resend = await u.api.raw("POST", "/auth/verify-email/resend", { body: {}, token: u.token });
    assert.equal(resend.status, 202);
    const second = await mailTo(u.email, /#verify-email=/);
    assert.notEqual(second.token, first.token);
    const old = await u.api.raw("POST", "/auth/verify-email", { body: { token: first.token }, token: null });
    assert.equal(old.status, 400);
    const fresh = await u.api.raw("POST", "/auth/verify-email", {
      body: { token: second.token },
      token: null,
    });
    assert.equal(fresh.status, 204);
  });

  test("an address the email rule passes but no mail can reach is 422 at registration and at a change", async () => {
    const api = new ApiClient(platform.url);
    for (const email of ['v"x@example.test', "a,b@example.test"]) {
      const res = await api.raw<{ error: { details: { type: string }[] } }>("POST", "/auth/register", {
        body: { ...newUser(), email },
      });
      assert.equal(res.status, 422, email);
      assert.equal(res.body.error.details[0]?.type, "emailUndeliverable");
    }
    const u = await registered();
    const change = await u.api.raw("POST", "/auth/email", {
      body: { newEmail: "a,b@example.test", password: u.password },
      token: u.token,
    });
    assert.equal(change.status, 422);
  });

  test("resend without a token is 401", async () => {
    const api = new ApiClient(platform.url);
    assert.equal((await api.raw("POST", "/auth/verify-email/resend", { body: {} })).status, 401);
  });
});

describe("email change", () => {
  test("the change applies only when the link mailed to the new address is used", async () => {
    const u = await registered();
    const newEmail = `${newUser().username}@example.test`;
    const wrong = await u.api.raw("POST", "/auth/email", {
      body: { newEmail, password: "not-the-password" },
      token: u.token,
    });
    assert.equal(wrong.status, 403);
    assert.equal(codeOf(wrong.body), "WRONG_PASSWORD");

    const asked = await u.api.raw("POST", "/auth/email", {
      body: { newEmail, password: u.password },
      token: u.token,
    });
    assert.equal(asked.status, 202);
    const link = await mailTo(newEmail, /#verify-email=/);
    const notice = await mailTo(u.email, /Subject: Your email address is being changed/);
    assert.equal(notice.token, undefined, "the old address gets a notice without a link");
    assert.match(notice.decoded, new RegExp(newEmail.replace(/[.]/g, "\\.")));

    // Until the link is used, the old address is the account's.
    const oldLogin = await new ApiClient(platform.url).raw("POST", "/auth/login", {
      body: { email: u.email, password: u.password },
    });
    assert.equal(oldLogin.status, 200);

    assert.equal(
      (await u.api.raw("POST", "/auth/verify-email", { body: { token: link.token }, token: null })).status,
      204,
    );
    const me = await u.api.raw<{ email: string; emailVerified: boolean }>("GET", "/users/me", {
      token: u.token,
    });
    assert.equal(me.body.email, newEmail);
    assert.equal(me.body.emailVerified, true);
    const byOld = await new ApiClient(platform.url).raw("POST", "/auth/login", {
      body: { email: u.email, password: u.password },
    });
    assert.equal(byOld.status, 401);
    const byNew = await new ApiClient(platform.url).raw("POST", "/auth/login", {
      body: { email: newEmail, password: u.password },
    });
    assert.equal(byNew.status, 200);
  });

  test("an address of another account is 409 EMAIL_TAKEN, at the ask and at the link", async () => {
    const a = await registered();
    const b = await registered();
    const taken = await a.api.raw("POST", "/auth/email", {
      body: { newEmail: b.email, password: a.password },
      token: a.token,
    });
    assert.equal(taken.status, 409);
    assert.equal(codeOf(taken.body), "EMAIL_TAKEN");

    const target = `${newUser().username}@example.test`;
    assert.equal(
      (
        await a.api.raw("POST", "/auth/email", {
          body: { newEmail: target, password: a.password },
          token: a.token,
        })
      ).status,
      202,
    );
    const link = await mailTo(target, /#verify-email=/);
    // Someone registers the address before the link is followed.
    await registered({ ...newUser(), email: target });
    const late = await a.api.raw("POST", "/auth/verify-email", { body: { token: link.token }, token: null });
    assert.equal(late.status, 409);
    assert.equal(codeOf(late.body), "EMAIL_TAKEN");
  });

  test("a malformed address is 422, and the current address is 422", async () => {
    const u = await registered();
    const bad = await u.api.raw("POST", "/auth/email", {
      body: { newEmail: "nope", password: u.password },
      token: u.token,
    });
    assert.equal(bad.status, 422);
    const same = await u.api.raw("POST", "/auth/email", {
      body: { newEmail: u.email, password: u.password },
      token: u.token,
    });
    assert.equal(same.status, 422);
  });
});

describe("password reset", () => {
  test("an unknown address gets the same answer as a known one", async () => {
    const u = await registered();
    const api = new ApiClient(platform.url);
    const known = await api.raw("POST", "/auth/password-reset", { body: { email: u.email } });
    const unknown = await api.raw("POST", "/auth/password-reset", {
      body: { email: `nobody-${u.username}@example.test` },
    });
    assert.equal(known.status, 202);
    assert.equal(unknown.status, 202);
    assert.deepEqual(unknown.body, known.body);
    assert.equal(unknown.headers.get("content-length"), known.headers.get("content-length"));
    await mailTo(u.email, /#reset-password=/);
  });

  test("the mailed link sets a new password once, revokes every session and closes their sockets with 4001", async () => {
    const u = await registered();
    const socket = new RawSocket(`${platform.url.replace("http", "ws")}/ws`, { token: u.token });
    await socket.opened();
    const api = new ApiClient(platform.url);
    assert.equal(
      (await api.raw("POST", "/auth/password-reset", { body: { email: u.email.toUpperCase() } })).status,
      202,
    );
    const mail = await mailTo(u.email, /#reset-password=/);

    const weak = await api.raw<{ error: { details: { field: string }[] } }>(
      "POST",
      "/auth/password-reset/confirm",
      {
        body: { token: mail.token, password: "short" },
      },
    );
    assert.equal(weak.status, 422, "a refused password leaves the token usable");
    const newPassword = `${u.password}-new`;
    const done = await api.raw("POST", "/auth/password-reset/confirm", {
      body: { token: mail.token, password: newPassword },
    });
    assert.equal(done.status, 204);
    assert.equal((await socket.closed).code, 4001);
    const refresh = await api.raw("POST", "/auth/refresh", { body: { refreshToken: u.refresh } });
    assert.equal(refresh.status, 401);
    assert.equal((await api.raw("GET", "/users/me", { token: u.token })).status, 401);
    assert.equal(
      (await api.raw("POST", "/auth/login", { body: { email: u.email, password: u.password } })).status,
      401,
    );
    assert.equal(
      (await api.raw("POST", "/auth/login", { body: { email: u.email, password: newPassword } })).status,
      200,
    );

    const reused = await api.raw("POST", "/auth/password-reset/confirm", {
      body: { token: mail.token, password: `${newPassword}2` },
    });
    assert.equal(reused.status, 400);
    assert.equal(codeOf(reused.body), "INVALID_TOKEN");
    await mailTo(u.email, /Subject: Your password was changed/);
  });

  test("forged and expired reset tokens are 400; a verification token is no reset token", async () => {
    const u = await registered();
    const api = new ApiClient(platform.url);
    const verify = await mailTo(u.email, /#verify-email=/);
    const crossed = await api.raw("POST", "/auth/password-reset/confirm", {
      body: { token: verify.token, password: "a-fine-new-password" },
    });
    assert.equal(crossed.status, 400);
    await api.raw("POST", "/auth/password-reset", { body: { email: u.email } });
    const mail = await mailTo(u.email, /#reset-password=/);
    await authStore()
      .collection("mailed_tokens")
      .updateOne({ _id: hashToken(mail.token ?? "") }, { $set: { expiresAt: new Date(Date.now() - 1) } });
    const expired = await api.raw("POST", "/auth/password-reset/confirm", {
      body: { token: mail.token, password: "a-fine-new-password" },
    });
    assert.equal(expired.status, 400);
    const forged = await api.raw("POST", "/auth/password-reset/confirm", {
      body: { token: "z".repeat(43), password: "a-fine-new-password" },
    });
    assert.equal(forged.status, 400);
    assert.deepEqual(forged.body, expired.body);
  });

  test("too many asks for one address answer 429", async () => {
    const api = new ApiClient(platform.url);
    const email = `limited-${newUser().username}@example.test`;
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++)
      statuses.push((await api.raw("POST", "/auth/password-reset", { body: { email } })).status);
    assert.deepEqual(statuses.slice(0, 5), [202, 202, 202, 202, 202]);
    assert.equal(statuses.at(-1), 429);
  });
});

describe("password change", () => {
  test("needs the current password, keeps this session and revokes the others", async () => {
    const u = await registered();
    const other = await new ApiClient(platform.url).raw<{ accessToken: string }>("POST", "/auth/login", {
      body: { email: u.email, password: u.password },
    });
    const wrong = await u.api.raw("POST", "/auth/password", {
      body: { currentPassword: "nope-nope-nope", newPassword: "a-fine-new-password" },
      token: u.token,
    });
    assert.equal(wrong.status, 403);
    assert.equal(codeOf(wrong.body), "WRONG_PASSWORD");
    const common = await u.api.raw<{ error: { details: { field: string }[] } }>("POST", "/auth/password", {
      body: { currentPassword: u.password, newPassword: "password123" },
      token: u.token,
    });
    assert.equal(common.status, 422);
    assert.equal(common.body.error.details[0]?.field, "newPassword");
    const done = await u.api.raw("POST", "/auth/password", {
      body: { currentPassword: u.password, newPassword: "a-fine-new-password" },
      token: u.token,
    });
    assert.equal(done.status, 204);
    assert.equal((await u.api.raw("GET", "/users/me", { token: u.token })).status, 200);
    assert.equal((await u.api.raw("GET", "/users/me", { token: other.body.accessToken })).status, 401);
    const login = await new ApiClient(platform.url).raw("POST", "/auth/login", {
      body: { email: u.email, password: "a-fine-new-password" },
    });
    assert.equal(login.status, 200);
  });
});

describe("two-factor authentication", () => {
  async function withMfa() {
    const u = await registered();
    const setup = await u.api.raw<{ secret: string; uri: string }>("POST", "/auth/2fa/setup", {
      body: {},
      token: u.token,
    });
    assert.equal(setup.status, 200);
    assert.match(setup.body.uri, /^otpauth:\/\/totp\//);
    assert.ok(setup.body.uri.includes(`secret=${setup.body.secret}`));
    const wrong = await u.api.raw("POST", "/auth/2fa/enable", { body: { code: "000000" }, token: u.token });
    assert.equal(wrong.status, 403);
    assert.equal(codeOf(wrong.body), "INVALID_MFA_CODE");
    const enabled = await u.api.raw<{ recoveryCodes: string[] }>("POST", "/auth/2fa/enable", {
      body: { code: totpCode(setup.body.secret) },
      token: u.token,
    });
    assert.equal(enabled.status, 200);
    return { ...u, secret: setup.body.secret, recoveryCodes: enabled.body.recoveryCodes };
  }

  async function challenge(u: { email: string; password: string }) {
    const res = await new ApiClient(platform.url).raw<{
      mfaRequired: boolean;
      mfaToken: string;
      accessToken?: string;
    }>("POST", "/auth/login", { body: { email: u.email, password: u.password } });
    assert.equal(res.status, 200);
    assert.equal(res.body.mfaRequired, true);
    assert.equal(res.body.accessToken, undefined, "no tokens before the second factor");
    return res.body.mfaToken;
  }

  test("enable answers 10 distinct recovery codes; setup again is 409", async () => {
    const u = await withMfa();
    assert.equal(u.recoveryCodes.length, 10);
    assert.equal(new Set(u.recoveryCodes).size, 10);
    const again = await u.api.raw("POST", "/auth/2fa/setup", { body: {}, token: u.token });
    assert.equal(again.status, 409);
    assert.equal(codeOf(again.body), "MFA_ALREADY_ENABLED");
    const account = await u.api.raw<{ mfaEnabled: boolean; recoveryCodesLeft: number }>(
      "GET",
      "/auth/account",
      { token: u.token },
    );
    assert.deepEqual([account.body.mfaEnabled, account.body.recoveryCodesLeft], [true, 10]);
  });

  test("enable without setup is 409 MFA_NOT_SET_UP", async () => {
    const u = await registered();
    const res = await u.api.raw("POST", "/auth/2fa/enable", { body: { code: "123456" }, token: u.token });
    assert.equal(res.status, 409);
    assert.equal(codeOf(res.body), "MFA_NOT_SET_UP");
  });

  test("login asks for a code; a right code signs in, the same code again does not", async () => {
    const u = await withMfa();
    const api = new ApiClient(platform.url);
    const first = await challenge(u);
    const asAccess = await api.raw("GET", "/users/me", { token: first });
    assert.equal(asAccess.status, 401, "an mfaToken is no access token");
    const wrong = await api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: first, code: "000000" } });
    assert.equal(wrong.status, 401);
    assert.equal(codeOf(wrong.body), "INVALID_MFA_CODE");
    // The step after the one enable took: within the window, and not spent yet.
    const code = totpCode(u.secret, Date.now() + 30_000);
    const ok = await api.raw<{ accessToken: string; user: { id: string } }>("POST", "/auth/2fa/verify", {
      body: { mfaToken: first, code },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.user.id, u.id);
    assert.equal((await api.raw("GET", "/users/me", { token: ok.body.accessToken })).status, 200);
    const spent = await api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: first, code } });
    assert.equal(spent.status, 401);
    assert.equal(codeOf(spent.body), "INVALID_MFA_TOKEN");

    const second = await challenge(u);
    const replay = await api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: second, code } });
    assert.equal(replay.status, 401);
    assert.equal(codeOf(replay.body), "INVALID_MFA_CODE");
  });

  test("a recovery code signs in once", async () => {
    const u = await withMfa();
    const api = new ApiClient(platform.url);
    const recoveryCode = (u.recoveryCodes[3] ?? "").toUpperCase();
    const ok = await api.raw("POST", "/auth/2fa/verify", {
      body: { mfaToken: await challenge(u), recoveryCode },
    });
    assert.equal(ok.status, 200);
    const twice = await api.raw("POST", "/auth/2fa/verify", {
      body: { mfaToken: await challenge(u), recoveryCode },
    });
    assert.equal(twice.status, 401);
    assert.equal(codeOf(twice.body), "INVALID_MFA_CODE");
    const left = await u.api.raw<{ recoveryCodesLeft: number }>("GET", "/auth/account", { token: u.token });
    assert.equal(left.body.recoveryCodesLeft, 9);
  });

  test("a code and a recovery code together, or neither, is 422", async () => {
    const u = await withMfa();
    const api = new ApiClient(platform.url);
    const token = await challenge(u);
    assert.equal((await api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: token } })).status, 422);
    const both = await api.raw("POST", "/auth/2fa/verify", {
      body: { mfaToken: token, code: "123456", recoveryCode: u.recoveryCodes[0] },
    });
    assert.equal(both.status, 422);
    assert.equal(
      (await api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: token, code: "12345a" } })).status,
      422,
    );
  });

  test("a forged mfaToken is 401 INVALID_MFA_TOKEN; a sign-in with one voids the others, and so does a password change", async () => {
    const u = await withMfa();
    const api = new ApiClient(platform.url);
    const forged = await api.raw("POST", "/auth/2fa/verify", {
      body: { mfaToken: "f".repeat(43), code: "123456" },
    });
    assert.equal(forged.status, 401);
    assert.equal(codeOf(forged.body), "INVALID_MFA_TOKEN");
    const [first, second, third] = [await challenge(u), await challenge(u), await challenge(u)];
    const tampered = `${first.slice(0, -4)}AAAA`;
    const bad = await api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: tampered, code: "123456" } });
    assert.equal(codeOf(bad.body), "INVALID_MFA_TOKEN");
    const ok = await api.raw("POST", "/auth/2fa/verify", {
      body: { mfaToken: first, code: totpCode(u.secret, Date.now() + 30_000) },
    });
    assert.equal(ok.status, 200);
    const other = await api.raw("POST", "/auth/2fa/verify", {
      body: { mfaToken: second, recoveryCode: u.recoveryCodes[0] },
    });
    assert.equal(other.status, 401);
    assert.equal(codeOf(other.body), "INVALID_MFA_TOKEN");
    void third;
    const fourth = await challenge(u);
    assert.equal(
      (
        await u.api.raw("POST", "/auth/password", {
          body: { currentPassword: u.password, newPassword: "another-fine-password" },
          token: u.token,
        })
      ).status,
      204,
    );
    const afterChange = await api.raw("POST", "/auth/2fa/verify", {
      body: { mfaToken: fourth, recoveryCode: u.recoveryCodes[1] },
    });
    assert.equal(codeOf(afterChange.body), "INVALID_MFA_TOKEN");
  });

  test("disable needs the password and a code; after it, login answers tokens again", async () => {
    const u = await withMfa();
    const wrongPassword = await u.api.raw("POST", "/auth/2fa/disable", {
      body: { password: "nope-nope-nope", code: totpCode(u.secret, Date.now() + 30_000) },
      token: u.token,
    });
    assert.equal(wrongPassword.status, 403);
    assert.equal(codeOf(wrongPassword.body), "WRONG_PASSWORD");
    const wrongCode = await u.api.raw("POST", "/auth/2fa/disable", {
      body: { password: u.password, code: "000000" },
      token: u.token,
    });
    assert.equal(wrongCode.status, 403);
    assert.equal(codeOf(wrongCode.body), "INVALID_MFA_CODE");
    const done = await u.api.raw("POST", "/auth/2fa/disable", {
      body: { password: u.password, code: u.recoveryCodes[0] },
      token: u.token,
    });
    assert.equal(done.status, 204);
    const off = await u.api.raw("POST", "/auth/2fa/disable", {
      body: { password: u.password, code: u.recoveryCodes[1] },
      token: u.token,
    });
    assert.equal(off.status, 409);
    assert.equal(codeOf(off.body), "MFA_NOT_ENABLED");
    const login = await new ApiClient(platform.url).raw<{ accessToken?: string }>("POST", "/auth/login", {
      body: { email: u.email, password: u.password },
    });
    assert.ok(login.body.accessToken);
  });
});

describe("routes that take a password in a body", () => {
  test("DELETE /users/me refuses fields in the URL", async () => {
    const u = await registered();
    const res = await u.api.raw("DELETE", `/users/me?password=${encodeURIComponent(u.password)}`, {
      token: u.token,
    });
    assert.equal(res.status, 422);
    assert.equal((await u.api.raw("GET", "/users/me", { token: u.token })).status, 200);
  });
});

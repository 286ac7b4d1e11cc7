/**
 * The account flows across nodes, on real NATS, Redis and FerretDB, with mail over SMTP to a real
 * Mailpit: two auth nodes answer in turn (round robin), so a token mailed by one is spent on the
 * other, a TOTP code taken on one is refused on the other, and the per-address mail limit is one
 * for the cluster.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import { totpCode } from "../../services/auth/two-factor.ts";
import { type MailpitHandle, startMailpit } from "../harness/mailpit.ts";
import { type Servers, startServers, TestCluster } from "../support/cluster.ts";
import { newUser, waitReady } from "../support/platform.ts";
import { RawSocket } from "../support/ws.ts";

let servers: Servers;
let cluster: TestCluster;
let mailpit: MailpitHandle;
let gateway: string;
const seen = new Set<string>();

before(async () => {
  [servers, mailpit] = await Promise.all([startServers(), startMailpit()]);
  cluster = await TestCluster.start(servers, {
    SMTP_URL: mailpit.smtpUrl,
    MAIL_FROM: "Social <no-reply@social.test>",
    PUBLIC_URL: "https://social.test",
    RATE_LIMIT_MAIL_ADDRESS: "3/3600",
    RATE_LIMIT_LOGIN_ACCOUNT: "100/900",
  });
  await cluster.add("auth-1", ["auth"]);
  await cluster.add("auth-2", ["auth"]);
  await cluster.add("profile-1", ["profile"]);
  await cluster.add("chat-1", ["chat"]);
  gateway = (await cluster.add("gateway-1", ["gateway"])).url;
  await waitReady(gateway);
});

after(async () => {
  await cluster?.stop();
  await Promise.all([servers?.stop(), mailpit?.stop()]);
});

function tokenIn(text: string, fragment: "verify-email" | "reset-password"): string {
  const m = new RegExp(`https://social\\.test/#${fragment}=([A-Za-z0-9_-]{43})`).exec(text);
  assert.ok(m?.[1], `a ${fragment} link in the mail`);
  return m[1];
}

async function registered() {
  const input = newUser();
  const api = new ApiClient(gateway);
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

describe("over SMTP across two auth nodes", () => {
  test("the verification mail arrives in Mailpit and its link verifies, whichever node answers", async () => {
    const u = await registered();
    const mail = await mailpit.waitForMail(u.email, { subject: /Confirm your email address/, exclude: seen });
    assert.equal(mail.from, "Social <no-reply@social.test>");
    assert.ok(mail.html.includes("https://social.test/#verify-email="), "the HTML part has the link too");
    const token = tokenIn(mail.text, "verify-email");
    const statuses = await Promise.all(
      [1, 2].map(
        async () => (await u.api.raw("POST", "/auth/verify-email", { body: { token }, token: null })).status,
      ),
    );
    assert.deepEqual(statuses.sort(), [204, 400], "spent once, even by two nodes at once");
    const account = await u.api.raw<{ emailVerified: boolean }>("GET", "/auth/account", { token: u.token });
    assert.equal(account.body.emailVerified, true);
  });

  test("a reset mailed by one node is confirmed on the other; the sockets on the gateway close with 4001", async () => {
    const u = await registered();
    const socket = new RawSocket(`${gateway.replace("http", "ws")}/ws`, { token: u.token });
    await socket.opened();
    const api = new ApiClient(gateway);
    assert.equal((await api.raw("POST", "/auth/password-reset", { body: { email: u.email } })).status, 202);
    const mail = await mailpit.waitForMail(u.email, { subject: /Reset your password/, exclude: seen });
    const token = tokenIn(mail.text, "reset-password");
    assert.equal(
      (
        await api.raw("POST", "/auth/password-reset/confirm", {
          body: { token, password: "a-fine-new-password-1" },
        })
      ).status,
      204,
    );
    assert.equal((await socket.closed).code, 4001);
    assert.equal((await api.raw("POST", "/auth/refresh", { body: { refreshToken: u.refresh } })).status, 401);
    assert.equal(
      (await api.raw("POST", "/auth/login", { body: { email: u.email, password: "a-fine-new-password-1" } }))
        .status,
      200,
    );
    await mailpit.waitForMail(u.email, { subject: /Your password was changed/, exclude: seen });
  });

  test("the per-address mail limit is one for the cluster", async () => {
    const api = new ApiClient(gateway);
    const email = `limit-${newUser().username}@example.test`;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await api.raw("POST", "/auth/password-reset", { body: { email } })).status);
    assert.deepEqual(statuses, [202, 202, 202, 429]);
  });

  test("a TOTP code taken through one auth node is refused through the other", async () => {
    const u = await registered();
    const setup = await u.api.raw<{ secret: string }>("POST", "/auth/2fa/setup", {
      body: {},
      token: u.token,
    });
    assert.equal(
      (
        await u.api.raw("POST", "/auth/2fa/enable", {
          body: { code: totpCode(setup.body.secret) },
          token: u.token,
        })
      ).status,
      200,
    );
    const api = new ApiClient(gateway);
    const challenge = async () =>
      (
        await api.raw<{ mfaToken: string }>("POST", "/auth/login", {
          body: { email: u.email, password: u.password },
        })
      ).body.mfaToken;
    const code = totpCode(setup.body.secret, Date.now() + 30_000);
    const [t1, t2] = [await challenge(), await challenge()];
    const answers = await Promise.all([
      api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: t1, code } }),
      api.raw("POST", "/auth/2fa/verify", { body: { mfaToken: t2, code } }),
    ]);
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 401], "one code, one sign-in");
  });
});

/**
 * Accounts in the web client, in Chromium, with mails through a real Mailpit: the verification
 * link, a password reset, two-factor sign-in (codes computed from the secret the page shows) and
 * deleting the account. The gateway's port is picked before the start, so PUBLIC_URL (the base of
 * the mailed links) is the address the browser opens.
 */
import assert from "node:assert/strict";
import { createECDH, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Secret, TOTP } from "otpauth";
import type { Page } from "playwright-core";
import { ApiClient, ApiError, expectSession } from "../../client/rest-client.ts";
import { type MailpitHandle, startMailpit } from "../harness/mailpit.ts";
import { freePort } from "../harness/servers.ts";
import { newUser } from "../support/platform.ts";
import { eventually, type Person, type Rig, signUp, startRig } from "./browser.ts";

/** What the tests use of a page's globals inside page.evaluate (the tests build without the DOM types). */
interface PageWorld {
  PushManager: {
    prototype: {
      subscribe(options?: { userVisibleOnly?: boolean; applicationServerKey?: unknown }): Promise<unknown>;
      getSubscription(): Promise<unknown>;
    };
  };
  navigator: {
    serviceWorker: {
      register(url: string): Promise<unknown>;
      ready: Promise<{ getNotifications(): Promise<{ title: string; body: string; tag: string }[]> }>;
    };
  };
  fakeSub: unknown;
  subscribedWith: unknown;
}

let rig: Rig;
let mailpit: MailpitHandle;
let base: string;
const people: Person[] = [];
const seenMails = new Set<string>();

before(async () => {
  mailpit = await startMailpit();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  try {
    rig = await startRig({ PORT: String(port), PUBLIC_URL: base, SMTP_URL: mailpit.smtpUrl });
  } catch (err) {
    await mailpit.stop();
    throw err;
  }
  assert.equal(rig.platform.url, base);
});

after(async () => {
  for (const p of people) await p.context.close().catch(() => undefined);
  await rig?.stop();
  await mailpit?.stop();
});

async function person(name: string): Promise<Person> {
  const p = await signUp(rig, name);
  p.page.on("dialog", (d) => void d.dismiss());
  people.push(p);
  return p;
}

/** The link of the newest mail to `to` with that subject (not one seen before). */
async function mailedLink(
  to: string,
  subject: RegExp,
  kind: "verify-email" | "reset-password",
): Promise<string> {
  const mail = await mailpit.waitForMail(to, { subject, exclude: seenMails });
  const match = new RegExp(`(https?://[^\\s"<>]+/#${kind}=[A-Za-z0-9_-]{43})`).exec(mail.text);
  assert.ok(match, `the mail holds a ${kind} link: ${mail.text}`);
  return match[1] as string;
}

function totp(secret: string, at = Date.now()): string {
  return new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" }).generate({
    timestamp: at,
  });
}

async function openSettings(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Profile", exact: true }).click();
  await page.getByRole("button", { name: "Account settings" }).click();
  await page.locator("#account-summary", { hasText: "Signed in with" }).waitFor();
}

async function signIn(page: Page, login: string, password: string): Promise<void> {
  const form = page.locator("#login-form");
  await form.getByLabel("Username or email").fill(login);
  await form.getByLabel("Password").fill(password);
  await form.getByRole("button", { name: "Sign in" }).click();
}

describe("accounts in the web client", () => {
  test("/sw.js is the service worker, as JavaScript, never from a cache", async () => {
    const res = await fetch(`${base}/sw.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /javascript/);
    assert.equal(res.headers.get("cache-control"), "no-cache");
    assert.match(await res.text(), /showNotification/);
  });

  test("register, then the mailed verification link clears the banner; the spent link is refused", async () => {
    const vera = await person("Vera");
    const banner = vera.page.locator("#verify-banner");
    await banner.waitFor({ state: "visible" });

    const link = await mailedLink(vera.user.email, /Confirm your email/, "verify-email");
    assert.ok(link.startsWith(`${base}/#verify-email=`), link);
    await vera.page.goto(link);
    await banner.waitFor({ state: "hidden" });
    assert.ok(!vera.page.url().includes("verify-email"), "the token is cleared from the address");
    const account = await new ApiClient(base).login({
      username: vera.user.username,
      password: vera.user.password,
    });
    assert.equal(expectSession(account).user.emailVerified, true);

    // The same link again, signed out in a fresh tab: spent.
    const page = await vera.context.newPage();
    await page.goto(link);
    await page.locator("#auth-notice", { hasText: "expired or was used" }).waitFor();
    await page.close();
  });

  test("forgot password: a neutral answer, the mailed link sets a new password that signs in", async () => {
    const input = newUser("reset");
    await new ApiClient(base).register({ ...input, displayName: "Rita" });
    const context = await rig.browser.newContext();
    const page = await context.newPage();
    people.push({ context, page, user: { ...input, displayName: "Rita" }, sessions: () => 0 });
    await page.goto(base);

    const ask = async (email: string) => {
      await page.getByRole("button", { name: "Forgot password?" }).click();
      const form = page.locator("#forgot-form");
      await form.getByLabel("Email of your account").fill(email);
      await form.getByRole("button", { name: "Email me a link" }).click();
      await page.locator("#forgot-sent", { hasText: "If an account has that address" }).waitFor();
      const text = await page.locator("#forgot-sent").textContent();
      await page.getByRole("button", { name: "Back to sign in" }).click();
      return text;
    };
    // An address no account has gets the same answer.
    const unknown = await ask(`nobody-${Date.now()}@example.test`);
    const known = await ask(input.email);
    assert.equal(unknown, known);

    const link = await mailedLink(input.email, /Reset your password/, "reset-password");
    await page.goto(link);
    const reset = page.locator("#reset-form");
    await reset.waitFor({ state: "visible" });
    assert.ok(!page.url().includes("reset-password"), "the token is cleared from the address");
    // Too short: the server's rule, shown in the form, and the link still works after it.
    await reset.getByLabel("New password").fill("short");
    await reset.getByLabel("The same again").fill("short");
    await reset.getByRole("button", { name: "Set the new password" }).click();
    await reset.locator(".error").waitFor({ state: "visible" });

    const fresh = "a-brand-new-password-42";
    await reset.getByLabel("New password").fill(fresh);
    await reset.getByLabel("The same again").fill(fresh);
    await reset.getByRole("button", { name: "Set the new password" }).click();
    await page.locator("#auth-notice", { hasText: "Your password was changed" }).waitFor();

    await signIn(page, input.username, fresh);
    await page.locator('#connection[data-state="open"]').waitFor();
    await assert.rejects(
      new ApiClient(base).login({ username: input.username, password: input.password }),
      (err) => err instanceof ApiError && err.status === 401,
    );
  });

  let mfa: { person: Person; secret: string; recoveryCodes: string[] } | undefined;

  test("two-factor authentication: set up from the shown key, then sign-in asks for a code", async () => {
    const tess = await person("Tess");
    const page = tess.page;
    await openSettings(page);
    await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
    await page.locator("#mfa-secret", { hasText: /^[A-Z2-7]{32}$/ }).waitFor();
    const secret = (await page.locator("#mfa-secret").textContent())?.trim() ?? "";
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.equal(await page.locator("#mfa-qr svg path").count(), 1, "the QR code is drawn");

    const enable = page.locator("#mfa-enable-form");
    await enable.getByLabel("Code the app shows").fill(totp(secret) === "000000" ? "111111" : "000000");
    await enable.getByRole("button", { name: "Turn on" }).click();
    await enable.locator(".error").waitFor({ state: "visible" });
    await enable.getByLabel("Code the app shows").fill(totp(secret));
    await enable.getByRole("button", { name: "Turn on" }).click();
    await page.locator("#mfa-codes").waitFor({ state: "visible" });
    const recoveryCodes = await page.locator("#recovery-codes li").allTextContents();
    assert.equal(recoveryCodes.length, 10);
    await page.locator("#mfa-state", { hasText: "On." }).waitFor();

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#login-form").waitFor({ state: "visible" });
    await signIn(page, tess.user.email, tess.user.password);
    const second = page.locator("#mfa-form");
    await second.waitFor({ state: "visible" });
    assert.equal(await page.locator("#home-view").isHidden(), true, "the password alone opens nothing");
    // The step after the one used to turn it on: a code is accepted once.
    await second
      .getByLabel("Code from your authenticator app, or a recovery code")
      .fill(totp(secret, Date.now() + 30_000));
    await second.getByRole("button", { name: "Verify" }).click();
    await page.locator('#connection[data-state="open"]').waitFor();
    mfa = { person: tess, secret, recoveryCodes };
  });

  test("deleting the account takes the password and a code; then sign-in fails", async () => {
    assert.ok(mfa, "the account of the two-factor test is deleted here");
    const { person: tess, recoveryCodes } = mfa;
    const page = tess.page;
    await openSettings(page);
    const form = page.locator("#delete-form");
    await form.getByLabel("Password", { exact: true }).fill("not-the-password");
    await form.getByLabel("Code from the app, or a recovery code").fill(recoveryCodes[0] as string);
    await form.getByLabel("Yes, delete my account").check();
    await form.getByRole("button", { name: "Delete my account" }).click();
    await form.locator(".error").waitFor({ state: "visible" });
    assert.equal(await page.locator("#home-view").isVisible(), true, "a wrong password deletes nothing");

    await form.getByLabel("Password", { exact: true }).fill(tess.user.password);
    await form.getByLabel("Code from the app, or a recovery code").fill(recoveryCodes[1] as string);
    await form.getByLabel("Also erase the text of my messages").check();
    await form.getByRole("button", { name: "Delete my account" }).click();
    await page.locator("#auth-notice", { hasText: "Your account was deleted" }).waitFor();

    await signIn(page, tess.user.email, tess.user.password);
    await page.locator("#login-error", { hasText: /./ }).waitFor();
    assert.equal(await page.locator("#home-view").isHidden(), true);
    await assert.rejects(
      new ApiClient(base).login({ email: tess.user.email, password: tess.user.password }),
      (err) => err instanceof ApiError && err.status === 401 && err.code === "INVALID_CREDENTIALS",
    );
  });

  test("push: the settings subscribe with the platform's key and turn it off again", async () => {
    // The browser's push service is out of reach here, so PushManager answers a subscription made
    // in the page (a real P-256 key, an https endpoint); what the page sends goes to the real server.
    const ecdh = createECDH("prime256v1");
    ecdh.generateKeys();
    const keys = {
      p256dh: ecdh.getPublicKey().toString("base64url"),
      auth: randomBytes(16).toString("base64url"),
    };
    const endpoint = `https://push.example.com/send/${randomBytes(8).toString("hex")}`;
    const pia = await person("Pia");
    const page = pia.page;
    await pia.context.grantPermissions(["notifications"], { origin: base });
    await page.evaluate(
      ({ endpoint, keys }) => {
        const state = globalThis as unknown as PageWorld;
        state.fakeSub = null;
        state.PushManager.prototype.subscribe = async (options) => {
          const key = new Uint8Array(options?.applicationServerKey as ArrayBuffer);
          state.subscribedWith = { userVisibleOnly: options?.userVisibleOnly, key: Array.from(key) };
          const sub = {
            endpoint,
            options: { applicationServerKey: key.buffer, userVisibleOnly: true },
            toJSON: () => ({ endpoint, expirationTime: null, keys }),
            unsubscribe: async () => {
              state.fakeSub = null;
              return true;
            },
          };
          state.fakeSub = sub;
          return sub;
        };
        state.PushManager.prototype.getSubscription = async () => state.fakeSub;
      },
      { endpoint, keys },
    );
    await openSettings(page);
    const posted = page.waitForResponse(
      (r) => r.url().endsWith("/push/subscriptions") && r.request().method() === "POST",
    );
    await page.getByRole("button", { name: "Notify me while the app is closed" }).click();
    const res = await posted;
    assert.equal(res.status(), 201);
    assert.deepEqual(JSON.parse(res.request().postData() ?? "null"), { endpoint, keys });
    await page.getByRole("button", { name: "Turn off" }).waitFor();

    const { publicKey } = (await (await fetch(`${base}/push/vapid-public-key`)).json()) as {
      publicKey: string;
    };
    const used = await page.evaluate(() => (globalThis as unknown as PageWorld).subscribedWith);
    assert.deepEqual(used, { userVisibleOnly: true, key: Array.from(Buffer.from(publicKey, "base64url")) });

    const deleted = page.waitForResponse(
      (r) => r.url().endsWith("/push/subscriptions") && r.request().method() === "DELETE",
    );
    await page.getByRole("button", { name: "Turn off" }).click();
    const gone = await deleted;
    assert.equal(gone.status(), 204);
    assert.deepEqual(JSON.parse(gone.request().postData() ?? "null"), { endpoint });
    await page.getByRole("button", { name: "Notify me while the app is closed" }).waitFor();
  });

  test("the service worker shows a pushed message as a notification, one per chat", async () => {
    const context = await rig.browser.newContext();
    const page = await context.newPage();
    people.push({ context, page, user: { ...newUser("sw"), displayName: "" }, sessions: () => 0 });
    await context.grantPermissions(["notifications"], { origin: base });
    await page.goto(base);
    const cdp = await context.newCDPSession(page);
    const registration = new Promise<string>((resolve) => {
      cdp.on("ServiceWorker.workerVersionUpdated", ({ versions }) => {
        const running = versions.find((v) => v.scriptURL === `${base}/sw.js` && v.status === "activated");
        if (running) resolve(running.registrationId);
      });
    });
    await cdp.send("ServiceWorker.enable");
    await page.evaluate(async () => {
      const { serviceWorker } = (globalThis as unknown as PageWorld).navigator;
      await serviceWorker.register("/sw.js");
      await serviceWorker.ready;
    });
    const registrationId = await registration;
    const push = (data: unknown) =>
      cdp.send("ServiceWorker.deliverPushMessage", {
        origin: base,
        registrationId,
        data: JSON.stringify(data),
      });
    const shown = () =>
      page.evaluate(async () => {
        const reg = await (globalThis as unknown as PageWorld).navigator.serviceWorker.ready;
        return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
      });

    // A push reaches a worker still starting up only once it runs: each try delivers it again
    // (the same tag, so a repeat replaces the notification instead of adding one).
    const pushUntilShown = (data: Record<string, unknown>, expected: unknown) =>
      eventually(async () => {
        await push(data);
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(await shown(), expected);
      });
    const first = {
      type: "message",
      chatId: "c1",
      messageId: "m1",
      seq: 1,
      senderId: "u1",
      senderName: "Ann",
    };
    await pushUntilShown({ ...first, preview: "hi" }, [{ title: "Ann", body: "hi", tag: "chat:c1" }]);
    // The next message of that chat replaces the notification; without a preview it says so.
    await pushUntilShown({ ...first, messageId: "m2", seq: 2 }, [
      { title: "Ann", body: "New message", tag: "chat:c1" },
    ]);
  });

  test("settings: password and email changes, checked by the server, and the export download", async () => {
    const omar = await person("Omar");
    const page = omar.page;
    await openSettings(page);

    const pw = page.locator("#password-form");
    await pw.getByLabel("Current password").fill("not-my-password");
    await pw.getByLabel("New password").fill("another-long-password-7");
    await pw.getByRole("button", { name: "Change password" }).click();
    await pw.locator(".error").waitFor({ state: "visible" });
    await pw.getByLabel("Current password").fill(omar.user.password);
    await pw.getByLabel("New password").fill("another-long-password-7");
    await pw.getByRole("button", { name: "Change password" }).click();
    await pw.locator(".saved", { hasText: "Password changed" }).waitFor();
    expectSession(
      await new ApiClient(base).login({ username: omar.user.username, password: "another-long-password-7" }),
    );

    const newEmail = `new-${omar.user.email}`;
    const email = page.locator("#email-form");
    await email.getByLabel("New email").fill(newEmail);
    await email.getByLabel("Password").fill("another-long-password-7");
    await email.getByRole("button", { name: "Change email" }).click();
    await email.locator(".saved", { hasText: newEmail }).waitFor();
    const link = await mailedLink(newEmail, /Confirm your new email/, "verify-email");
    await page.goto(link);
    await page.locator("#account-summary", { hasText: `Signed in with ${newEmail} (verified)` }).waitFor();
    await page.locator("#verify-banner").waitFor({ state: "hidden" });

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download my data" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "export.json");
    const file = await download.path();
    const { readFile } = await import("node:fs/promises");
    const doc = JSON.parse(await readFile(file, "utf8")) as {
      account: { email: string };
      profile: { id: string };
    };
    assert.equal(doc.account.email, newEmail);
    // Once an hour: the next one is refused, and the page says so.
    await page.getByRole("button", { name: "Download my data" }).click();
    await page.locator("#export-error").waitFor({ state: "visible" });
  });

  test("a notification's link, /#chat=ID, opens that chat once signed in", async () => {
    const ann = newUser("ann");
    const bob = newUser("bob");
    const annApi = new ApiClient(base);
    await annApi.register({ ...ann, displayName: "Ann" });
    const bobId = (await new ApiClient(base).register({ ...bob, displayName: "Bob" })).user.id;
    const chat = await annApi.openDirect(bobId);
    const context = await rig.browser.newContext();
    const page = await context.newPage();
    people.push({ context, page, user: { ...bob, displayName: "Bob" }, sessions: () => 0 });
    await page.goto(`${base}/#chat=${chat.id}`);
    assert.ok(!page.url().includes("#chat="), "the fragment is cleared");
    await signIn(page, bob.username, bob.password);
    await page.locator("#chat-title", { hasText: "Ann" }).waitFor();
  });
});

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ApiClient } from "../../client/rest-client.ts";
import type { ChatView } from "../../client/types.ts";
import { newUser } from "../support/platform.ts";
import {
  ARTIFACTS,
  eventually,
  messageTexts,
  type Person,
  type Rig,
  send,
  signUp,
  startDirectChat,
  startRig,
} from "./browser.ts";

let rig: Rig;
const people: Person[] = [];

async function person(name: string, viewport?: { width: number; height: number }): Promise<Person> {
  const p = await signUp(rig, name, { viewport });
  people.push(p);
  return p;
}

before(async () => {
  rig = await startRig();
  await mkdir(ARTIFACTS, { recursive: true });
});
after(async () => {
  await Promise.all(people.map((p) => p.context.close()));
  await rig?.stop();
});

describe("the gateway serves the web client", () => {
  test("GET / is the page, while API routes, the JSON 404 and OpenAPI stay as they were", async () => {
    const page = await fetch(`${rig.platform.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    assert.match(await page.text(), /<main id="main"/);
    assert.equal((await fetch(`${rig.platform.url}/app.js`)).status, 200);
    const me = await fetch(`${rig.platform.url}/users/me`);
    assert.equal(me.status, 401);
    assert.equal(((await me.json()) as { error: { code: string } }).error.code, "UNAUTHORIZED");
    const unknown = await fetch(`${rig.platform.url}/no-such-thing`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, "NOT_FOUND");
    const openApi = (await (await fetch(`${rig.platform.url}/openapi.json`)).json()) as { paths: object };
    assert.ok("/auth/register" in openApi.paths);
    assert.ok(!("/" in openApi.paths));
  });
});

describe("signing in and up", () => {
  test("a taken username and a wrong password show the API's error message", async () => {
    const taken = newUser("taken");
    await new ApiClient(rig.platform.url).register(taken);
    const context = await rig.browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(rig.platform.url);
      const register = page.locator("#register-form");
      await register.getByLabel("Email").fill(`other-${taken.email}`);
      await register.getByLabel("Username").fill(taken.username);
      await register.getByLabel("Password").fill(taken.password);
      await register.getByRole("button", { name: "Create account" }).click();
      await register.getByRole("alert").filter({ hasText: "This username is taken" }).waitFor();

      const login = page.locator("#login-form");
      await login.getByLabel("Username or email").fill(taken.username);
      await login.getByLabel("Password").fill("not-the-password");
      await login.getByLabel("Password").press("Enter");
      await login.getByRole("alert").filter({ hasText: "Invalid credentials" }).waitFor();
      assert.equal(await page.locator("#home-view").isVisible(), false);

      await login.getByLabel("Password").fill(taken.password);
      await login.getByLabel("Password").press("Enter");
      await page.locator('#connection[data-state="open"]').waitFor();
      assert.equal(await login.getByRole("alert").isVisible(), false);
    } finally {
      await context.close();
    }
  });

  test("editing the profile saves it and shows the new name", async () => {
    const erin = await person("Erin");
    const page = erin.page;
    // The form's own profile arrives late, after the first save was sent if typing could begin
    // before it came (or after a second at most): what was typed must not be lost to it.
    let saved: () => void = () => {};
    const firstSave = new Promise<void>((resolve) => {
      saved = resolve;
    });
    await page.route("**/users/me", async (route) => {
      if (route.request().method() === "GET") {
        await Promise.race([firstSave, new Promise((r) => setTimeout(r, 1000))]);
      } else saved();
      await route.fallback();
    });
    await page.getByRole("button", { name: "Profile" }).click();
    const form = page.locator("#profile-form");
    await form.getByLabel("Display name").fill("Erin Example");
    await form.getByLabel("Bio").fill("Writes tests.");
    await form.getByLabel("Avatar URL (https)").fill("http://insecure.example/a.png");
    await form.getByRole("button", { name: "Save profile" }).click();
    await form
      .getByRole("alert")
      .filter({ hasText: /avatarUrl|https/ })
      .waitFor();
    await form.getByLabel("Avatar URL (https)").fill("");
    await form.getByRole("button", { name: "Save profile" }).click();
    await form.getByText("Profile saved.").waitFor();
    await page.getByText("Signed in as Erin Example").waitFor();
    const api = new ApiClient(rig.platform.url);
    await api.login({ username: erin.user.username, password: erin.user.password });
    const me = await api.me();
    assert.equal(me.displayName, "Erin Example");
    assert.equal(me.bio, "Writes tests.");
  });
});

describe("chatting", () => {
  let alice: Person;
  let bob: Person;

  before(async () => {
    alice = await person("Alice");
    bob = await person("Bob");
  });

  test("two users chat live: unread count, typing, presence and messages in the other's page", async () => {
    await startDirectChat(alice, bob);
    await send(alice, "Hello Bob, are you there?");
    const chatItem = bob.page.locator("#chat-list li", { hasText: "Alice" });
    await chatItem.locator(".unread", { hasText: "1" }).waitFor();
    assert.match((await chatItem.textContent()) ?? "", /Hello Bob, are you there\?/);

    await chatItem.getByRole("button").click();
    await bob.page.locator("#messages li", { hasText: "Hello Bob, are you there?" }).waitFor();
    await chatItem.locator(".unread").waitFor({ state: "detached" });

    await bob.page.getByLabel("Message", { exact: true }).pressSequentially("Yes");
    await alice.page.locator("#typing", { hasText: "Bob is typing…" }).waitFor();
    await bob.page.getByLabel("Message", { exact: true }).press("Enter");
    await alice.page.locator("#messages li", { hasText: "Yes" }).waitFor();
    await alice.page.locator("#typing", { hasText: "Bob is typing…" }).waitFor({ state: "hidden" });

    assert.deepEqual(await messageTexts(alice.page), ["Hello Bob, are you there?", "Yes"]);
    assert.deepEqual(await messageTexts(bob.page), ["Hello Bob, are you there?", "Yes"]);
    assert.equal(await alice.page.locator("#messages li .state", { hasText: "Sending" }).count(), 0);
  });

  test("after a network drop a user sees what was missed, and what they sent offline is delivered", async () => {
    const sessionsBefore = bob.sessions();
    await bob.context.setOffline(true);
    await bob.page.locator('#connection[data-state="offline"]').waitFor();
    await alice.page.locator("#chat-presence", { hasText: "Last seen" }).waitFor();

    await send(alice, "Sent while you were away 1");
    await send(alice, "Sent while you were away 2");
    await send(bob, "Written offline");
    // Alice's messages are stored (acknowledged) while Bob cannot get them.
    await eventually(async () =>
      assert.equal(await alice.page.locator("#messages li .state", { hasText: "Sending" }).count(), 0),
    );
    await bob.page.locator("#messages li", { hasText: "Written offline" }).getByText("Sending…").waitFor();
    assert.equal(await bob.page.locator("#messages li", { hasText: "Sent while you were away" }).count(), 0);

    await bob.context.setOffline(false);
    await bob.page.locator('#connection[data-state="open"]').waitFor({ timeout: 30_000 });
    // The page reconnected (a new WebSocket session) rather than keeping the old socket.
    await eventually(async () => assert.ok(bob.sessions() > sessionsBefore));
    await alice.page.locator("#chat-presence", { hasText: "Online" }).waitFor();
    await bob.page.locator("#messages li", { hasText: "Sent while you were away 2" }).waitFor();
    await alice.page.locator("#messages li", { hasText: "Written offline" }).waitFor();
    await bob.page.locator("#messages li", { hasText: "Written offline" }).getByText("Sending…").waitFor({
      state: "detached",
    });

    const expected = [
      "Hello Bob, are you there?",
      "Yes",
      "Sent while you were away 1",
      "Sent while you were away 2",
      "Written offline",
    ];
    await eventually(async () => assert.deepEqual(await messageTexts(bob.page), expected));
    await eventually(async () => assert.deepEqual(await messageTexts(alice.page), expected));
    assert.equal(
      await bob.page.locator("#chat-list .unread").count(),
      0,
      "the open chat has no unread count",
    );

    await bob.page.screenshot({ path: path.join(ARTIFACTS, "chat-view.png"), fullPage: true });
  });

  test("a group started from the search shows up for its members with an unread count", async () => {
    const carol = await person("Carol");
    const page = alice.page;
    await page.getByLabel("Username starts with").fill(bob.user.username);
    await page.getByLabel("Username starts with").press("Enter");
    await page
      .getByRole("checkbox", { name: `Add ${bob.user.displayName} (@${bob.user.username}) to the group` })
      .check();
    await page.getByLabel("Username starts with").fill(carol.user.username);
    await page.getByLabel("Username starts with").press("Enter");
    await page
      .getByRole("checkbox", { name: `Add ${carol.user.displayName} (@${carol.user.username}) to the group` })
      .check();
    await page.getByLabel("Group name").fill("Weekend plans");
    await page.getByRole("button", { name: "Create group" }).click();
    await page.locator("#chat-title", { hasText: "Weekend plans" }).waitFor();
    await send(alice, "Hiking on Saturday?");

    for (const member of [bob, carol]) {
      const item = member.page.locator("#chat-list li", { hasText: "Weekend plans" });
      await item.locator(".unread", { hasText: "1" }).waitFor();
      await item.getByRole("button").click();
      await member.page.locator("#messages li", { hasText: "Hiking on Saturday?" }).waitFor();
      await member.page.locator("#chat-presence", { hasText: "3 members" }).waitFor();
    }
  });

  test("older history loads on scroll-back, in order and without gaps", async () => {
    const api = new ApiClient(rig.platform.url);
    await api.login({ username: alice.user.username, password: alice.user.password });
    const dave = await person("Dave", { width: 390, height: 740 });
    const chat = await api.request<ChatView>("POST", "/chats", {
      type: "direct",
      userId: (await api.userByUsername(dave.user.username)).id,
    });
    for (let i = 1; i <= 45; i++) {
      await api.request("POST", `/chats/${chat.id}/messages`, {
        message: `Old ${i}`,
        clientMsgId: `old-${i}`,
      });
    }
    const page = dave.page;
    const item = page.locator("#chat-list li", { hasText: "Alice" });
    await item.locator(".unread", { hasText: "45" }).waitFor();
    // A phone-sized window shows the list or the chat, with a way back.
    await item.getByRole("button").click();
    await page.locator("#messages li", { hasText: "Old 45" }).waitFor();
    assert.equal(await page.locator("#chat-list").isVisible(), false);
    assert.equal((await messageTexts(page)).length, 30);

    await page.locator("#message-log").evaluate((log) => log.scrollTo(0, 0));
    await page.locator("#messages .text", { hasText: /^Old 1$/ }).waitFor();
    assert.deepEqual(
      await messageTexts(page),
      Array.from({ length: 45 }, (_, i) => `Old ${i + 1}`),
    );
    assert.equal(await page.getByRole("button", { name: "Load older messages" }).isVisible(), false);

    await page.screenshot({ path: path.join(ARTIFACTS, "phone-chat-view.png") });
    await page.getByRole("button", { name: "Back to chats" }).click();
    await item.waitFor();
    assert.equal(await item.locator(".unread").count(), 0);
  });
});

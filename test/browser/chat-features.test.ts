/**
 * The chat features of the web client, through its UI in Chromium: replies (with the jump to the
 * original), reactions, mentions, muting, blocking, pins, the paged chat list, and one's own
 * messages never counting as unread. The API (ApiClient) only sets things up; every check is on
 * what the page shows.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Locator, Page } from "playwright-core";
import { ApiClient, expectSession } from "../../client/rest-client.ts";
import { newUser } from "../support/platform.ts";
import { ARTIFACTS, eventually, type Person, type Rig, send, signUp, startRig } from "./browser.ts";

let rig: Rig;
const people: Person[] = [];
const apis = new Map<Person, ApiClient>();
const ids = new Map<Person, string>();

async function person(name: string): Promise<Person> {
  const p = await signUp(rig, name);
  people.push(p);
  return p;
}

/** The person's own API client (their "other device"), for setup. */
async function api(p: Person): Promise<ApiClient> {
  let client = apis.get(p);
  if (!client) {
    client = new ApiClient(rig.platform.url);
    const res = expectSession(await client.login({ username: p.user.username, password: p.user.password }));
    apis.set(p, client);
    ids.set(p, res.user.id);
  }
  return client;
}

async function idOf(p: Person): Promise<string> {
  await api(p);
  return ids.get(p) as string;
}

/** The chat list entry whose title is `title`. */
function chatItem(page: Page, title: string): Locator {
  return page
    .locator("#chat-list li")
    .filter({ has: page.locator(".chat-name", { hasText: new RegExp(`^${title}( |$)`) }) });
}

async function openChat(p: Person, title: string): Promise<void> {
  await chatItem(p.page, title).getByRole("button").click();
  await p.page.locator("#chat-title", { hasText: title }).waitFor();
}

function message(page: Page, text: string): Locator {
  return page.locator("#messages li", { has: page.locator(".text", { hasText: text }) });
}

/** Whether an element is inside the visible part of the message log. */
function inLogView(el: Locator): Promise<boolean> {
  return el.evaluate((node) => {
    const log = node.closest(".log")?.getBoundingClientRect();
    if (!log) return false;
    const r = node.getBoundingClientRect();
    return r.top >= log.top - 1 && r.bottom <= log.bottom + 1;
  });
}

before(async () => {
  rig = await startRig();
});
after(async () => {
  await Promise.all(people.map((p) => p.context.close()));
  await rig?.stop();
});

describe("chat features in the page", () => {
  let ana: Person;
  let ben: Person;
  let chatId: string;

  before(async () => {
    ana = await person("Ana");
    ben = await person("Ben");
    const chat = await (await api(ana)).openDirect(await idOf(ben));
    chatId = chat.id;
    await (await api(ana)).sendMessage(chatId, "Original question");
    for (let i = 1; i <= 40; i++) await (await api(ana)).sendMessage(chatId, `Filler ${i}`);
  });

  test("a reply quotes its original; clicking the quote loads older history and jumps there", async () => {
    await chatItem(ben.page, "Ana").locator(".unread", { hasText: "41" }).waitFor();
    await openChat(ben, "Ana");
    await message(ben.page, "Filler 40").waitFor();
    assert.equal(await message(ben.page, "Original question").count(), 0);
    await ben.page.locator("#message-log").evaluate((log) => log.scrollTo(0, 0));
    const original = message(ben.page, "Original question");
    await original.waitFor();

    await original.getByRole("button", { name: "Reply to this message" }).click();
    const bar = ben.page.locator("#reply-bar");
    await bar.filter({ hasText: "Replying to Ana: Original question" }).waitFor();
    await bar.getByRole("button", { name: "Cancel reply" }).click();
    await bar.waitFor({ state: "hidden" });
    await original.getByRole("button", { name: "Reply to this message" }).click();
    await bar.waitFor();
    await send(ben, "Here is my answer");
    await bar.waitFor({ state: "hidden" });
    const reply = message(ben.page, "Here is my answer");
    await reply.locator(".reply-ref", { hasText: "Ana: Original question" }).waitFor();
    await reply.getByText("Sending…").waitFor({ state: "detached" });

    // Ana sees the reply live with its quote; the original is far back, not loaded.
    await openChat(ana, "Ben");
    const theirs = message(ana.page, "Here is my answer");
    await theirs.locator(".reply-ref", { hasText: "Original question" }).waitFor();
    assert.equal(await message(ana.page, "Original question").count(), 0);
    await theirs.locator(".reply-ref").click();
    const target = ana.page.locator("#messages li.highlight", { hasText: "Original question" });
    await target.waitFor();
    assert.ok(await inLogView(target), "the original is scrolled into view");
    assert.equal(await target.evaluate((el) => el === el.ownerDocument.activeElement), true);
    await ana.page.screenshot({ path: path.join(ARTIFACTS, "reply-jump.png") });

    // Once the original is deleted, the reply says so.
    const original0 = (await (await api(ana)).history(chatId, { after: 0, limit: 1 })).messages[0];
    assert.ok(original0);
    await (await api(ana)).deleteMessage(chatId, original0.id);
    await openChat(ben, "Ana");
    await message(ben.page, "Here is my answer")
      .locator(".reply-ref", { hasText: "Original message deleted" })
      .waitFor();
  });

  test("reactions: add from the picker, a second user's count, toggling one's own off", async () => {
    await openChat(ana, "Ben");
    await openChat(ben, "Ana");
    await send(ana, "React to this");
    const onBen = message(ben.page, "React to this");
    const onAna = message(ana.page, "React to this");
    await onBen.waitFor();

    // By keyboard: the React button opens the picker with the focus on its first emoji; Escape
    // closes it again; Enter on an emoji reacts.
    const toggle = onBen.getByRole("button", { name: "Add a reaction" });
    await toggle.focus();
    await ben.page.keyboard.press("Enter");
    const thumbs = onBen.getByRole("button", { name: "React with 👍" });
    await eventually(async () =>
      assert.equal(await thumbs.evaluate((el) => el === el.ownerDocument.activeElement), true),
    );
    await ben.page.keyboard.press("Escape");
    await thumbs.waitFor({ state: "hidden" });
    assert.equal(await toggle.getAttribute("aria-expanded"), "false");
    await ben.page.keyboard.press("Enter");
    await thumbs.waitFor();
    await ben.page.keyboard.press("Enter");
    const benChip = onBen.locator(".reaction", { hasText: "👍" });
    const anaChip = onAna.locator(".reaction", { hasText: "👍" });
    await benChip.locator(".count", { hasText: /^1$/ }).waitFor();
    assert.equal(await benChip.getAttribute("aria-pressed"), "true");
    await anaChip.locator(".count", { hasText: /^1$/ }).waitFor();
    assert.equal(await anaChip.getAttribute("aria-pressed"), "false");

    await anaChip.click();
    await anaChip.locator(".count", { hasText: /^2$/ }).waitFor();
    await benChip.locator(".count", { hasText: /^2$/ }).waitFor();
    await eventually(async () => assert.equal(await anaChip.getAttribute("aria-pressed"), "true"));

    await benChip.click();
    await benChip.locator(".count", { hasText: /^1$/ }).waitFor();
    await anaChip.locator(".count", { hasText: /^1$/ }).waitFor();
    assert.equal(await benChip.getAttribute("aria-pressed"), "false");

    await anaChip.click();
    await anaChip.waitFor({ state: "detached" });
    await benChip.waitFor({ state: "detached" });
  });

  test("mentions: highlighted in the text, the mentioned user's list counts them", async () => {
    const cleo = await person("Cleo");
    const owner = await api(ana);
    const group = await owner.openGroup("Mention room", [await idOf(ben), await idOf(cleo)]);
    await owner.sendMessage(group.id, "Welcome to the room");
    await chatItem(ben.page, "Mention room").waitFor();
    await chatItem(cleo.page, "Mention room").locator(".unread", { hasText: "1" }).waitFor();

    await openChat(ben, "Mention room");
    await send(ben, `Hi @${cleo.user.username}, look at this`);
    const item = chatItem(cleo.page, "Mention room");
    await item.locator(".unread", { hasText: "2" }).waitFor();
    await item.getByLabel("1 mention").waitFor();
    assert.equal(await item.locator(".mentions").textContent(), "@1");
    assert.equal(await chatItem(ben.page, "Mention room").locator(".mentions, .unread").count(), 0);

    await openChat(cleo, "Mention room");
    const mentioned = message(cleo.page, "look at this");
    await mentioned.locator(".mention-me", { hasText: `@${cleo.user.username}` }).waitFor();
    assert.match((await mentioned.getAttribute("class")) ?? "", /mentions-me/);
    await item.locator(".mentions").waitFor({ state: "detached" });
    await item.locator(".unread").waitFor({ state: "detached" });

    // Others see the mention marked, but the message is not theirs to be highlighted for.
    await openChat(ana, "Mention room");
    const onAna = message(ana.page, "look at this");
    await onAna.locator(".mention", { hasText: `@${cleo.user.username}` }).waitFor();
    assert.doesNotMatch((await onAna.getAttribute("class")) ?? "", /mentions-me/);
    // The server's own count agrees.
    const cleoApi = await api(cleo);
    const listed = (await cleoApi.listChats()).chats.find((c) => c.id === group.id);
    assert.equal(listed?.mentionCount, 0);
  });

  test("one's own messages, sent from another device, never count as unread", async () => {
    await openChat(ben, "Mention room");
    await (await api(ben)).sendMessage(chatId, "From my phone");
    const item = chatItem(ben.page, "Ana");
    await item.locator(".preview", { hasText: "From my phone" }).waitFor();
    assert.equal(await item.locator(".unread").count(), 0);
    // Ana, who did not read it, counts it.
    await chatItem(ana.page, "Ben").locator(".unread", { hasText: "1" }).waitFor();
  });

  test("muting: the chat list marks a muted chat, unmuting clears it", async () => {
    await openChat(ben, "Ana");
    const item = chatItem(ben.page, "Ana");
    const state = ben.page.locator("#mute-state");
    await ben.page.locator("#mute-menu summary").click();
    await ben.page.getByRole("button", { name: "Mute for 1 hour" }).click();
    await item.locator(".muted-marker").waitFor();
    await state.filter({ hasText: /^Muted until / }).waitFor();

    await ben.page.locator("#mute-menu summary").click();
    await ben.page.getByRole("button", { name: "Mute until I unmute" }).click();
    await state.filter({ hasText: /^Muted$/ }).waitFor();
    await item.locator(".muted-marker").waitFor();
    // The server keeps it: a new sign-in lists the chat as muted for always.
    const listed = (await (await api(ben)).listChats()).chats.find((c) => c.id === chatId);
    assert.equal(listed?.muted, true);
    assert.equal(listed?.mutedUntil, null);

    await ben.page.locator("#mute-menu summary").click();
    await ben.page.getByRole("button", { name: "Unmute", exact: true }).click();
    await item.locator(".muted-marker").waitFor({ state: "detached" });
    await eventually(async () => assert.equal(await state.textContent(), ""));
  });

  test("pins: a pin shows in the other member's pins panel, live, and jumps to the message", async () => {
    await openChat(ana, "Ben");
    await openChat(ben, "Ana");
    await send(ana, "Pin me please");
    const onAna = message(ana.page, "Pin me please");
    await onAna.getByText("Sending…").waitFor({ state: "detached" });
    await onAna.getByRole("button", { name: "Pin this message", exact: true }).click();
    await onAna.getByRole("button", { name: "Unpin this message", exact: true }).waitFor();

    const panel = ben.page.locator("#pins-panel");
    await panel.locator("summary", { hasText: "Pinned messages (1)" }).waitFor();
    await panel.locator("summary").click();
    const pin = panel.getByRole("button", { name: /Pin me please/ });
    await pin.waitFor();
    await ben.page.locator("#message-log").evaluate((log) => log.scrollTo(0, 0));
    await pin.click();
    const target = ben.page.locator("#messages li.highlight", { hasText: "Pin me please" });
    await target.waitFor();
    assert.ok(await inLogView(target));
    await panel.locator("summary").click();
    await ben.page.screenshot({ path: path.join(ARTIFACTS, "chat-features.png") });
    await panel.locator("summary").click();

    // In a group only the owner pins.
    await openChat(ben, "Mention room");
    await message(ben.page, "look at this").waitFor();
    assert.equal(await ben.page.getByRole("button", { name: "Pin this message", exact: true }).count(), 0);
    await openChat(ana, "Mention room");
    await message(ana.page, "look at this")
      .getByRole("button", { name: "Pin this message", exact: true })
      .waitFor();

    // Unpinned, it leaves the other's panel.
    await openChat(ben, "Ana");
    await panel.waitFor();
    await openChat(ana, "Ben");
    await message(ana.page, "Pin me please")
      .getByRole("button", { name: "Unpin this message", exact: true })
      .click();
    await panel.waitFor({ state: "hidden" });
  });
});

describe("blocking from a profile", () => {
  test("the blocked user's direct send fails with the error shown; in a group their messages fold", async () => {
    const finn = await person("Finn");
    const gwen = await person("Gwen");
    const finnApi = await api(finn);
    const direct = await finnApi.openDirect(await idOf(gwen));
    await finnApi.sendMessage(direct.id, "Hello Gwen");
    const group = await (await api(gwen)).openGroup("Block room", [await idOf(finn)]);
    await (await api(gwen)).sendMessage(group.id, "Group start");
    await chatItem(finn.page, "Block room").waitFor();
    await chatItem(gwen.page, "Finn").waitFor();

    // Gwen blocks Finn from his profile.
    await gwen.page.getByLabel("Username starts with").fill(finn.user.username);
    await gwen.page.getByLabel("Username starts with").press("Enter");
    await gwen.page.getByRole("button", { name: `About Finn (@${finn.user.username})` }).click();
    const profile = gwen.page.locator("#person-view");
    await profile.getByRole("heading", { name: "Finn" }).waitFor();
    await profile.getByText(`@${finn.user.username}`).waitFor();
    await profile.getByRole("button", { name: "Block Finn", exact: true }).click();
    await profile.getByRole("button", { name: "Unblock Finn", exact: true }).waitFor();
    await profile.getByRole("status").filter({ hasText: "You blocked Finn" }).waitFor();

    // Finn's direct message is refused, and he is told.
    await openChat(finn, "Gwen");
    await send(finn, "Are you there?");
    const refused = message(finn.page, "Are you there?");
    await refused.locator(".state", { hasText: /^Not sent: A block stands between these users/ }).waitFor();
    await finn.page
      .locator("#chat-error")
      .filter({ hasText: "A block stands between these users" })
      .waitFor();

    // In the group his messages still go out, and Gwen sees them folded.
    await openChat(finn, "Block room");
    await send(finn, "Group message from Finn");
    await message(finn.page, "Group message from Finn").getByText("Sending…").waitFor({ state: "detached" });
    await openChat(gwen, "Block room");
    await gwen.page.locator("#messages li", { hasText: "Group start" }).waitFor();
    const folded = gwen.page.locator("#messages li.folded");
    await folded.filter({ hasText: "Message from a blocked user — show" }).waitFor();
    assert.equal(await gwen.page.getByText("Group message from Finn").count(), 0, "not in the list either");
    await folded.getByRole("button", { name: "Show the message from a blocked user" }).click();
    await message(gwen.page, "Group message from Finn").waitFor();

    // One that comes live is folded too.
    await send(finn, "Second from Finn");
    await folded.filter({ hasText: "Message from a blocked user" }).waitFor();
    await chatItem(gwen.page, "Block room")
      .locator(".preview", { hasText: "Message from a blocked user" })
      .waitFor();
    assert.equal(await gwen.page.getByText("Second from Finn").count(), 0);

    // Unblocked, his messages show again.
    await gwen.page.getByLabel("Username starts with").press("Enter");
    await gwen.page.getByRole("button", { name: `About Finn (@${finn.user.username})` }).click();
    await profile.getByRole("button", { name: "Unblock Finn", exact: true }).click();
    await profile.getByRole("button", { name: "Block Finn", exact: true }).waitFor();
    await openChat(gwen, "Block room");
    await message(gwen.page, "Second from Finn").waitFor();
    assert.equal(await gwen.page.locator("#messages li.folded").count(), 0);
  });
});

describe("the chat list pages", () => {
  test("a user with 60 chats sees the first 50, and the rest after scrolling, without duplicates", async () => {
    const pat = { ...newUser("pat"), displayName: "Pat" };
    const patApi = new ApiClient(rig.platform.url);
    await patApi.register(pat);
    for (let i = 1; i <= 60; i++) await patApi.openGroup(`Room ${String(i).padStart(2, "0")}`);
    // The user signs in at once: chats made moments before the first page are paged like the others.

    const context = await rig.browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    try {
      await page.goto(rig.platform.url);
      const login = page.locator("#login-form");
      await login.getByLabel("Username or email").fill(pat.username);
      await login.getByLabel("Password").fill(pat.password);
      await login.getByLabel("Password").press("Enter");
      await page.locator('#connection[data-state="open"]').waitFor();
      const items = page.locator("#chat-list li");
      await eventually(async () => assert.equal(await items.count(), 50));
      await page.locator(".chat-name", { hasText: "Room 60" }).waitFor();
      assert.equal(await page.locator(".chat-name", { hasText: "Room 01" }).count(), 0);

      await page.locator(".sidebar").evaluate((el) => el.scrollTo(0, el.scrollHeight));
      await page.locator(".chat-name", { hasText: "Room 01" }).waitFor();
      await eventually(async () => assert.equal(await items.count(), 60));
      const names = await page.locator("#chat-list .chat-name").allTextContents();
      assert.equal(new Set(names).size, 60);
      const chatIds = await items.evaluateAll((els) => els.map((el) => el.getAttribute("data-chat-id")));
      assert.equal(new Set(chatIds).size, 60);
      await page.getByRole("button", { name: "Load more chats" }).waitFor({ state: "hidden" });
    } finally {
      await context.close();
    }
  });
});

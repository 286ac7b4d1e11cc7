/**
 * Attachments in the web client, through its UI in Chromium: an image picked with the Attach
 * button shows as a loaded thumbnail for both members and opens the full image; a PDF dropped onto
 * the conversation and sent without text is a download link that downloads the same bytes; a file
 * over the upload limit (UPLOAD_MAX_BYTES is small here) says so and sends nothing.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Locator, Page } from "playwright-core";
import sharp from "sharp";
import { ApiClient, expectSession } from "../../client/rest-client.ts";
import { ARTIFACTS, eventually, type Person, type Rig, signUp, startRig } from "./browser.ts";

const MAX_BYTES = 100_000;

let rig: Rig;
const people: Person[] = [];

async function person(name: string): Promise<Person> {
  const p = await signUp(rig, name);
  people.push(p);
  return p;
}

async function apiOf(p: Person): Promise<{ api: ApiClient; id: string }> {
  const api = new ApiClient(rig.platform.url);
  const res = expectSession(await api.login({ username: p.user.username, password: p.user.password }));
  return { api, id: res.user.id };
}

async function openChat(p: Person, title: string): Promise<void> {
  await p.page
    .locator("#chat-list li")
    .filter({ has: p.page.locator(".chat-name", { hasText: title }) })
    .getByRole("button")
    .click();
  await p.page.locator("#chat-title", { hasText: title }).waitFor();
}

function messageWith(page: Page, text: string): Locator {
  return page.locator("#messages li", { has: page.locator(".text", { hasText: text }) });
}

/** Picks files with the Attach button's file chooser. */
async function pick(page: Page, files: { name: string; mimeType: string; buffer: Buffer }[]): Promise<void> {
  const [chooser] = await Promise.all([
    page.waitForEvent("filechooser"),
    page.locator("#composer").getByRole("button", { name: "Attach files" }).click(),
  ]);
  await chooser.setFiles(files);
}

/** What drop() uses of a page's DataTransfer (the tests build without the DOM types). */
interface DomTransfer {
  items: { add(file: File): void };
}

/** Drops a file onto the conversation, as a drag from the desktop does. */
async function drop(page: Page, file: { name: string; mimeType: string; buffer: Buffer }): Promise<void> {
  const transfer = await page.evaluateHandle(
    ({ name, mimeType, bytes }) => {
      const dt = new (globalThis as unknown as { DataTransfer: new () => DomTransfer }).DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], name, { type: mimeType }));
      return dt;
    },
    {
      name: file.name,
      mimeType: file.mimeType,
      bytes: [...file.buffer],
    },
  );
  await page.dispatchEvent("#message-log", "dragenter", { dataTransfer: transfer });
  await page.locator("#chat-view.dropping").waitFor();
  await page.dispatchEvent("#message-log", "dragover", { dataTransfer: transfer });
  await page.dispatchEvent("#message-log", "drop", { dataTransfer: transfer });
  await page.locator("#chat-view.dropping").waitFor({ state: "detached" });
}

function loaded(img: Locator): Promise<number> {
  return eventually(async () => {
    const width = await img.evaluate((el) => {
      const img = el as unknown as { complete: boolean; naturalWidth: number };
      return img.complete ? img.naturalWidth : 0;
    });
    assert.ok(width > 0, "the image loaded");
    return width;
  });
}

function minimalPdf(padding = 0): Buffer {
  const body = [
    "%PDF-1.4",
    "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj",
    "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj",
    "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj",
    "trailer << /Root 1 0 R >>",
    `%${"x".repeat(padding)}`,
    "%%EOF",
    "",
  ].join("\n");
  return Buffer.from(body, "latin1");
}

/** `seconds` of a quiet 440 Hz tone as an 8 kHz, 8-bit mono WAV. */
function wav(seconds: number): Buffer {
  const rate = 8000;
  const data = Buffer.alloc(rate * seconds);
  for (let i = 0; i < data.length; i++)
    data[i] = 128 + Math.round(20 * Math.sin((2 * Math.PI * 440 * i) / rate));
  const head = Buffer.alloc(44);
  head.write("RIFF", 0, "ascii");
  head.writeUInt32LE(36 + data.length, 4);
  head.write("WAVEfmt ", 8, "ascii");
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(1, 22); // mono
  head.writeUInt32LE(rate, 24);
  head.writeUInt32LE(rate, 28); // bytes per second
  head.writeUInt16LE(1, 32); // block align
  head.writeUInt16LE(8, 34); // bits per sample
  head.write("data", 36, "ascii");
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

before(async () => {
  rig = await startRig({ UPLOAD_MAX_BYTES: String(MAX_BYTES) });
});
after(async () => {
  await Promise.all(people.map((p) => p.context.close()));
  await rig?.stop();
});

describe("attachments in the page", () => {
  let ana: Person;
  let ben: Person;
  let chatId: string;
  let anaApi: ApiClient;

  before(async () => {
    ana = await person("Ana");
    ben = await person("Ben");
    const a = await apiOf(ana);
    const b = await apiOf(ben);
    anaApi = a.api;
    chatId = (await a.api.openDirect(b.id)).id;
    await a.api.sendMessage(chatId, "Hello");
    await openChat(ana, "Ben");
    await openChat(ben, "Ana");
  });

  test("an image picked with Attach shows inline for both members and opens the full image", async () => {
    const png = await sharp({
      create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } },
    })
      .png()
      .toBuffer();
    await pick(ana.page, [{ name: "photo.png", mimeType: "image/png", buffer: png }]);
    const row = ana.page.locator(".uploads li", { hasText: "photo.png" });
    await row.locator(".upload-state", { hasText: "Uploaded" }).waitFor();
    const bar = row.locator("progress");
    assert.equal(await bar.getAttribute("max"), String(png.length));
    assert.equal(await bar.evaluate((el) => (el as unknown as { value: number }).value), png.length);

    const box = ana.page.getByLabel("Message", { exact: true });
    await box.fill("Look at this");
    await box.press("Enter");
    await ana.page.locator(".uploads").waitFor({ state: "hidden" });

    for (const p of [ana, ben]) {
      const msg = messageWith(p.page, "Look at this");
      const img = msg.locator(".attachment-image img[alt='photo.png']");
      await img.waitFor();
      await msg.getByText("Sending…").waitFor({ state: "detached" });
      assert.match((await img.getAttribute("src")) ?? "", /\/files\/[^?]+\?access_token=[^&]+&thumb=320$/);
      assert.equal(await loaded(img), 64, `the thumbnail loaded in ${p.user.displayName}'s view`);
    }
    await ben.page.screenshot({ path: path.join(ARTIFACTS, "attachment-image.png") });

    // A click opens the full image (no thumb) in a tab of its own.
    const link = messageWith(ben.page, "Look at this").locator("a.attachment-image");
    const [tab] = await Promise.all([ben.context.waitForEvent("page"), link.click()]);
    await tab.waitForLoadState();
    assert.doesNotMatch(tab.url(), /thumb=/);
    assert.match(tab.url(), /\/files\/[^?]+\?access_token=/);
    const full = tab.locator("img");
    assert.equal(await loaded(full), 64);
    await tab.close();
  });

  test("a PDF dropped onto the chat and sent without text is a download link with the same bytes", async () => {
    const pdf = minimalPdf(300);
    const count0 = (await anaApi.history(chatId)).messages.length;
    await drop(ana.page, { name: "Quarterly report.pdf", mimeType: "application/pdf", buffer: pdf });
    const row = ana.page.locator(".uploads li", { hasText: "Quarterly report.pdf" });
    await row.locator(".upload-state", { hasText: "Uploaded" }).waitFor();
    // No text: the Send button sends the file alone.
    await ana.page.locator("#composer").getByRole("button", { name: "Send" }).click();
    await ana.page.locator(".uploads").waitFor({ state: "hidden" });

    const label = `Download Quarterly report.pdf (${pdf.length} bytes)`;
    for (const p of [ana, ben]) await p.page.getByRole("link", { name: label }).waitFor();
    const stored = await eventually(async () => {
      const messages = (await anaApi.history(chatId)).messages;
      assert.equal(messages.length, count0 + 1);
      const last = messages.at(-1);
      assert.equal(last?.message, "");
      assert.equal(last?.attachments[0]?.name, "Quarterly report.pdf");
      return messages;
    });
    assert.equal(stored.at(-1)?.attachments[0]?.contentType, "application/pdf");

    const link = ben.page.getByRole("link", { name: label });
    assert.equal(await link.getAttribute("download"), "Quarterly report.pdf");
    const [download] = await Promise.all([ben.page.waitForEvent("download"), link.click()]);
    assert.equal(download.suggestedFilename(), "Quarterly report.pdf");
    const file = await download.path();
    assert.deepEqual(await readFile(file), pdf, "the download has the uploaded bytes");

    const res = await ben.context.request.get((await link.getAttribute("href")) ?? "");
    assert.equal(res.status(), 200);
    assert.match(res.headers()["content-disposition"] ?? "", /^attachment;/);
    assert.equal(res.headers()["content-type"], "application/pdf");
    assert.deepEqual(await res.body(), pdf);
  });

  test("a file over the limit, or of a refused type, says so clearly and nothing is sent", async () => {
    const big = minimalPdf(MAX_BYTES + 50_000);
    const count0 = (await anaApi.history(chatId)).messages.length;
    const shown = await ana.page.locator("#messages li").count();
    await pick(ana.page, [{ name: "huge.pdf", mimeType: "application/pdf", buffer: big }]);
    const text = '"huge.pdf" is larger than the 98 KB limit.';
    const row = ana.page.locator(".uploads li.failed", { hasText: "huge.pdf" });
    await row.locator(".upload-state", { hasText: text }).waitFor();
    await ana.page.locator("#chat-error", { hasText: text }).waitFor();
    await ana.page.screenshot({ path: path.join(ARTIFACTS, "attachment-too-large.png") });

    // Enter and the Send button send nothing: there is no text and no file that made it.
    await ana.page.getByLabel("Message", { exact: true }).press("Enter");
    await ana.page.locator("#composer").getByRole("button", { name: "Send" }).click();
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(await ana.page.locator("#messages li").count(), shown);
    assert.equal((await anaApi.history(chatId)).messages.length, count0);
    // Removing the failed file clears the tray.
    await row.getByRole("button", { name: "Remove huge.pdf" }).click();
    await ana.page.locator(".uploads").waitFor({ state: "hidden" });

    // A type the server refuses (HTML, found from the bytes whatever the name says) says so too.
    const html = Buffer.from("<!doctype html><script>alert(1)</script>");
    await pick(ana.page, [{ name: "notes.txt", mimeType: "text/plain", buffer: html }]);
    const refused = '"notes.txt" cannot be sent: files of type text/html are not allowed.';
    await ana.page.locator(".uploads li.failed .upload-state", { hasText: refused }).waitFor();
    await ana.page.locator("#chat-error", { hasText: refused }).waitFor();
    await ana.page.getByLabel("Message", { exact: true }).press("Enter");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await anaApi.history(chatId)).messages.length, count0);
    await ana.page.locator(".uploads li").getByRole("button", { name: "Remove notes.txt" }).click();
  });

  test("an audio file plays in an <audio> player that seeks through Range requests", async () => {
    const sound = wav(2);
    const ranges: string[] = [];
    ben.page.on("response", (res) => {
      if (/\/files\//.test(res.url()) && res.status() === 206)
        ranges.push(res.headers()["content-range"] ?? "");
    });
    await pick(ana.page, [{ name: "tone.wav", mimeType: "audio/wav", buffer: sound }]);
    await ana.page
      .locator(".uploads li", { hasText: "tone.wav" })
      .locator(".upload-state", { hasText: "Uploaded" })
      .waitFor();
    const box = ana.page.getByLabel("Message", { exact: true });
    await box.fill("Listen");
    await box.press("Enter");

    const player = messageWith(ben.page, "Listen").locator("audio[controls]");
    await player.waitFor();
    const duration = await eventually(async () => {
      const d = await player.evaluate((el) => (el as unknown as { duration: number }).duration);
      assert.ok(d > 1.9 && d < 2.1, `duration ${d}`);
      return d;
    });
    assert.ok(duration > 0);
    const position = await player.evaluate(
      (el) =>
        new Promise<number>((resolve) => {
          const media = el as unknown as {
            currentTime: number;
            addEventListener(type: string, f: () => void, o: { once: boolean }): void;
          };
          media.addEventListener("seeked", () => resolve(media.currentTime), { once: true });
          media.currentTime = 1.5;
        }),
    );
    assert.ok(Math.abs(position - 1.5) < 0.05, `seeked to ${position}`);
    assert.ok(ranges.length > 0, "the player asked for byte ranges");
    for (const range of ranges) assert.match(range, new RegExp(`^bytes \\d+-\\d+/${sound.length}$`));
    await messageWith(ben.page, "Listen").getByRole("link", { name: "tone.wav" }).waitFor();
  });

  test("Send while a file is still uploading sends the message once it is uploaded", async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await ana.page.route("**/uploads?**", async (route) => {
      await held;
      await route.continue();
    });
    try {
      await pick(ana.page, [
        { name: "later.txt", mimeType: "text/plain", buffer: Buffer.from("plain text\n") },
      ]);
      const row = ana.page.locator(".uploads li", { hasText: "later.txt" });
      await row.locator(".upload-state", { hasText: "Uploading" }).waitFor();
      const box = ana.page.getByLabel("Message", { exact: true });
      await box.fill("With a file that takes its time");
      await box.press("Enter");
      await ana.page.locator("#chat-announce", { hasText: "sent once the files are uploaded" }).waitFor();
      assert.equal(await messageWith(ana.page, "With a file that takes its time").count(), 0);
      release();
      for (const p of [ana, ben]) {
        const msg = messageWith(p.page, "With a file that takes its time");
        await msg.getByRole("link", { name: /^Download later\.txt/ }).waitFor();
      }
      await ana.page.locator(".uploads").waitFor({ state: "hidden" });
    } finally {
      release();
      await ana.page.unroute("**/uploads?**");
    }
  });
});

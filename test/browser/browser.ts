/**
 * What the browser tests share: the web client built, the platform started embedded on a free
 * port, and Debian's Chromium (from scripts/install-test-servers.sh) driven by playwright-core.
 * Missing Chromium fails the tests, it never skips them.
 */
import { access } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { buildWebClient } from "../../web/build.ts";
import { newUser, startEmbedded } from "../support/platform.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const ARTIFACTS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../test-results/browser",
);

export type Platform = Awaited<ReturnType<typeof startEmbedded>>;

export interface Rig {
  platform: Platform;
  browser: Browser;
  stop(): Promise<void>;
}

/** Chromium and an embedded platform; `env` adds settings of the platform (lib/config.ts). */
export async function startRig(env: Record<string, string> = {}): Promise<Rig> {
  await access(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-test-servers.sh (apt chromium)`);
  });
  if (!(await buildWebClient())) throw new Error("esbuild is missing: run npm install");
  // A socket whose network is gone is noticed within seconds, so presence turns offline in the test.
  const platform = await startEmbedded({ WS_HEARTBEAT_MS: "2000", ...env });
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--disable-gpu"] });
  } catch (err) {
    await platform.stop();
    throw err;
  }
  return {
    platform,
    browser,
    stop: async () => {
      await browser.close();
      await platform.stop();
    },
  };
}

export interface Person {
  context: BrowserContext;
  page: Page;
  user: ReturnType<typeof newUser> & { displayName: string };
  /** How many WebSocket sessions the page opened (each `ready` frame it received). */
  sessions(): number;
}

/** A browser context of its own (cookies, storage, network) with the page open and signed up through the form. */
export async function signUp(
  rig: Rig,
  name: string,
  options: { viewport?: { width: number; height: number } } = {},
): Promise<Person> {
  const context = await rig.browser.newContext({
    viewport: options.viewport ?? { width: 1100, height: 800 },
  });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[${name}'s page]`, err));
  let sessions = 0;
  page.on("websocket", (ws) =>
    ws.on("framereceived", (frame) => {
      if (String(frame.payload).includes('"type":"ready"')) sessions++;
    }),
  );
  const user = { ...newUser(name.toLowerCase()), displayName: name };
  await page.goto(rig.platform.url);
  const form = page.locator("#register-form");
  await form.getByLabel("Email").fill(user.email);
  await form.getByLabel("Username").fill(user.username);
  await form.getByLabel("Display name (optional)").fill(user.displayName);
  await form.getByLabel("Password").fill(user.password);
  await form.getByRole("button", { name: "Create account" }).click();
  await page.locator('#connection[data-state="open"]').waitFor();
  return { context, page, user, sessions: () => sessions };
}

/** Finds a user by username and opens the direct chat with them. */
export async function startDirectChat(from: Person, to: Person): Promise<void> {
  const page = from.page;
  await page.getByLabel("Username starts with").fill(to.user.username);
  await page.getByLabel("Username starts with").press("Enter");
  await page.getByRole("button", { name: `Message ${to.user.displayName} (@${to.user.username})` }).click();
  await page.locator("#chat-title", { hasText: to.user.displayName }).waitFor();
}

/** Types a message in the open chat and sends it with Enter, as a keyboard user would. */
export async function send(person: Person, text: string): Promise<void> {
  const box = person.page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** The texts of the messages shown in the open chat, in order. */
export function messageTexts(page: Page): Promise<string[]> {
  return page.locator("#messages li .text").allTextContents();
}

/** Resolves once `check` passes; rejects with its last failure after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

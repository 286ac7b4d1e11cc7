/**
 * The service worker (built to /sw.js): shows a notification for each push the platform sends
 * (`{type: "message", chatId, senderName, preview?}`) and, on a click, focuses an open tab of the
 * app and asks it for the chat, or opens the app. The push is only a hint: the page reads the
 * chat's history itself. Typed by hand: the page's TypeScript build has the DOM types, not a
 * worker's.
 */

interface PushMessage {
  type: "message";
  chatId: string;
  senderName: string;
  preview?: string;
}

interface WindowClientLike {
  url: string;
  focus(): Promise<unknown>;
  postMessage(message: unknown): void;
}

interface WorkerScope {
  registration: {
    showNotification(
      title: string,
      options: { body?: string; tag?: string; data?: unknown; icon?: string },
    ): Promise<void>;
  };
  clients: {
    matchAll(options: { type: "window"; includeUncontrolled: boolean }): Promise<WindowClientLike[]>;
    openWindow(url: string): Promise<unknown>;
    claim(): Promise<void>;
  };
  location: Location;
  skipWaiting(): Promise<void>;
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(
    type: "push",
    listener: (event: ExtendableEvent & { data: { json(): unknown } | null }) => void,
  ): void;
  addEventListener(
    type: "notificationclick",
    listener: (event: ExtendableEvent & { notification: { data: unknown; close(): void } }) => void,
  ): void;
}

interface ExtendableEvent {
  waitUntil(promise: Promise<unknown>): void;
}

const sw = self as unknown as WorkerScope;

sw.addEventListener("install", (event) => event.waitUntil(sw.skipWaiting()));
sw.addEventListener("activate", (event) => event.waitUntil(sw.clients.claim()));

/** What a push payload says, or undefined for anything that is not a message push. */
function readPush(data: unknown): PushMessage | undefined {
  const d = data as Partial<PushMessage> | null;
  if (d?.type !== "message" || typeof d.chatId !== "string") return undefined;
  return {
    type: "message",
    chatId: d.chatId,
    senderName: typeof d.senderName === "string" && d.senderName ? d.senderName : "Someone",
    ...(typeof d.preview === "string" ? { preview: d.preview } : {}),
  };
}

sw.addEventListener("push", (event) => {
  let data: unknown;
  try {
    data = event.data?.json();
  } catch {
    data = undefined;
  }
  const push = readPush(data);
  // userVisibleOnly: every push shows something, even one this worker does not understand.
  const title = push ? push.senderName : "Social";
  const body = push ? (push.preview ?? "New message") : "You have something new.";
  event.waitUntil(
    sw.registration.showNotification(title, {
      body,
      // One notification per chat: a burst of messages replaces it instead of piling up.
      ...(push ? { tag: `chat:${push.chatId}`, data: { chatId: push.chatId } } : {}),
      icon: "/favicon.ico",
    }),
  );
});

sw.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const chatId = (event.notification.data as { chatId?: string } | null)?.chatId;
  event.waitUntil(
    (async () => {
      const scope = new URL("/", sw.location.href).href;
      const tabs = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
      const tab = tabs.find((c) => c.url.startsWith(scope));
      if (tab) {
        await tab.focus();
        if (chatId) tab.postMessage({ type: "open-chat", chatId });
        return;
      }
      // A new tab signs in first; the fragment then names the chat to show.
      await sw.clients.openWindow(chatId ? `${scope}#chat=${encodeURIComponent(chatId)}` : scope);
    })(),
  );
});

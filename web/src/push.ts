/**
 * Web Push in the page: the service worker (/sw.js, built from sw.ts) and the browser's push
 * subscription, registered with the platform so a message reaches the user while the app is closed.
 */
import type { ApiClient } from "../../client/rest-client.ts";
import type { PushSubscriptionInput } from "../../client/types.ts";

export const SERVICE_WORKER = "/sw.js";

/** Whether this browser can take pushes at all (a secure context with service workers and the Push API). */
export function pushSupported(): boolean {
  return (
    window.isSecureContext &&
    "serviceWorker" in navigator &&
    "PushManager" in window &&
    "Notification" in window
  );
}

async function registration(): Promise<ServiceWorkerRegistration> {
  await navigator.serviceWorker.register(SERVICE_WORKER);
  return navigator.serviceWorker.ready;
}

/** The page's current push subscription, if it has one. */
export async function currentSubscription(): Promise<PushSubscription | null> {
  if (!pushSupported()) return null;
  const reg = await navigator.serviceWorker.getRegistration(SERVICE_WORKER);
  return (await reg?.pushManager.getSubscription()) ?? null;
}

/** Asks for permission, subscribes with the platform's VAPID key and registers the subscription. */
export async function enablePush(api: ApiClient): Promise<void> {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error("Notifications are blocked for this site: allow them in the browser's settings first.");
  }
  const reg = await registration();
  const key = await api.pushPublicKey();
  let sub = await reg.pushManager.getSubscription();
  // A subscription made with another key (the platform's keys were replaced) cannot be used.
  if (sub && !sameKey(sub.options.applicationServerKey, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: fromBase64Url(key),
  });
  const json = sub.toJSON();
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth)
    throw new Error("The browser gave no usable subscription.");
  const input: PushSubscriptionInput = {
    endpoint: json.endpoint,
    keys: { p256dh: json.keys.p256dh, auth: json.keys.auth },
  };
  await api.subscribePush(input);
}

/** Removes the subscription from the platform and the browser. */
export async function disablePush(api: ApiClient): Promise<void> {
  const sub = await currentSubscription();
  if (!sub) return;
  await api.unsubscribePush(sub.endpoint);
  await sub.unsubscribe();
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameKey(given: ArrayBuffer | null, key: string): boolean {
  if (!given) return false;
  const a = new Uint8Array(given);
  const b = fromBase64Url(key);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Which new messages become Web Pushes, to whom, carrying what. After a message is stored and
 * delivered, the members it concerns (every other member of a direct chat; in a group, the members
 * it mentions) who have no WebSocket open anywhere get one push per subscription, unless they
 * muted the chat or a block stands between them and the sender. Whatever fails here is logged and
 * never reaches the send: the push is a hint, the history is the record.
 *
 * The work for one message is a fixed number of queries however many recipients it has: their
 * receipts (mutes) by id in one lookup, the sender's blocks from the block list's cache, the
 * sender's name once, all of their subscriptions in one find.
 */
import type { MessageView } from "../../lib/contracts.ts";
import { LocalCache } from "../../lib/local-cache.ts";
import type { PushResult } from "../../lib/metrics.ts";
import { PushSender, pushTopic } from "../../lib/push/push-sender.ts";
import { loadVapidKeys } from "../../lib/push/vapid-keys.ts";
import type { Store } from "../../lib/store/types.ts";
import { type PushSubscriptionRecord, PushSubscriptionsRepository } from "./push-subscriptions.repo.ts";
import { muteOf, type Receipt, receiptIdOf } from "./receipts.repo.ts";

/** Code points of the text a push carries. */
export const PREVIEW_LENGTH = 100;
/** How long a sender's display name is reused; a profile change drops it sooner (`forgetNames`). */
const NAME_TTL_MS = 60_000;
const NAME_CACHE_MAX = 10_000;

export interface PushPayload {
  type: "message";
  chatId: string;
  messageId: string;
  seq: number;
  senderId: string;
  senderName: string;
  preview?: string;
}

export interface PushNotifierDeps {
  /** Whether the user has a WebSocket open on any gateway (the presence map). */
  isOnline(userId: string): boolean;
  /** Of the given users, those a block stands between with the sender (either way). */
  hiddenFrom(senderId: string, userIds: string[]): Promise<Set<string>>;
  /** The users' receipts of the chat, in one query; missing ones are left out. */
  receiptsOf(chatId: string, userIds: string[]): Promise<Receipt[]>;
  /** Every subscription of the users, in one query. */
  subscriptionsOf(userIds: string[]): Promise<PushSubscriptionRecord[]>;
  /** The sender's display name. */
  senderName(userId: string): Promise<string>;
  push(target: PushSubscriptionRecord, payload: string, topic: string): void;
  /** Whether pushes carry the start of the text (PUSH_PREVIEW). */
  preview: boolean;
  onError(err: unknown): void;
}

/** The first PREVIEW_LENGTH code points of the text (a surrogate pair is never cut in half). */
export function previewOf(text: string): string {
  let out = "";
  let n = 0;
  for (const ch of text) {
    if (n++ === PREVIEW_LENGTH) break;
    out += ch;
  }
  return out;
}

/** Who of the chat's members a new message is pushed to, before presence, mutes and blocks. */
export function pushAudience(chat: { type: "direct" | "group"; members: string[] }, message: MessageView) {
  const others = chat.members.filter((m) => m !== message.senderId);
  if (chat.type === "direct") return others;
  const mentioned = new Set(message.mentions);
  return others.filter((m) => mentioned.has(m));
}

export class PushNotifier {
  private readonly d: PushNotifierDeps;
  private readonly pending = new Set<Promise<void>>();

  constructor(deps: PushNotifierDeps) {
    this.d = deps;
  }

  /** Starts the pushes of a new message and returns at once. */
  messageStored(chat: { type: "direct" | "group"; members: string[] }, message: MessageView): void {
    const offline = pushAudience(chat, message).filter((m) => !this.d.isOnline(m));
    if (offline.length === 0) return;
    const work = this.notify(offline, message).catch((err: unknown) => this.d.onError(err));
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** Resolves once the pushes of every message so far are queued (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private async notify(offline: string[], message: MessageView): Promise<void> {
    const [hidden, receipts, senderName] = await Promise.all([
      this.d.hiddenFrom(message.senderId, offline),
      this.d.receiptsOf(message.chatId, offline),
      this.d.senderName(message.senderId),
    ]);
    const muted = new Set(receipts.filter((r) => muteOf(r).muted).map((r) => r.userId));
    const recipients = offline.filter((m) => !hidden.has(m) && !muted.has(m));
    if (recipients.length === 0) return;
    const subscriptions = await this.d.subscriptionsOf(recipients);
    if (subscriptions.length === 0) return;
    const payload: PushPayload = {
      type: "message",
      chatId: message.chatId,
      messageId: message.id,
      seq: message.seq,
      senderId: message.senderId,
      senderName,
      ...(this.d.preview && message.message !== "" ? { preview: previewOf(message.message) } : {}),
    };
    const body = JSON.stringify(payload);
    const wanted = new Set(recipients);
    for (const sub of subscriptions) {
      // A subscription that moved to another user between the queries is not theirs to get.
      if (wanted.has(sub.userId)) this.d.push(sub, body, pushTopic(sub.userId, message.chatId));
    }
  }
}

/** What the chat service holds of Web Push: the key, the subscriptions, the notifier, the sender. */
export interface PushNotifications {
  publicKey: string;
  subscriptions: PushSubscriptionsRepository;
  notifier: PushNotifier;
  /** Drops the cached display names of these users (their profiles changed). */
  forgetNames(userIds: string[]): void;
  /** Waits for the pushes under way (at most `timeoutMs`), then drops the rest. */
  close(timeoutMs?: number): Promise<void>;
}

/** Loads (or makes) the VAPID keys, prepares the subscriptions and wires the sender. */
export async function openPushNotifications(options: {
  store: Store;
  config: { preview: boolean; subject: string; allowInsecure: boolean };
  logger: { warn(...args: unknown[]): void };
  metrics?: { pushed(result: PushResult): void } | undefined;
  isOnline(userId: string): boolean;
  hiddenFrom(senderId: string, userIds: string[]): Promise<Set<string>>;
  senderName(userId: string): Promise<string>;
}): Promise<PushNotifications> {
  const { store, logger } = options;
  const subscriptions = new PushSubscriptionsRepository(store.collection("push_subscriptions"));
  const receipts = store.collection<Receipt>("receipts");
  const [keys] = await Promise.all([loadVapidKeys(store), subscriptions.init()]);
  const names = new LocalCache<{ name: string }>({ ttlMs: NAME_TTL_MS, max: NAME_CACHE_MAX });
  const sender = new PushSender<PushSubscriptionRecord>({
    keys,
    allowInternal: options.config.allowInsecure,
    subject: options.config.subject,
    logger,
    counted: (result) => options.metrics?.pushed(result),
    onGone: (target) => {
      subscriptions
        .removeGone(target.endpoint)
        .catch((err: Error) => logger.warn("Removing a push subscription that is gone failed", err.message));
    },
  });
  const notifier = new PushNotifier({
    isOnline: options.isOnline,
    hiddenFrom: options.hiddenFrom,
    receiptsOf: async (chatId, userIds) =>
      (await receipts.findByIds(userIds.map((u) => receiptIdOf(chatId, u)))).filter(
        (r): r is Receipt => r !== null,
      ),
    subscriptionsOf: (userIds) => subscriptions.forUsers(userIds),
    senderName: async (userId) => {
      const cached = names.get(userId);
      if (cached) return cached.name;
      const mark = names.mark();
      const name = await options.senderName(userId);
      names.set(userId, { name }, mark);
      return name;
    },
    push: (target, payload, topic) => sender.send(target, payload, topic),
    preview: options.config.preview,
    onError: (err) => logger.warn("Preparing the pushes of a message failed", (err as Error).message),
  });
  return {
    publicKey: keys.publicKey,
    subscriptions,
    notifier,
    forgetNames: (userIds) => names.drop(userIds),
    close: async (timeoutMs = 5_000) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([notifier.idle().then(() => sender.idle()), deadline]);
      clearTimeout(timer);
      sender.close();
    },
  };
}

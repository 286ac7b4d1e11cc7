/**
 * The chat service: chats, members, messages (gap-free seq per chat), receipts, and delivery of
 * every event to the gateways that hold the recipients' WebSockets.
 */
import { type Context, Service, type ServiceBroker } from "moleculer";
import {
  type ActionMap,
  broadcast,
  type CallMeta,
  call,
  type EventMap,
  type MessageView,
  PARAMS,
  type PresenceStamp,
  type PresenceView,
  type ResumeEntry,
  type ServerFrame,
} from "../../lib/contracts.ts";
import { ForbiddenError, UnauthorizedError, ValidationFailedError } from "../../lib/errors.ts";
import type { BlobStore } from "../../lib/files/blob-store.ts";
import { openBlobStore } from "../../lib/files/index.ts";
import { type PlatformMetrics, platformMetrics } from "../../lib/metrics.ts";
import { platformConfig } from "../../lib/platform.ts";
import { checkSubscription } from "../../lib/push/endpoint-rules.ts";
import { RateLimit } from "../../lib/rate-limiter.ts";
import { createRedis, type RedisClient } from "../../lib/redis.ts";
import { openStore } from "../../lib/store/index.ts";
import type { Store } from "../../lib/store/types.ts";
import { AccountData } from "./account-data.ts";
import { BlocksRepository } from "./blocks.repo.ts";
import { ChatLogic } from "./chat.logic.ts";
import { ChatsRepository, pairKeyOf } from "./chats.repo.ts";
import { DeliveryOutbox } from "./delivery-outbox.ts";
import { LastMessageWriter } from "./last-message-writer.ts";
import { MessagesRepository } from "./messages.repo.ts";
import { OwnReadMarks } from "./own-read-marks.ts";
import { PinsRepository } from "./pins.repo.ts";
import { PresenceAnnouncer } from "./presence-announcer.ts";
import { PresenceMap } from "./presence-map.ts";
import { openPushNotifications, type PushNotifications } from "./push-notifier.ts";
import { ReactionsRepository } from "./reactions.repo.ts";
import { ReceiptsRepository } from "./receipts.repo.ts";
import { UploadsRepository, UploadUsageRepository } from "./uploads.repo.ts";
import { Uploads } from "./uploads.ts";

type Ctx<P = Record<string, never>> = Context<P, CallMeta>;

const RESYNC_INTERVAL_MS = 15_000;
const DEFAULT_PAGE = 50;
const SWEEP_INTERVAL_MAX_MS = 600_000;

export default class ChatService extends Service {
  private store!: Store;
  /** Where the per-user limits count across the cluster (REDIS_URL), when set. */
  private redis: RedisClient | undefined;
  private logic!: ChatLogic;
  private blobs: BlobStore | undefined;
  private uploads!: Uploads;
  private accountData!: AccountData;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly presence = new PresenceMap();
  private readonly announcer = new PresenceAnnouncer({
    contactsOf: (userIds) => this.logic.contactsOfEach(userIds),
    presenceOf: (userId) => this.presenceOf(userId),
    deliver: (userIds, frame) => this.deliver(userIds, frame),
    isAnnouncer: () => this.isAnnouncer(),
    onError: (err) => this.logger.warn("Presence announcement failed", (err as Error).message),
  });
  private readonly outbox = new DeliveryOutbox({
    // Not retried: a call that timed out reached a gateway too busy to answer, and a retry could
    // deliver its frames twice; they are recovered by gap filling.
    send: (nodeID, deliveries) =>
      call(this.broker, "gateway.deliverMany", { deliveries }, { nodeID, retries: 0 }),
    failed: (nodeID, frames, err) => {
      this.metrics?.chatDeliveryFailures.increment(undefined, frames);
      this.logger.warn(
        `Delivery of ${frames} frames to ${nodeID} failed; clients recover them by resume`,
        err.message,
      );
    },
  });
  private resyncTimer: NodeJS.Timeout | undefined;
  private lastMessages: LastMessageWriter | undefined;
  private ownReads: OwnReadMarks | undefined;
  private metrics: PlatformMetrics | undefined;
  private push!: PushNotifications;

  constructor(broker: ServiceBroker) {
    super(broker);
    const noRetry = { enabled: false };
    // Sends a node works on at once, and as many waiting; beyond that a send is refused at once
    // (QUEUE_FULL, SERVICE_UNAVAILABLE to the client, which retries with backoff). Without a bound,
    // an overload queues sends past their request timeout, and their retries add to the load.
    const { sendConcurrency } = platformConfig(broker).chat;
    const sendBulkhead = { enabled: true, concurrency: sendConcurrency, maxQueueSize: sendConcurrency };
    this.parseServiceSchema({
      name: "chat",
      settings: {},
      actions: {
        open: {
          params: PARAMS["chat.open"],
          handler: async (
            ctx: Ctx<{ type: "direct" | "group"; userId?: string; name?: string; memberIds?: string[] }>,
          ) => {
            const me = this.verifiedUserIdOf(ctx);
            const p = ctx.params;
            if (p.type === "direct") {
              if (!p.userId || p.name !== undefined || p.memberIds !== undefined) {
                throw invalidShape("A direct chat takes userId only");
              }
              const { chat, created } = await this.logic.openDirect(me, p.userId);
              ctx.meta.$statusCode = created ? 201 : 200;
              return chat;
            }
            if (!p.name || p.userId !== undefined)
              throw invalidShape("A group chat takes name and memberIds");
            ctx.meta.$statusCode = 201;
            return this.logic.createGroup(me, p.name, p.memberIds ?? []);
          },
        },
        list: {
          params: PARAMS["chat.list"],
          handler: (ctx: Ctx<{ limit?: number; cursor?: string }>) =>
            this.logic.list(userIdOf(ctx), { limit: ctx.params.limit, cursor: ctx.params.cursor }),
        },
        get: {
          params: PARAMS["chat.get"],
          handler: (ctx: Ctx<{ id: string }>) => this.logic.get(userIdOf(ctx), ctx.params.id),
        },
        addMember: {
          params: PARAMS["chat.addMember"],
          handler: (ctx: Ctx<{ id: string; userId: string }>) =>
            this.logic.addMember(userIdOf(ctx), ctx.params.id, ctx.params.userId),
        },
        removeMember: {
          params: PARAMS["chat.removeMember"],
          handler: async (ctx: Ctx<{ id: string; userId: string }>) => {
            await this.logic.removeMember(userIdOf(ctx), ctx.params.id, ctx.params.userId);
            return null;
          },
        },
        history: {
          params: PARAMS["chat.history"],
          handler: (ctx: Ctx<{ id: string; before?: number; after?: number; limit?: number }>) => {
            const { id, before, after, limit } = ctx.params;
            if (before !== undefined && after !== undefined)
              throw invalidShape("Give before or after, not both");
            return this.logic.history(userIdOf(ctx), id, { before, after, limit: limit ?? DEFAULT_PAGE });
          },
        },
        send: {
          params: PARAMS["chat.send"],
          retryPolicy: noRetry,
          bulkhead: sendBulkhead,
          // Every send to a chat goes to one chat node (consistent hashing on the chat id), so chat
          // nodes do not race each other for the chat's next seq; when the chat nodes change, the
          // store's unique seq still arbitrates the moment of handover.
          strategy: "Shard",
          strategyOptions: { shardKey: "id" },
          handler: async (ctx: Ctx<ActionMap["chat.send"]["params"]>) => {
            const { id, message, clientMsgId, replyTo, attachmentIds } = ctx.params;
            const result = await this.logic.send(
              this.verifiedUserIdOf(ctx),
              id,
              message,
              clientMsgId,
              replyTo,
              attachmentIds,
            );
            if (!result.created) ctx.meta.$statusCode = 200;
            return this.sent(result);
          },
        },
        sendTo: {
          params: {
            $$strict: true,
            recipientId: PARAMS["chat.addMember"].userId,
            message: PARAMS["chat.send"].message,
            clientMsgId: PARAMS["chat.send"].clientMsgId,
            replyTo: PARAMS["chat.send"].replyTo,
            attachmentIds: PARAMS["chat.send"].attachmentIds,
          },
          retryPolicy: noRetry,
          bulkhead: sendBulkhead,
          strategy: "Shard",
          strategyOptions: {
            shardKey: (ctx: Ctx<{ recipientId: string }>) =>
              pairKeyOf(ctx.meta.user?.id ?? "", ctx.params.recipientId),
          },
          handler: async (ctx: Ctx<ActionMap["chat.sendTo"]["params"]>) => {
            const me = this.verifiedUserIdOf(ctx);
            const { recipientId, message, clientMsgId, replyTo, attachmentIds } = ctx.params;
            const { chat } = await this.logic.openDirect(me, recipientId);
            return this.sent(
              await this.logic.send(me, chat.id, message, clientMsgId, replyTo, attachmentIds),
            );
          },
        },
        edit: {
          params: PARAMS["chat.edit"],
          handler: async (ctx: Ctx<{ id: string; messageId: string; message: string }>) => {
            const { id, messageId, message } = ctx.params;
            const result = await this.logic.edit(userIdOf(ctx), id, messageId, message);
            this.deliver(result.members, { type: "message_edited", ...result.message });
            return result.message;
          },
        },
        delete: {
          params: PARAMS["chat.delete"],
          handler: async (ctx: Ctx<{ id: string; messageId: string }>) => {
            const me = userIdOf(ctx);
            const { id, messageId } = ctx.params;
            const result = await this.logic.remove(me, id, messageId);
            this.deliver(result.members, { type: "message_deleted", ...result.message });
            if (result.unpinned) {
              this.deliver(result.members, {
                type: "pins_changed",
                chatId: id,
                messageId,
                userId: me,
                op: "remove",
              });
            }
            return null;
          },
        },
        read: {
          params: PARAMS["chat.read"],
          handler: async (ctx: Ctx<{ id: string; seq: number }>) => {
            const me = userIdOf(ctx);
            const { moved, seq, members } = await this.logic.markRead(me, ctx.params.id, ctx.params.seq);
            if (moved) this.deliver(members, { type: "read", chatId: ctx.params.id, userId: me, seq });
            return null;
          },
        },
        typing: {
          params: { $$strict: true, id: PARAMS["chat.get"].id },
          handler: async (ctx: Ctx<{ id: string }>) => {
            const me = userIdOf(ctx);
            const chat = await this.logic.memberChat(me, ctx.params.id);
            this.deliver(await this.logic.typingAudience(me, chat), {
              type: "typing",
              chatId: chat._id,
              userId: me,
            });
            return null;
          },
        },
        // Reactions of a chat go to one chat node, as its sends do, where each message's summary
        // is rewritten once per burst (reactions.ts) instead of by racing nodes.
        react: {
          params: PARAMS["chat.react"],
          strategy: "Shard",
          strategyOptions: { shardKey: "id" },
          handler: (ctx: Ctx<ReactionParams>) => this.reaction(ctx, "add"),
        },
        unreact: {
          params: PARAMS["chat.unreact"],
          strategy: "Shard",
          strategyOptions: { shardKey: "id" },
          handler: (ctx: Ctx<ReactionParams>) => this.reaction(ctx, "remove"),
        },
        pin: {
          params: PARAMS["chat.pin"],
          handler: (ctx: Ctx<{ id: string; messageId: string }>) => this.pinning(ctx, "add"),
        },
        unpin: {
          params: PARAMS["chat.unpin"],
          handler: (ctx: Ctx<{ id: string; messageId: string }>) => this.pinning(ctx, "remove"),
        },
        pins: {
          params: PARAMS["chat.pins"],
          handler: async (ctx: Ctx<{ id: string }>) => ({
            pins: await this.logic.pins(userIdOf(ctx), ctx.params.id),
          }),
        },
        block: {
          params: PARAMS["chat.block"],
          handler: async (ctx: Ctx<{ userId: string }>) => {
            const me = userIdOf(ctx);
            if (await this.logic.block(me, ctx.params.userId))
              await this.presenceAcross(me, ctx.params.userId);
            return null;
          },
        },
        unblock: {
          params: PARAMS["chat.unblock"],
          handler: async (ctx: Ctx<{ userId: string }>) => {
            const me = userIdOf(ctx);
            if (await this.logic.unblock(me, ctx.params.userId))
              await this.presenceAcross(me, ctx.params.userId);
            return null;
          },
        },
        blocks: {
          params: PARAMS["chat.blocks"],
          handler: async (ctx: Ctx) => ({ users: await this.logic.blocked(userIdOf(ctx)) }),
        },
        mute: {
          params: PARAMS["chat.mute"],
          handler: async (ctx: Ctx<{ id: string; until?: string | null }>) => {
            if (ctx.params.until === undefined) {
              throw new ValidationFailedError([
                {
                  field: "until",
                  type: "required",
                  message: "The 'until' field is required (a time, or null)",
                },
              ]);
            }
            await this.logic.mute(userIdOf(ctx), ctx.params.id, ctx.params.until);
            return null;
          },
        },
        unmute: {
          params: PARAMS["chat.unmute"],
          handler: async (ctx: Ctx<{ id: string }>) => {
            await this.logic.unmute(userIdOf(ctx), ctx.params.id);
            return null;
          },
        },
        // What a reconnecting socket missed (the gateway's `resume` frame), for all its chats at once.
        resume: {
          params: {
            $$strict: true,
            chats: {
              type: "array",
              max: 1_000,
              items: {
                type: "object",
                strict: true,
                props: {
                  id: PARAMS["chat.get"].id,
                  after: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER },
                  limit: { type: "number", integer: true, min: 1, max: 10_000 },
                },
              },
            },
          },
          handler: (ctx: Ctx<{ chats: ResumeEntry[] }>) => this.logic.resume(userIdOf(ctx), ctx.params.chats),
        },
        presence: {
          params: { $$strict: true, userIds: { type: "array", items: "string|max:64", max: 500 } },
          // A user on the other side of a block with the caller reads as offline, never seen.
          handler: async (ctx: Ctx<{ userIds: string[] }>): Promise<{ presence: PresenceView[] }> => {
            const caller = ctx.meta.user?.id;
            const hidden = caller
              ? await this.logic.hiddenFrom(caller, ctx.params.userIds)
              : new Set<string>();
            return {
              presence: ctx.params.userIds.map((userId) =>
                hidden.has(userId)
                  ? { userId, status: "offline" as const, lastSeen: null }
                  : this.presenceOf(userId),
              ),
            };
          },
        },
        uploadBegin: {
          params: PARAMS["chat.uploadBegin"],
          handler: (ctx: Ctx<ActionMap["chat.uploadBegin"]["params"]>) =>
            this.uploads.begin(
              userIdOf(ctx),
              ctx.params.name,
              ctx.params.contentType,
              ctx.params.declaredSize,
            ),
        },
        uploadCommit: {
          params: PARAMS["chat.uploadCommit"],
          handler: (ctx: Ctx<ActionMap["chat.uploadCommit"]["params"]>) => {
            const { id, ...fields } = ctx.params;
            return this.uploads.commit(userIdOf(ctx), id, fields);
          },
        },
        uploadAbort: {
          params: PARAMS["chat.uploadAbort"],
          handler: async (ctx: Ctx<{ id: string }>) => {
            await this.uploads.abort(userIdOf(ctx), ctx.params.id);
            return null;
          },
        },
        fileAccess: {
          params: PARAMS["chat.fileAccess"],
          handler: async (ctx: Ctx<{ id: string }>) => {
            const u = await this.uploads.access(userIdOf(ctx), ctx.params.id);
            return {
              id: u._id,
              key: u.key,
              name: u.name,
              size: u.size,
              contentType: u.contentType,
              sha256: u.sha256,
            };
          },
        },
        // Called by the auth service's account deletion (and its housekeeping) with the account's
        // id, never on behalf of a caller; repeating it finishes what a cut-off run left.
        eraseUser: {
          visibility: "public",
          params: PARAMS["chat.eraseUser"],
          handler: async (ctx: Ctx<ActionMap["chat.eraseUser"]["params"]>) => {
            await this.accountData.eraseUser(ctx.params.userId, ctx.params.eraseMessages);
            return null;
          },
        },
        // A page of the user's data for the gateway's export (gateway/account-export.ts).
        exportUser: {
          visibility: "public",
          params: PARAMS["chat.exportUser"],
          handler: (ctx: Ctx<ActionMap["chat.exportUser"]["params"]>) =>
            this.accountData.exportUser(ctx.params.userId, ctx.params.after, ctx.params.limit),
        },
        pushKey: {
          params: PARAMS["chat.pushKey"],
          handler: () => ({ publicKey: this.push.publicKey }),
        },
        pushSubscribe: {
          params: PARAMS["chat.pushSubscribe"],
          handler: async (ctx: Ctx<ActionMap["chat.pushSubscribe"]["params"]>) => {
            const me = userIdOf(ctx);
            const { allowInsecure } = platformConfig(this.broker).push;
            const sub = checkSubscription(ctx.params, { allowInsecure });
            const { created } = await this.push.subscriptions.upsert(me, sub);
            if (!created) ctx.meta.$statusCode = 200;
            return { created };
          },
        },
        pushUnsubscribe: {
          params: PARAMS["chat.pushUnsubscribe"],
          handler: async (ctx: Ctx<{ endpoint: string }>) => {
            await this.push.subscriptions.remove(userIdOf(ctx), ctx.params.endpoint);
            return null;
          },
        },
        ready: {
          handler: async () => {
            await this.store.ping();
            return { ok: true };
          },
        },
      },
      events: {
        "ws.online": {
          handler: (ctx: Context<EventMap["ws.online"]>) => {
            if (this.presence.online(ctx.params.nodeId, ctx.params.userId, stampOf(ctx.params)))
              this.announcer.online(ctx.params.userId);
          },
        },
        "ws.offline": {
          handler: (ctx: Context<EventMap["ws.offline"]>) => {
            const { nodeId, userId, at } = ctx.params;
            if (this.presence.offline(nodeId, userId, at, stampOf(ctx.params)))
              this.announcer.offline([userId]);
          },
        },
        "chat.members.changed": {
          handler: (ctx: Context<EventMap["chat.members.changed"]>) =>
            this.logic?.forgetChat(ctx.params.chatId),
        },
        "chat.blocks.changed": {
          handler: (ctx: Context<EventMap["chat.blocks.changed"]>) =>
            this.logic?.forgetBlocks(ctx.params.userIds),
        },
        "profile.cache.clean": {
          handler: (ctx: Context<EventMap["profile.cache.clean"]>) => this.push?.forgetNames(ctx.params.ids),
        },
        "$node.disconnected": {
          handler: (ctx: Context<{ node: { id: string } }>) => {
            this.announcer.offline(this.presence.dropNode(ctx.params.node.id));
          },
        },
      },
      started: () => this.start(),
      stopped: () => this.stop(),
    });
  }

  private async start(): Promise<void> {
    const config = platformConfig(this.broker);
    this.metrics = platformMetrics(this.broker);
    this.store = await openStore(config, this.logger);
    const chats = new ChatsRepository(this.store.collection("chats"));
    const messages = new MessagesRepository(this.store.collection("messages"));
    const receipts = new ReceiptsRepository(this.store.collection("receipts"));
    const reactions = new ReactionsRepository(this.store.collection("reactions"));
    const pins = new PinsRepository(this.store.collection("pins"));
    const blocks = new BlocksRepository(this.store.collection("blocks"));
    const uploadRecords = new UploadsRepository(this.store.collection("uploads"));
    const uploadUsage = new UploadUsageRepository(this.store.collection("upload_usage"));
    await Promise.all([
      chats.init(),
      messages.init(),
      receipts.init(),
      reactions.init(),
      pins.init(),
      blocks.init(),
      uploadRecords.init(),
      uploadUsage.init(),
    ]);
    const blobs = await openBlobStore(config.files);
    this.blobs = blobs;
    this.uploads = new Uploads({
      uploads: uploadRecords,
      usage: uploadUsage,
      blobs,
      quotaBytes: config.files.quotaBytes,
      orphanTtlMs: config.files.orphanTtlS * 1000,
      isMember: async (userId, chatId) => {
        try {
          await this.logic.memberChat(userId, chatId);
          return true;
        } catch (err) {
          if ((err as { code?: number }).code === 403) return false;
          throw err;
        }
      },
      warn: (message, err) => this.logger.warn(message, (err as Error)?.message),
    });
    this.redis = createRedis(config, `${config.nodeId}-chat`);
    const limit = (name: string, rate: { points: number; duration: number }) =>
      new RateLimit(name, rate, this.redis, config.namespace);
    this.lastMessages = new LastMessageWriter(chats, (err) =>
      this.logger.warn("A chat summary write failed; the next message rewrites it", (err as Error).message),
    );
    const lastMessages = this.lastMessages;
    this.ownReads = new OwnReadMarks(receipts, (err) =>
      this.logger.warn("A sender's read mark write failed; it is tried again", (err as Error).message),
    );
    const ownReads = this.ownReads;
    this.logic = new ChatLogic({
      ownReads,
      recordLast: (chatId, last) => lastMessages.record(chatId, last),
      latestLast: (chatId) => lastMessages.latest(chatId),
      membersChanged: (chatId) => {
        broadcast(this.broker, "chat.members.changed", { chatId }).catch((err: Error) =>
          this.logger.warn("Telling the chat nodes of a member change failed", err.message),
        );
      },
      memberCacheTtlMs: config.chat.memberCacheTtlS * 1000,
      rates: {
        send: limit("send-user", config.rateLimits.sendUser),
        chatCreate: limit("chat-create-user", config.rateLimits.chatCreateUser),
        memberAdd: limit("member-add-user", config.rateLimits.memberAddUser),
      },
      blocksChanged: (userIds) => {
        broadcast(this.broker, "chat.blocks.changed", { userIds }).catch((err: Error) =>
          this.logger.warn("Telling the chat nodes of a block failed", err.message),
        );
      },
      chats,
      messages,
      receipts,
      reactions,
      pins,
      blocks,
      uploads: this.uploads,
      limits: {
        maxGroupMembers: config.chat.maxGroupMembers,
        maxMessageLength: config.chat.maxMessageLength,
      },
      userIdByUsername: async (username) => {
        try {
          return (await call(this.broker, "profile.byUsername", { username })).id;
        } catch (err) {
          if ((err as { code?: number }).code === 404) return null;
          throw err;
        }
      },
      profiles: async (ids) => (await call(this.broker, "profile.getMany", { ids })).profiles,
      userExists: async (id) => {
        try {
          await call(this.broker, "profile.get", { id });
          return true;
        } catch (err) {
          if ((err as { code?: number }).code === 404) return false;
          throw err;
        }
      },
    });
    this.push = await openPushNotifications({
      store: this.store,
      config: config.push,
      logger: this.logger,
      metrics: this.metrics,
      isOnline: (userId) => this.presence.isOnline(userId),
      hiddenFrom: (senderId, userIds) => this.logic.hiddenFrom(senderId, userIds),
      senderName: async (id) =>
        (await call(this.broker, "profile.getMany", { ids: [id] })).profiles[0]?.displayName ?? "",
    });
    this.accountData = new AccountData({
      chats,
      messages,
      blocks,
      receipts,
      uploadRecords,
      uploads: this.uploads,
      listChats: (userId, cursor, limit) => this.logic.list(userId, { limit, cursor }),
      flushSummaries: async () => {
        await Promise.all([lastMessages.flushed(), ownReads.flushed()]);
      },
      pushSubscriptions: this.push.subscriptions,
      blocksChanged: (userIds) => {
        this.logic.forgetBlocks(userIds);
        broadcast(this.broker, "chat.blocks.changed", { userIds }).catch((err: Error) =>
          this.logger.warn("Telling the chat nodes of a block failed", err.message),
        );
      },
    });
    await this.resync();
    this.resyncTimer = setInterval(() => void this.resync(), RESYNC_INTERVAL_MS);
    this.resyncTimer.unref();
    // Every chat node sweeps; the compare-and-set of each record lets only one remove it.
    const sweepMs = Math.min((config.files.orphanTtlS * 1000) / 4, SWEEP_INTERVAL_MAX_MS);
    this.sweepTimer = setInterval(() => void this.sweepUploads(), sweepMs);
    this.sweepTimer.unref();
  }

  private async sweepUploads(): Promise<void> {
    try {
      const removed = await this.uploads.sweep();
      if (removed) this.logger.info(`Removed ${removed} uploads that no message holds`);
    } catch (err) {
      this.logger.warn("The upload sweep failed; the next one tries again", (err as Error).message);
    }
  }

  private async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    clearInterval(this.sweepTimer);
    await this.announcer.idle();
    await Promise.all([this.lastMessages?.flushed(), this.ownReads?.flushed()]);
    await this.push?.close();
    this.redis?.disconnect();
    await this.store?.close();
    await this.blobs?.close();
  }

  /**
   * The caller of a send or a new chat; with REQUIRE_EMAIL_VERIFICATION only once their access token
   * says the address is verified (its `ev` claim, set on the refresh after the verification).
   */
  private verifiedUserIdOf(ctx: Ctx<unknown>): string {
    const id = userIdOf(ctx);
    if (
      platformConfig(this.broker).account.requireEmailVerification &&
      ctx.meta.user?.emailVerified !== true
    ) {
      throw emailNotVerified();
    }
    return id;
  }

  /**
   * A new message goes to the members, then its sender's read mark (their own messages are read),
   * then to the push notifier for the members who are away.
   */
  private sent(result: Awaited<ReturnType<ChatLogic["send"]>>): MessageView {
    if (result.created) {
      const m = result.message;
      this.metrics?.chatMessagesStored.increment();
      this.deliver(result.members, { type: "new_message", ...m });
      this.deliver(result.members, { type: "read", chatId: m.chatId, userId: m.senderId, seq: m.seq });
      this.push.notifier.messageStored({ type: result.chatType, members: result.members }, m);
    }
    return result.message;
  }

  /**
   * After a block is made or lifted, each of the two is told the other's presence as it now reads
   * to them: offline and never seen across a block (which a client showing them online needs to
   * hear), the real state once it is lifted (when another block still stands, offline again).
   */
  private async presenceAcross(a: string, b: string): Promise<void> {
    const hidden = (await this.logic.hiddenFrom(a, [b])).has(b);
    // Presence goes to contacts only: lifting a block tells nothing to two who share no chat.
    if (!hidden && !(await this.logic.contactsOf(a)).includes(b)) return;
    const shown = (userId: string): PresenceView =>
      hidden ? { userId, status: "offline", lastSeen: null } : this.presenceOf(userId);
    this.deliver([a], { type: "presence", ...shown(b) });
    this.deliver([b], { type: "presence", ...shown(a) });
  }

  /** Adds or removes the caller's reaction; a change goes to every member. */
  private async reaction(ctx: Ctx<ReactionParams>, op: "add" | "remove"): Promise<null> {
    const me = userIdOf(ctx);
    const { id, messageId, emoji } = ctx.params;
    const change =
      op === "add"
        ? await this.logic.react(me, id, messageId, emoji)
        : await this.logic.unreact(me, id, messageId, emoji);
    if (change.changed) this.deliverReaction(change.members, id, messageId, me, op, change);
    return null;
  }

  /** Pins or unpins a message; a change goes to every member. */
  private async pinning(ctx: Ctx<{ id: string; messageId: string }>, op: "add" | "remove"): Promise<null> {
    const me = userIdOf(ctx);
    const { id, messageId } = ctx.params;
    const { changed, members } =
      op === "add" ? await this.logic.pin(me, id, messageId) : await this.logic.unpin(me, id, messageId);
    if (changed) this.deliver(members, { type: "pins_changed", chatId: id, messageId, userId: me, op });
    return null;
  }

  private deliverReaction(
    members: string[],
    chatId: string,
    messageId: string,
    userId: string,
    op: "add" | "remove",
    change: { emoji: string; count: number },
  ): void {
    this.deliver(members, {
      type: "reaction",
      chatId,
      messageId,
      emoji: change.emoji,
      userId,
      op,
      count: change.count,
    });
  }

  /**
   * Sends a frame to every connection of the given users, through the gateways that hold any of
   * them: the frames of one moment for a gateway go in one call (delivery-outbox.ts).
   */
  private deliver(userIds: string[], frame: ServerFrame): void {
    for (const [nodeID, users] of this.presence.route(userIds))
      this.outbox.add(nodeID, { userIds: users, frame });
  }

  /**
   * Every chat node keeps the presence map; one of them, the first by node id, tells the users.
   * A change of that node mid-way may drop or repeat a presence frame: presence is ephemeral, and
   * `chat.presence` answers the current state at any time.
   */
  private isAnnouncer(): boolean {
    const chatNodes = this.broker.registry
      .getServiceList({ onlyAvailable: true, skipInternal: true })
      .filter((s) => s.name === "chat")
      .map((s) => (s as unknown as { nodeID: string }).nodeID)
      .sort();
    return (chatNodes[0] ?? this.broker.nodeID) === this.broker.nodeID;
  }

  private presenceOf(userId: string): PresenceView {
    const online = this.presence.isOnline(userId);
    return {
      userId,
      status: online ? "online" : "offline",
      lastSeen: online ? null : this.presence.lastSeenOf(userId),
    };
  }

  /** Asks every gateway which users it holds, so lost online/offline events heal. */
  private async resync(): Promise<void> {
    const gateways = this.broker.registry
      .getServiceList({ onlyAvailable: true, skipInternal: true, withActions: false })
      .filter((s: { name: string }) => s.name === "gateway")
      .map((s) => (s as unknown as { nodeID: string }).nodeID);
    for (const nodeId of this.presence.nodes()) {
      if (!gateways.includes(nodeId)) this.announcer.offline(this.presence.dropNode(nodeId));
    }
    await Promise.all(
      gateways.map(async (nodeID: string) => {
        try {
          const list = await call(this.broker, "gateway.connectedUsers", {}, { nodeID });
          this.announcer.offline(this.presence.replaceNode(nodeID, list.userIds, stampOf(list)));
        } catch (err) {
          this.logger.debug(`Presence resync with ${nodeID} failed`, (err as Error).message);
        }
      }),
    );
  }
}

/** The gateway's stamp, when it sent one (a gateway of an older release sends none). */
function stampOf(from: Partial<PresenceStamp>): PresenceStamp | undefined {
  return typeof from.instance === "string" && typeof from.version === "number"
    ? { instance: from.instance, version: from.version }
    : undefined;
}

interface ReactionParams {
  id: string;
  messageId: string;
  emoji: string;
}

function emailNotVerified(): ForbiddenError {
  return new ForbiddenError(
    "Verify your email address first (the link mailed to it); then refresh your tokens",
    "EMAIL_NOT_VERIFIED",
  );
}

function userIdOf(ctx: Ctx<unknown>): string {
  if (!ctx.meta.user) throw new UnauthorizedError();
  return ctx.meta.user.id;
}

function invalidShape(message: string): ValidationFailedError {
  return new ValidationFailedError([{ field: "type", type: "shape", message }]);
}

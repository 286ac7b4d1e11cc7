/**
 * Chats, members, messages and read receipts, free of Moleculer. Every action checks membership
 * first: a non-member gets the same 403 whether or not the chat exists, and learns nothing.
 */
import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import type {
  ChatView,
  MessageView,
  PinView,
  PublicProfile,
  ResumeAnswer,
  ResumeEntry,
} from "../../lib/contracts.ts";
import { ForbiddenError, NotFoundError, ValidationFailedError } from "../../lib/errors.ts";
import { LocalCache } from "../../lib/local-cache.ts";
import { BlockList } from "./block-list.ts";
import { type BlocksRepository, MAX_BLOCKS } from "./blocks.repo.ts";
import { decodeChatCursor, encodeChatCursor } from "./chat-cursor.ts";
import type { Chat, ChatsRepository, LastMessage } from "./chats.repo.ts";
import { mentionedNames } from "./mentions.ts";
import { MessageAppender } from "./message-appender.ts";
import type { Message, MessagesRepository } from "./messages.repo.ts";
import type { OwnReadMarks } from "./own-read-marks.ts";
import type { PinsRepository } from "./pins.repo.ts";
import type { ReactionsRepository } from "./reactions.repo.ts";
import { type ReactionChange, Reactions } from "./reactions.ts";
import type { ReceiptsRepository } from "./receipts.repo.ts";
import { ResumeReader } from "./resume-reader.ts";
import type { Uploads } from "./uploads.ts";
import { toChatView, toLast, toMessageView, toMessageViews } from "./views.ts";

export interface ChatLimits {
  maxGroupMembers: number;
  maxMessageLength: number;
}

/** A per-user budget (lib/rate-limiter.ts): `consume` throws RateLimitedError once it is spent. */
export interface UserRate {
  consume(userId: string): Promise<void>;
}

/** The per-user limits of the chat actions: sends (REST and WebSocket), new chats, members added. */
export interface ChatRates {
  send: UserRate;
  chatCreate: UserRate;
  memberAdd: UserRate;
}

export interface ChatDeps {
  chats: ChatsRepository;
  messages: MessagesRepository;
  receipts: ReceiptsRepository;
  reactions: ReactionsRepository;
  pins: PinsRepository;
  blocks: BlocksRepository;
  limits: ChatLimits;
  userExists(id: string): Promise<boolean>;
  /** The id of the user with this username (any case), null when there is none. */
  userIdByUsername(username: string): Promise<string | null>;
  /** The public profiles of the given users that exist, in any order. */
  profiles(ids: string[]): Promise<PublicProfile[]>;
  /** Tells every chat node that a block between these users was made or lifted. */
  blocksChanged(userIds: string[]): void;
  /** Moves a sender's read mark to their new message behind the send (own-read-marks.ts). */
  ownReads: OwnReadMarks;
  /** Writes each chat's lastSeq/lastMessage after the message itself is stored. */
  recordLast(chatId: string, last: LastMessage): void;
  /** The newest summary recorded on this node and not written yet. */
  latestLast(chatId: string): LastMessage | undefined;
  /** Tells every chat node that a chat's members changed (this node has already dropped its copy). */
  membersChanged(chatId: string): void;
  /** How long a chat read for a send, a typing frame or a receipt is reused; 0 reads it every time. */
  memberCacheTtlMs: number;
  /** Per-user limits; none when absent. */
  rates?: ChatRates | undefined;
  /** Uploaded files, which messages hold (uploads.ts). */
  uploads: Uploads;
}

/** The chat list's page when the client names none. */
const CHAT_PAGE_DEFAULT = 50;
/**
 * How far back the chat list's snapshot is taken: a chat's activity key is stamped when written
 * and lands a moment later, and a key stamped before the snapshot but landing after the first
 * page could otherwise move a chat between pages.
 */
const SNAPSHOT_MARGIN_MS = 2_000;
export const MAX_PINS = 50;
const USERNAMES_CACHED = 10_000;
const SEQ_HINTS_MAX = 10_000;
const MEMBER_CACHE_MAX = 10_000;
/**
 * Messages a node keeps of its latest sends, to answer their resends: at most this many, this
 * many bytes of text (a 4,000-character message counts for 8 KB), for this long.
 */
const RECENT_SENDS_MAX = 50_000;
const RECENT_SENDS_BYTES = 16 * 1024 * 1024;
const RECENT_SENDS_TTL_MS = 120_000;

export class ChatLogic {
  private readonly d: ChatDeps;
  /** The highest seq this node saw per chat: a hint that saves a retry when the chat summary lags. */
  private readonly seqHints = new Map<string, number>();
  /** New messages being stored on this node, by chat, sender and clientMsgId: a resend joins them. */
  private readonly inFlight = new Map<string, Promise<{ message: Message; created: boolean }>>();
  /**
   * Chats as read for the frequent calls (sends, typing, receipts, history): their members and
   * type only change through addMember/removeMember, which drop the copy here and, through
   * `membersChanged`, on every other chat node. A node that missed that broadcast (the bus was
   * down) uses the old member list for at most the cache's lifetime.
   */
  private readonly members: LocalCache<Chat>;
  /** Stores new messages in batches, each chat's one batch at a time (message-appender.ts). */
  private readonly appender: MessageAppender;
  private readonly resumes: ResumeReader;
  private readonly reactionLog: Reactions;
  private readonly blockList: BlockList;
  /** Usernames resolved for mentions; a username never changes hands while its account exists. */
  private readonly usernames = new LRUCache<string, { id: string }>({ max: USERNAMES_CACHED });
  /**
   * Messages stored lately through this node, by chat, sender and clientMsgId. A resend (the ack
   * was lost, the client reconnected or retried after a refusal) is answered from here: in the
   * store it would be refused by the clientMsgId index, which breaks the batch it is in and costs
   * the store more round trips than a new message, and after an overload most sends are resends.
   * Sends of a chat go to one chat node (Shard), so their resends come back to this node; a miss
   * (the node changed, or the entry is gone) takes the store's path, which gives the same answer.
   * An edit or deletion here drops the entry; one made through another node leaves the first
   * version here, as the ack of a resend needs only its id and seq.
   */
  private readonly recentSends = new LRUCache<string, Message>({
    max: RECENT_SENDS_MAX,
    maxSize: RECENT_SENDS_BYTES,
    sizeCalculation: (m) => 256 + m.message.length * 2,
    ttl: RECENT_SENDS_TTL_MS,
  });

  constructor(deps: ChatDeps) {
    this.d = deps;
    this.members = new LocalCache({ ttlMs: deps.memberCacheTtlMs, max: MEMBER_CACHE_MAX });
    this.appender = new MessageAppender({
      messages: deps.messages,
      knownSeq: (chatId) => this.seqHints.get(chatId) ?? 0,
      stored: (chatId, seq) => this.noteSeq(chatId, seq),
    });
    this.resumes = new ResumeReader({
      chats: deps.chats,
      messages: deps.messages,
      knownSeq: (chat) => this.knownSeq(this.withLatest(chat)),
    });
    this.reactionLog = new Reactions(deps.messages, deps.reactions);
    this.blockList = new BlockList(deps.blocks, deps.memberCacheTtlMs);
  }

  /** Drops this node's copy of the users' blocks (a block between them changed). */
  forgetBlocks(userIds: string[]): void {
    this.blockList.forget(userIds);
  }

  /** Drops this node's copy of a chat (its members changed here or on another node). */
  forgetChat(chatId: string): void {
    this.members.drop([chatId]);
  }

  async openDirect(userId: string, otherId: string): Promise<{ chat: ChatView; created: boolean }> {
    if (otherId === userId) throw invalid("userId", "A direct chat needs another user");
    if (!(await this.d.userExists(otherId))) throw new NotFoundError("User", "USER_NOT_FOUND");
    if (await this.blockList.between(userId, otherId)) throw blocked();
    const existing = await this.d.chats.findDirect(userId, otherId);
    if (existing) return { chat: await this.viewFor(userId, existing), created: false };
    // Only a chat about to be made counts: opening one that exists (sendTo does, per message) is free.
    await this.d.rates?.chatCreate.consume(userId);
    const { chat, created } = await this.d.chats.directFor(userId, otherId, randomUUID());
    return { chat: await this.viewFor(userId, chat), created };
  }

  /** The chat as the user sees it (their mute; with their counts when `counts`). */
  private async viewFor(userId: string, chat: Chat, counts = false): Promise<ChatView> {
    const receipt = this.d.ownReads.overlay(chat._id, userId, await this.d.receipts.get(chat._id, userId));
    return toChatView(chat, { receipt, counts });
  }

  async createGroup(ownerId: string, name: string, memberIds: string[]): Promise<ChatView> {
    const members = [...new Set([ownerId, ...memberIds])];
    if (members.length > this.d.limits.maxGroupMembers) {
      throw invalid("memberIds", `A group has at most ${this.d.limits.maxGroupMembers} members`);
    }
    await this.d.rates?.chatCreate.consume(ownerId);
    for (const id of members) {
      if (id !== ownerId && !(await this.d.userExists(id))) throw new NotFoundError("User", "USER_NOT_FOUND");
    }
    const chat = await this.d.chats.insert({ _id: randomUUID(), type: "group", name, ownerId, members });
    return toChatView(chat);
  }

  /**
   * The chat, if the user is a member; the same 403 otherwise, whether it exists or not. `fresh`
   * reads the store (for a change of members, or a view with the chat's latest summary); otherwise
   * a copy this node read in the last moments may answer.
   */
  async memberChat(userId: string, chatId: string, fresh = false): Promise<Chat> {
    const chat = fresh
      ? await this.readChat(chatId)
      : (this.members.get(chatId) ?? (await this.readChat(chatId)));
    if (!chat?.members.includes(userId))
      throw new ForbiddenError("Not a member of this chat", "CHAT_FORBIDDEN");
    return chat;
  }

  private async readChat(chatId: string): Promise<Chat | null> {
    const mark = this.members.mark();
    const chat = await this.d.chats.findById(chatId);
    if (chat) this.members.set(chatId, chat, mark);
    return chat;
  }

  async get(userId: string, chatId: string): Promise<ChatView> {
    return this.viewFor(userId, this.withLatest(await this.memberChat(userId, chatId, true)), true);
  }

  /** The chat with the summary this node recorded and has not written yet, when that is newer. */
  private withLatest(chat: Chat): Chat {
    const latest = this.d.latestLast(chat._id);
    return latest && latest.seq > chat.lastSeq ? { ...chat, lastSeq: latest.seq, lastMessage: latest } : chat;
  }

  /**
   * A page of the user's chats, newest activity first. The first page fixes a snapshot time that
   * the cursor carries: later pages list the chats as they were ordered then, so a chat that gets
   * a message meanwhile is neither skipped nor repeated (chats.repo.ts, listPage).
   */
  async list(
    userId: string,
    options: { limit?: number; cursor?: string },
  ): Promise<{ chats: ChatView[]; hasMore: boolean; nextCursor: string | null }> {
    const limit = options.limit ?? CHAT_PAGE_DEFAULT;
    const from = options.cursor !== undefined ? decodeChatCursor(userId, options.cursor) : undefined;
    const at = from?.at ?? Date.now() - SNAPSHOT_MARGIN_MS;
    const page = await this.d.chats.listPage(userId, {
      at,
      below: from?.below,
      limit,
      madeBy: at + SNAPSHOT_MARGIN_MS,
    });
    const receipts = await this.d.receipts.forUser(
      userId,
      page.chats.map((c) => c._id),
    );
    const last = page.chats.at(-1);
    return {
      chats: page.chats.map((c) =>
        toChatView(this.withLatest(c), {
          receipt: this.d.ownReads.overlay(c._id, userId, receipts.get(c._id)),
          counts: true,
        }),
      ),
      hasMore: page.hasMore,
      nextCursor: page.hasMore && last ? encodeChatCursor(userId, { at, below: last.activityKey }) : null,
    };
  }

  /** Everyone who shares a chat with the user (the audience of their presence). */
  async contactsOf(userId: string): Promise<string[]> {
    return (await this.contactsOfEach([userId])).get(userId) ?? [];
  }

  /**
   * The contacts of each of the given users, from one query over their chats: on a store that
   * scans to match an array field (FerretDB), a batch costs one scan instead of one per user.
   */
  async contactsOfEach(userIds: string[]): Promise<Map<string, string[]>> {
    const wanted = new Set(userIds);
    const contacts = new Map<string, Set<string>>();
    const [chats, related] = await Promise.all([
      this.d.chats.listForMembers(userIds),
      this.blockList.relatedToEach(userIds),
    ]);
    for (const chat of chats) {
      for (const member of chat.members) {
        if (!wanted.has(member)) continue;
        const set = contacts.get(member) ?? new Set<string>();
        contacts.set(member, set);
        const hidden = related.get(member);
        for (const other of chat.members) if (other !== member && !hidden?.has(other)) set.add(other);
      }
    }
    return new Map(userIds.map((id) => [id, [...(contacts.get(id) ?? [])]]));
  }

  /** Of the given users, those whose presence and typing the user does not get (a block). */
  async hiddenFrom(userId: string, userIds: string[]): Promise<Set<string>> {
    const related = await this.blockList.relatedTo(userId);
    return new Set(userIds.filter((id) => related.has(id)));
  }

  /** Who gets the user's typing in the chat: the other members, but not across a block. */
  async typingAudience(userId: string, chat: Chat): Promise<string[]> {
    const related = await this.blockList.relatedTo(userId);
    return chat.members.filter((m) => m !== userId && !related.has(m));
  }

  async addMember(userId: string, chatId: string, newMemberId: string): Promise<ChatView> {
    const chat = await this.memberChat(userId, chatId, true);
    if (chat.type !== "group")
      throw new ForbiddenError("Members of a direct chat cannot change", "CHAT_FORBIDDEN");
    if (chat.ownerId !== userId) throw new ForbiddenError("Only the owner adds members", "CHAT_FORBIDDEN");
    await this.d.rates?.memberAdd.consume(userId);
    if (!(await this.d.userExists(newMemberId))) throw new NotFoundError("User", "USER_NOT_FOUND");
    const updated = await this.d.chats.addMember(chatId, newMemberId, this.d.limits.maxGroupMembers);
    if (!updated) throw invalid("userId", `A group has at most ${this.d.limits.maxGroupMembers} members`);
    this.changedMembers(chatId);
    return this.viewFor(userId, updated);
  }

  /** The owner removes anyone; any member removes themself (leaves). */
  async removeMember(userId: string, chatId: string, memberId: string): Promise<Chat> {
    const chat = await this.memberChat(userId, chatId, true);
    if (chat.type !== "group")
      throw new ForbiddenError("Members of a direct chat cannot change", "CHAT_FORBIDDEN");
    if (memberId !== userId && chat.ownerId !== userId) {
      throw new ForbiddenError("Only the owner removes other members", "CHAT_FORBIDDEN");
    }
    if (!chat.members.includes(memberId)) throw new NotFoundError("Member", "MEMBER_NOT_FOUND");
    await this.d.chats.removeMember(chatId, memberId);
    this.changedMembers(chatId);
    return chat;
  }

  private changedMembers(chatId: string): void {
    this.forgetChat(chatId);
    this.d.membersChanged(chatId);
  }

  /**
   * Stores a message (idempotent by clientMsgId); resolves it and the members to deliver to. A new
   * message moves its sender's read mark to it (their own messages are read) and counts as a
   * mention for the members it names.
   */
  async send(
    userId: string,
    chatId: string,
    text: string,
    clientMsgId: string,
    replyTo?: string,
    attachmentIds: string[] = [],
  ): Promise<{ message: MessageView; created: boolean; members: string[]; chatType: Chat["type"] }> {
    await this.d.rates?.send.consume(userId);
    this.checkText(text, attachmentIds.length > 0);
    const chat = await this.memberChat(userId, chatId);
    if (chat.type === "direct") {
      const other = chat.members.find((m) => m !== userId) ?? userId;
      if (await this.blockList.between(userId, other)) throw blocked();
    }
    const key = sendKey(chatId, userId, clientMsgId);
    const known = this.recentSends.get(key);
    if (known)
      return {
        message: await this.viewOf(known),
        created: false,
        members: chat.members,
        chatType: chat.type,
      };
    const original = replyTo !== undefined ? await this.replyTarget(chatId, replyTo) : undefined;
    const mentions = await this.mentionsIn(chat, text);
    const attachments = attachmentIds.length ? await this.d.uploads.claim(userId, attachmentIds) : [];
    const input = {
      chatId,
      senderId: userId,
      message: text,
      clientMsgId,
      ...(original ? { replyTo: { id: original._id, seq: original.seq, senderId: original.senderId } } : {}),
      mentions,
      ...(attachments.length ? { attachments } : {}),
    };
    // One insert (with the other sends of the moment): a resend this node does not know is
    // refused by the clientMsgId index and answered with the first message.
    const { message, created } = await this.onceInFlight(key, () =>
      this.appender.append(input, chat.lastSeq),
    );
    // On a resend too: the first send may have stopped between storing its message and this. Only
    // then is the message kept for resends, so a resend after a failed attach attaches again.
    if (message.attachments?.length) {
      await this.d.uploads.attach(
        message.attachments.map((a) => a.id),
        message._id,
      );
    }
    this.recentSends.set(key, message);
    if (created) {
      this.d.recordLast(chatId, toLast(message));
      this.d.ownReads.record(chatId, userId, message.seq);
      await Promise.all([
        ...(message.mentions ?? [])
          .filter((m) => m !== userId)
          .map((m) => this.d.receipts.addMention(chatId, m, message.seq)),
      ]);
    }
    // A resend answers the first message, whose original may not be the one this request named.
    const view =
      message.replyTo && original?._id === message.replyTo.id
        ? toMessageView(message, original)
        : await this.viewOf(message);
    return { message: view, created, members: chat.members, chatType: chat.type };
  }

  /** The message a reply answers: of the same chat and not deleted, else a 422 naming `replyTo`. */
  private async replyTarget(chatId: string, messageId: string): Promise<Message> {
    const original = await this.d.messages.findInChat(chatId, messageId);
    if (!original || original.deleted) {
      throw invalid("replyTo", "'replyTo' must name a message of this chat that is not deleted");
    }
    return original;
  }

  /** The members the text mentions by `@username`, in order of first mention. */
  private async mentionsIn(chat: Chat, text: string): Promise<string[]> {
    const names = mentionedNames(text);
    if (names.length === 0) return [];
    const ids = await Promise.all(names.map((name) => this.userIdOf(name)));
    const members = new Set(chat.members);
    return [...new Set(ids.filter((id): id is string => id !== null && members.has(id)))];
  }

  private async userIdOf(username: string): Promise<string | null> {
    const hit = this.usernames.get(username);
    if (hit) return hit.id;
    const id = await this.d.userIdByUsername(username);
    if (id !== null) this.usernames.set(username, { id });
    return id;
  }

  /** One message's view, its reply's original read. */
  private async viewOf(message: Message): Promise<MessageView> {
    return (await toMessageViews([message], (ids) => this.d.messages.byIds(ids)))[0] as MessageView;
  }

  async history(
    userId: string,
    chatId: string,
    options: { before?: number; after?: number; limit: number },
  ): Promise<{ messages: MessageView[]; hasMore: boolean }> {
    const chat = await this.memberChat(userId, chatId);
    const page = await this.d.messages.page(chatId, {
      ...options,
      limit: options.limit + 1,
      seqHint: Math.max(chat.lastSeq, this.seqHints.get(chatId) ?? 0),
    });
    const hasMore = page.length > options.limit;
    const kept =
      options.after !== undefined ? page.slice(0, options.limit) : page.slice(page.length - options.limit);
    return {
      messages: await toMessageViews(hasMore ? kept : page, (ids) => this.d.messages.byIds(ids)),
      hasMore,
    };
  }

  /** Edits one's own message; its mentions are resolved again (and counted or uncounted). */
  async edit(userId: string, chatId: string, messageId: string, text: string) {
    const chat = await this.memberChat(userId, chatId);
    const message = await this.ownMessage(userId, chatId, messageId);
    if (message.deleted) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    this.checkText(text, (message.attachments?.length ?? 0) > 0);
    const mentions = await this.mentionsIn(chat, text);
    const edited = await this.d.messages.edit(message._id, text, mentions, new Date());
    this.recentSends.delete(sendKey(chatId, userId, message.clientMsgId));
    if (!edited) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    await this.recountMentions(edited, message.mentions ?? [], mentions);
    await this.d.chats.updateLastMessage(chatId, toLast(edited));
    return { message: await this.viewOf(edited), members: chat.members };
  }

  /**
   * Deletes one's own message: a tombstone stays; its reactions, mentions and pin go. Resolves
   * whether it was pinned (the members are told its pin went).
   */
  async remove(userId: string, chatId: string, messageId: string) {
    const chat = await this.memberChat(userId, chatId);
    const message = await this.ownMessage(userId, chatId, messageId);
    const removed = await this.d.messages.tombstone(message._id, new Date());
    this.recentSends.delete(sendKey(chatId, userId, message.clientMsgId));
    if (!removed) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    const [, , unpinned] = await Promise.all([
      this.reactionLog.clear(message._id),
      this.d.uploads.detach(
        (message.attachments ?? []).map((a) => a.id),
        message._id,
      ),
      this.d.pins.remove(chatId, message._id),
      this.recountMentions(removed, message.mentions ?? [], []),
    ]);
    await this.d.chats.updateLastMessage(chatId, toLast(removed));
    return { message: await this.viewOf(removed), members: chat.members, unpinned };
  }

  private async recountMentions(message: Message, before: string[], after: string[]): Promise<void> {
    const now = new Set(after);
    const was = new Set(before);
    await Promise.all([
      ...after
        .filter((m) => !was.has(m) && m !== message.senderId)
        .map((m) => this.d.receipts.addMention(message.chatId, m, message.seq)),
      ...before
        .filter((m) => !now.has(m))
        .map((m) => this.d.receipts.removeMention(message.chatId, m, message.seq)),
    ]);
  }

  /** A message of the chat for a reaction or a pin: there and not deleted, else 404. */
  private async liveMessage(chatId: string, messageId: string): Promise<Message> {
    const message = await this.d.messages.findInChat(chatId, messageId);
    if (!message || message.deleted) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    return message;
  }

  /** Adds the user's reaction (idempotent); resolves the change and the members to tell. */
  async react(
    userId: string,
    chatId: string,
    messageId: string,
    emoji: string,
  ): Promise<ReactionChange & { members: string[] }> {
    Reactions.emojiOf(emoji);
    const chat = await this.memberChat(userId, chatId);
    const change = await this.reactionLog.add(await this.liveMessage(chatId, messageId), emoji, userId);
    return { ...change, members: chat.members };
  }

  /** Removes the user's reaction (idempotent). */
  async unreact(
    userId: string,
    chatId: string,
    messageId: string,
    emoji: string,
  ): Promise<ReactionChange & { members: string[] }> {
    Reactions.emojiOf(emoji);
    const chat = await this.memberChat(userId, chatId);
    const message = await this.d.messages.findInChat(chatId, messageId);
    if (!message) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    if (message.deleted)
      return { changed: false, emoji: Reactions.emojiOf(emoji), count: 0, members: chat.members };
    const change = await this.reactionLog.remove(message, emoji, userId);
    return { ...change, members: chat.members };
  }

  /** Who may pin in a chat: any member of a direct chat, the owner of a group. */
  private async pinnableChat(userId: string, chatId: string): Promise<Chat> {
    const chat = await this.memberChat(userId, chatId);
    if (chat.type === "group" && chat.ownerId !== userId) {
      throw new ForbiddenError("Only the owner pins and unpins in a group", "CHAT_FORBIDDEN");
    }
    return chat;
  }

  /** Pins a message (idempotent); resolves whether it changed and the members to tell. */
  async pin(
    userId: string,
    chatId: string,
    messageId: string,
  ): Promise<{ changed: boolean; members: string[] }> {
    const chat = await this.pinnableChat(userId, chatId);
    const message = await this.liveMessage(chatId, messageId);
    if (!(await this.d.pins.add(chatId, message._id, userId)))
      return { changed: false, members: chat.members };
    // Counted after the insert, so pins made at once on two nodes cannot both pass at 49.
    if ((await this.d.pins.count(chatId)) > MAX_PINS) {
      await this.d.pins.remove(chatId, message._id);
      throw new ValidationFailedError([
        { field: "messageId", type: "pinLimit", message: `A chat has at most ${MAX_PINS} pinned messages` },
      ]);
    }
    return { changed: true, members: chat.members };
  }

  async unpin(
    userId: string,
    chatId: string,
    messageId: string,
  ): Promise<{ changed: boolean; members: string[] }> {
    const chat = await this.pinnableChat(userId, chatId);
    return { changed: await this.d.pins.remove(chatId, messageId), members: chat.members };
  }

  async pins(userId: string, chatId: string): Promise<PinView[]> {
    await this.memberChat(userId, chatId);
    const pins = await this.d.pins.list(chatId, MAX_PINS);
    const found = await this.d.messages.byIds(pins.map((p) => p.messageId));
    const kept = pins.flatMap((p, i) => {
      const message = found[i];
      return message && !message.deleted ? [{ pin: p, message }] : [];
    });
    const views = await toMessageViews(
      kept.map((k) => k.message),
      (ids) => this.d.messages.byIds(ids),
    );
    return kept.map((k, i) => ({
      message: views[i] as MessageView,
      pinnedBy: k.pin.pinnedBy,
      pinnedAt: k.pin.createdAt.toISOString(),
    }));
  }

  /** Blocks a user (idempotent): 422 for oneself, 404 for an unknown user; resolves whether it changed. */
  async block(userId: string, otherId: string): Promise<boolean> {
    if (otherId === userId) throw invalid("userId", "One cannot block oneself");
    if (!(await this.d.userExists(otherId))) throw new NotFoundError("User", "USER_NOT_FOUND");
    if ((await this.d.blocks.count(userId)) >= MAX_BLOCKS) {
      throw invalid("userId", `A user blocks at most ${MAX_BLOCKS} others`);
    }
    const changed = await this.d.blocks.add(userId, otherId);
    if (changed) this.changedBlocks([userId, otherId]);
    return changed;
  }

  async unblock(userId: string, otherId: string): Promise<boolean> {
    const changed = await this.d.blocks.remove(userId, otherId);
    if (changed) this.changedBlocks([userId, otherId]);
    return changed;
  }

  /** The public profiles of the users the caller blocks, newest block first. */
  async blocked(userId: string): Promise<PublicProfile[]> {
    const ids = (await this.d.blocks.blockedBy(userId)).map((b) => b.blockedId);
    if (ids.length === 0) return [];
    const byId = new Map((await this.d.profiles(ids)).map((p) => [p.id, p]));
    return ids.flatMap((id) => {
      const profile = byId.get(id);
      return profile ? [profile] : [];
    });
  }

  private changedBlocks(userIds: string[]): void {
    this.blockList.forget(userIds);
    this.d.blocksChanged(userIds);
  }

  /** Mutes the chat for the user until a time in the future, or always (null). */
  async mute(userId: string, chatId: string, until: string | null): Promise<void> {
    let end: Date | null = null;
    if (until !== null) {
      end = new Date(until);
      if (Number.isNaN(end.getTime())) throw invalid("until", "'until' must be an ISO 8601 time, or null");
      if (end.getTime() <= Date.now()) throw invalid("until", "'until' must be in the future");
    }
    await this.memberChat(userId, chatId);
    await this.d.receipts.setMute(chatId, userId, true, end);
  }

  async unmute(userId: string, chatId: string): Promise<void> {
    await this.memberChat(userId, chatId);
    await this.d.receipts.setMute(chatId, userId, false, null);
  }

  /**
   * Moves the user's read mark forward to `seq`, but never past the chat's last message: resolves
   * the mark stored (what the members are told) and whether it moved.
   */
  async markRead(
    userId: string,
    chatId: string,
    seq: number,
  ): Promise<{ moved: boolean; seq: number; members: string[] }> {
    const chat = await this.memberChat(userId, chatId);
    const known = this.knownSeq(chat);
    const upTo = seq <= known ? seq : Math.min(seq, await this.d.messages.maxSeq(chatId, known));
    if (upTo < 1) return { moved: false, seq: upTo, members: chat.members };
    const moved = await this.d.receipts.markRead(chatId, userId, upTo);
    return { moved, seq: upTo, members: chat.members };
  }

  /** What a reconnecting client missed in the listed chats (resume-reader.ts). */
  resume(userId: string, entries: ResumeEntry[]): Promise<ResumeAnswer> {
    return this.resumes.read(userId, entries);
  }

  /** The highest seq known to be taken in the chat: its summary, or what this node stored since. */
  private knownSeq(chat: Chat): number {
    return Math.max(chat.lastSeq, this.seqHints.get(chat._id) ?? 0);
  }

  private async ownMessage(userId: string, chatId: string, messageId: string): Promise<Message> {
    const message = await this.d.messages.findInChat(chatId, messageId);
    if (!message) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    if (message.senderId !== userId)
      throw new ForbiddenError("Only the sender changes a message", "MESSAGE_FORBIDDEN");
    return message;
  }

  /** The first call stores; the ones that join it while it runs get the same message, not created. */
  private async onceInFlight(
    key: string,
    store: () => Promise<{ message: Message; created: boolean }>,
  ): Promise<{ message: Message; created: boolean }> {
    const running = this.inFlight.get(key);
    if (running) return { message: (await running).message, created: false };
    const stored = store();
    this.inFlight.set(key, stored);
    try {
      return await stored;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private noteSeq(chatId: string, seq: number): void {
    if (this.seqHints.size >= SEQ_HINTS_MAX) this.seqHints.clear();
    if ((this.seqHints.get(chatId) ?? 0) < seq) this.seqHints.set(chatId, seq);
  }

  /** A message's text: not blank, unless the message holds files. */
  private checkText(text: string, hasFiles = false): void {
    if (text.trim().length === 0 && !(hasFiles && text === ""))
      throw invalid("message", "The message is empty");
    if ([...text].length > this.d.limits.maxMessageLength) {
      throw invalid("message", `A message has at most ${this.d.limits.maxMessageLength} characters`);
    }
  }
}

function blocked(): ForbiddenError {
  return new ForbiddenError("A block stands between these users", "BLOCKED");
}

/** A send's identity: a resend has the same chat, sender and clientMsgId. */
function sendKey(chatId: string, senderId: string, clientMsgId: string): string {
  return `${chatId}\u0000${senderId}\u0000${clientMsgId}`;
}

function invalid(field: string, message: string): ValidationFailedError {
  return new ValidationFailedError([{ field, type: "invalid", message }]);
}

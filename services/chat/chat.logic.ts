/**
 * Chats, members, messages and read receipts, free of Moleculer. Every action checks membership
 * first: a non-member gets the same 403 whether or not the chat exists, and learns nothing.
 */
import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { ChatView, MessageView, ResumeAnswer, ResumeEntry } from "../../lib/contracts.ts";
import { ForbiddenError, NotFoundError, ValidationFailedError } from "../../lib/errors.ts";
import { LocalCache } from "../../lib/local-cache.ts";
import type { Chat, ChatsRepository, LastMessage } from "./chats.repo.ts";
import { MessageAppender } from "./message-appender.ts";
import type { Message, MessagesRepository } from "./messages.repo.ts";
import type { ReceiptsRepository } from "./receipts.repo.ts";
import { ResumeReader } from "./resume-reader.ts";
import { toChatView, toLast, toMessageView } from "./views.ts";

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
  limits: ChatLimits;
  userExists(id: string): Promise<boolean>;
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
}

const CHAT_LIST_LIMIT = 200;
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
  }

  /** Drops this node's copy of a chat (its members changed here or on another node). */
  forgetChat(chatId: string): void {
    this.members.drop([chatId]);
  }

  async openDirect(userId: string, otherId: string): Promise<{ chat: ChatView; created: boolean }> {
    if (otherId === userId) throw invalid("userId", "A direct chat needs another user");
    if (!(await this.d.userExists(otherId))) throw new NotFoundError("User", "USER_NOT_FOUND");
    const existing = await this.d.chats.findDirect(userId, otherId);
    if (existing) return { chat: toChatView(existing), created: false };
    // Only a chat about to be made counts: opening one that exists (sendTo does, per message) is free.
    await this.d.rates?.chatCreate.consume(userId);
    const { chat, created } = await this.d.chats.directFor(userId, otherId, randomUUID());
    return { chat: toChatView(chat), created };
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
    return toChatView(this.withLatest(await this.memberChat(userId, chatId, true)));
  }

  /** The chat with the summary this node recorded and has not written yet, when that is newer. */
  private withLatest(chat: Chat): Chat {
    const latest = this.d.latestLast(chat._id);
    return latest && latest.seq > chat.lastSeq ? { ...chat, lastSeq: latest.seq, lastMessage: latest } : chat;
  }

  async list(userId: string): Promise<ChatView[]> {
    const chats = await this.d.chats.listForMember(userId, CHAT_LIST_LIMIT);
    const reads = await this.d.receipts.forUser(
      userId,
      chats.map((c) => c._id),
    );
    return chats
      .map((stored) => this.withLatest(stored))
      .sort((a, b) => activity(b) - activity(a))
      .map((c) => ({
        ...toChatView(c),
        unreadCount: Math.max(0, c.lastSeq - (reads.get(c._id) ?? 0)),
      }));
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
    for (const chat of await this.d.chats.listForMembers(userIds)) {
      for (const member of chat.members) {
        if (!wanted.has(member)) continue;
        const set = contacts.get(member) ?? new Set<string>();
        contacts.set(member, set);
        for (const other of chat.members) if (other !== member) set.add(other);
      }
    }
    return new Map(userIds.map((id) => [id, [...(contacts.get(id) ?? [])]]));
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
    return toChatView(updated);
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

  /** Stores a message (idempotent by clientMsgId); resolves it and the members to deliver to. */
  async send(
    userId: string,
    chatId: string,
    text: string,
    clientMsgId: string,
  ): Promise<{ message: MessageView; created: boolean; members: string[] }> {
    await this.d.rates?.send.consume(userId);
    this.checkText(text);
    const chat = await this.memberChat(userId, chatId);
    const input = { chatId, senderId: userId, message: text, clientMsgId };
    const key = sendKey(chatId, userId, clientMsgId);
    const known = this.recentSends.get(key);
    if (known) return { message: toMessageView(known), created: false, members: chat.members };
    // One insert (with the other sends of the moment): a resend this node does not know is
    // refused by the clientMsgId index and answered with the first message.
    const { message, created } = await this.onceInFlight(key, () =>
      this.appender.append(input, chat.lastSeq),
    );
    this.recentSends.set(key, message);
    if (created) this.d.recordLast(chatId, toLast(message));
    return { message: toMessageView(message), created, members: chat.members };
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
    return { messages: (hasMore ? kept : page).map(toMessageView), hasMore };
  }

  async edit(userId: string, chatId: string, messageId: string, text: string) {
    this.checkText(text);
    const chat = await this.memberChat(userId, chatId);
    const message = await this.ownMessage(userId, chatId, messageId);
    if (message.deleted) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    const edited = await this.d.messages.edit(message._id, text, new Date());
    this.recentSends.delete(sendKey(chatId, userId, message.clientMsgId));
    if (!edited) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    await this.d.chats.updateLastMessage(chatId, toLast(edited));
    return { message: toMessageView(edited), members: chat.members };
  }

  async remove(userId: string, chatId: string, messageId: string) {
    const chat = await this.memberChat(userId, chatId);
    const message = await this.ownMessage(userId, chatId, messageId);
    const removed = await this.d.messages.tombstone(message._id, new Date());
    this.recentSends.delete(sendKey(chatId, userId, message.clientMsgId));
    if (!removed) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
    await this.d.chats.updateLastMessage(chatId, toLast(removed));
    return { message: toMessageView(removed), members: chat.members };
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

  private checkText(text: string): void {
    if (text.trim().length === 0) throw invalid("message", "The message is empty");
    if ([...text].length > this.d.limits.maxMessageLength) {
      throw invalid("message", `A message has at most ${this.d.limits.maxMessageLength} characters`);
    }
  }
}

/** When a chat last changed: its newest message, or its own last update (members, creation). */
function activity(chat: Chat): number {
  return Math.max(
    chat.updatedAt.getTime(),
    chat.lastMessage ? new Date(chat.lastMessage.createdAt).getTime() : 0,
  );
}

/** A send's identity: a resend has the same chat, sender and clientMsgId. */
function sendKey(chatId: string, senderId: string, clientMsgId: string): string {
  return `${chatId}\u0000${senderId}\u0000${clientMsgId}`;
}

function invalid(field: string, message: string): ValidationFailedError {
  return new ValidationFailedError([{ field, type: "invalid", message }]);
}

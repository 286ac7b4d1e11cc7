import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

export interface LastMessage {
  id: string;
  seq: number;
  senderId: string;
  message: string;
  createdAt: Date;
  deleted?: boolean;
}

export interface Chat {
  _id: string;
  type: "direct" | "group";
  name: string | null;
  ownerId: string | null;
  members: string[];
  /** For direct chats only: the two member ids, sorted and joined, unique across chats. */
  pairKey?: string;
  /** The highest `seq` known to be taken; the messages collection is the authority. */
  lastSeq: number;
  lastMessage: LastMessage | null;
  createdAt: Date;
  updatedAt: Date;
}

export function pairKeyOf(a: string, b: string): string {
  return [a, b].sort().join(":");
}

export class ChatsRepository extends BaseRepository<Chat> {
  indexes(): IndexSpec[] {
    return [
      { name: "direct_pair_unique", fields: { pairKey: 1 }, unique: true, sparse: true },
      { name: "members_updated", fields: { members: 1, updatedAt: -1 } },
    ];
  }

  async insert(chat: Omit<Chat, "createdAt" | "updatedAt" | "lastSeq" | "lastMessage">): Promise<Chat> {
    return this.collection.insertOne(this.stampNew({ ...chat, lastSeq: 0, lastMessage: null }) as Chat);
  }

  findDirect(a: string, b: string): Promise<Chat | null> {
    return this.collection.findOne({ pairKey: pairKeyOf(a, b) });
  }

  /** The direct chat of a pair, made if missing; resolves whether this call made it. */
  async directFor(a: string, b: string, id: string): Promise<{ chat: Chat; created: boolean }> {
    const pairKey = pairKeyOf(a, b);
    const existing = await this.collection.findOne({ pairKey });
    if (existing) return { chat: existing, created: false };
    try {
      const chat = await this.insert({
        _id: id,
        type: "direct",
        name: null,
        ownerId: null,
        members: [a, b].sort(),
        pairKey,
      });
      return { chat, created: true };
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
      const winner = await this.collection.findOne({ pairKey });
      if (!winner) throw err;
      return { chat: winner, created: false };
    }
  }

  findById(id: string): Promise<Chat | null> {
    return this.collection.findOne({ _id: id });
  }

  listForMember(userId: string, limit: number): Promise<Chat[]> {
    return this.collection.find({ members: userId }, { sort: { updatedAt: -1 }, limit });
  }

  /** Those of the given chats the user is a member of, in one query. */
  memberChatsAmong(userId: string, chatIds: string[]): Promise<Chat[]> {
    if (chatIds.length === 0) return Promise.resolve([]);
    return this.collection.find({ members: userId, _id: { $in: chatIds } }, { limit: chatIds.length });
  }

  /** Every chat any of the users is a member of. */
  listForMembers(userIds: string[]): Promise<Chat[]> {
    return this.collection.find({ members: { $in: userIds } });
  }

  /** Adds a member unless the chat is full; resolves the chat after, or null when refused. */
  async addMember(chatId: string, userId: string, maxMembers: number): Promise<Chat | null> {
    const chat = await this.collection.findOne({ _id: chatId });
    if (!chat) return null;
    if (chat.members.includes(userId)) return chat;
    if (chat.members.length >= maxMembers) return null;
    const members = [...chat.members, userId];
    const n = await this.collection.updateOne(
      { _id: chatId, updatedAt: chat.updatedAt },
      this.stampUpdate({ $set: { members } }),
    );
    return n === 1 ? { ...chat, members } : this.addMember(chatId, userId, maxMembers);
  }

  async removeMember(chatId: string, userId: string): Promise<Chat | null> {
    const chat = await this.collection.findOne({ _id: chatId });
    if (!chat?.members.includes(userId)) return chat;
    const members = chat.members.filter((m) => m !== userId);
    const ownerId = chat.ownerId === userId ? (members[0] ?? null) : chat.ownerId;
    const n = await this.collection.updateOne(
      { _id: chatId, updatedAt: chat.updatedAt },
      this.stampUpdate({ $set: { members, ownerId } }),
    );
    return n === 1 ? { ...chat, members, ownerId } : this.removeMember(chatId, userId);
  }

  /** Moves lastSeq and lastMessage forward (never back) once a message is stored. */
  async recordMessage(chatId: string, last: LastMessage): Promise<void> {
    await this.collection.updateOne(
      { _id: chatId, lastSeq: { $lt: last.seq } },
      this.stampUpdate({ $set: { lastSeq: last.seq, lastMessage: last } }),
    );
  }

  async updateLastMessage(chatId: string, last: LastMessage): Promise<void> {
    await this.collection.updateOne(
      { _id: chatId, "lastMessage.id": last.id },
      { $set: { lastMessage: last } },
    );
  }
}

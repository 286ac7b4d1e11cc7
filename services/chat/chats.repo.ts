import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";
import { CURSOR_LIFETIME_MS } from "./chat-cursor.ts";

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
  /**
   * The chat list's order: the time of the chat's newest message (or of its creation) as ISO text,
   * `|`, its id, so that one string sorts the list and breaks ties (activityKeyOf).
   */
  activityKey: string;
  /** When activityKey was last written. */
  activityWrittenAt: Date;
  /**
   * The activity keys of the last CURSOR_LIFETIME_MS, each with when it was written (and the one
   * before them): a cursor's page places a chat where it stood at the cursor's snapshot time.
   */
  activityLog: ActivityEntry[];
  createdAt: Date;
  updatedAt: Date;
}

export interface ActivityEntry {
  /** When the key was written. */
  w: Date;
  k: string;
}

/** A chat's sort key in the chat list: its activity time, then its id. */
export function activityKeyOf(at: Date, chatId: string): string {
  return `${at.toISOString()}|${chatId}`;
}

/** Entries an activity log keeps at most (one write per chat per 5 s fills it in 33 minutes). */
const ACTIVITY_LOG_MAX = 400;

/**
 * The chat's activity key as of `at`: the last one written by then, undefined when the chat had
 * none (it was made later). A log trimmed past `at` (a cursor older than its lifetime is refused
 * before this) answers its oldest key.
 */
export function activityKeyAt(
  chat: Pick<Chat, "activityLog" | "activityKey">,
  at: number,
): string | undefined {
  let key: string | undefined;
  for (const entry of chat.activityLog ?? []) {
    if (entry.w.getTime() <= at) key = entry.k;
    else break;
  }
  return key;
}

/** The log with a new entry, keeping the entries of the last `keepMs` and the one before them. */
export function appendActivity(log: ActivityEntry[], entry: ActivityEntry, keepMs: number): ActivityEntry[] {
  const cutoff = entry.w.getTime() - keepMs;
  const all = [...log, entry];
  let first = 0;
  while (first + 1 < all.length && (all[first + 1] as ActivityEntry).w.getTime() <= cutoff) first++;
  return all.slice(Math.max(first, all.length - ACTIVITY_LOG_MAX));
}

export function pairKeyOf(a: string, b: string): string {
  return [a, b].sort().join(":");
}

export class ChatsRepository extends BaseRepository<Chat> {
  indexes(): IndexSpec[] {
    return [
      { name: "direct_pair_unique", fields: { pairKey: 1 }, unique: true, sparse: true },
      { name: "members_updated", fields: { members: 1, updatedAt: -1 }, retired: true },
      // A member's chats in activity order, walked a page at a time (the chat list).
      { name: "members_activity", fields: { members: 1, activityKey: -1 }, arrayPrefix: true },
      // The chats whose key moved since a cursor's snapshot: the few written after a time.
      { name: "members_activity_written", fields: { members: 1, activityWrittenAt: -1 }, arrayPrefix: true },
    ];
  }

  override async init(): Promise<void> {
    await super.init();
    await this.backfillActivity();
  }

  /**
   * Gives the chats of an earlier release (before the chat list paged) their activity key, from
   * their last message or creation, as written at their creation: once, on the first start.
   */
  private async backfillActivity(): Promise<void> {
    for (;;) {
      const batch = await this.collection.find({ activityKey: { $exists: false } }, { limit: 500 });
      if (batch.length === 0) return;
      for (const chat of batch) {
        const at = chat.lastMessage ? new Date(chat.lastMessage.createdAt) : chat.createdAt;
        const k = activityKeyOf(at, chat._id);
        await this.collection.updateOne(
          { _id: chat._id, activityKey: { $exists: false } },
          {
            $set: {
              activityKey: k,
              activityWrittenAt: chat.createdAt,
              activityLog: [{ w: chat.createdAt, k }],
            },
          },
        );
      }
    }
  }

  async insert(
    chat: Omit<
      Chat,
      | "createdAt"
      | "updatedAt"
      | "lastSeq"
      | "lastMessage"
      | "activityKey"
      | "activityWrittenAt"
      | "activityLog"
    >,
  ): Promise<Chat> {
    const now = new Date();
    const k = activityKeyOf(now, chat._id);
    return this.collection.insertOne(
      this.stampNew(
        {
          ...chat,
          lastSeq: 0,
          lastMessage: null,
          activityKey: k,
          activityWrittenAt: now,
          activityLog: [{ w: now, k }],
        },
        now,
      ) as Chat,
    );
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

  /**
   * One page of the user's chats as they were ordered at `at` (newest activity first), below the
   * activity key `below` (none: from the top), and whether more follow. Two index reads: the chats
   * whose key was written by `at`, in key order, and the few rewritten since, each placed where
   * its log says it stood at `at`. A chat made after `at` and by `madeBy` (the first page's time)
   * is placed above them by its creation, on whichever page that falls; one made later is left out.
   *
   * The two reads go one after the other, settled first, and a chat both answer is listed once:
   * neither read sees the other's moment, so a chat rewritten between them is in both (and was
   * listed twice), and had the rewritten ones been read first, a chat rewritten between the two
   * reads would be in neither (and skipped).
   */
  async listPage(
    userId: string,
    options: { at: number; below?: string; limit: number; madeBy?: number },
  ): Promise<{ chats: Chat[]; hasMore: boolean }> {
    const at = new Date(options.at);
    const keyFilter = options.below !== undefined ? { activityKey: { $lt: options.below } } : {};
    const settled = await this.collection.find(
      { members: userId, activityWrittenAt: { $lte: at }, ...keyFilter },
      { sort: { activityKey: -1 }, limit: options.limit + 1 },
    );
    const moved = await this.collection.find(
      { members: userId, activityWrittenAt: { $gt: at } },
      { sort: { activityWrittenAt: -1 } },
    );
    const placed = settled.map((chat) => ({ chat, key: chat.activityKey }));
    const listed = new Set(settled.map((chat) => chat._id));
    for (const chat of moved) {
      if (listed.has(chat._id)) continue;
      // A chat made after the snapshot time but by the first page's own time is above the others,
      // by its creation; one made later is not in this listing.
      const first = chat.activityLog?.[0];
      const key =
        activityKeyAt(chat, options.at) ??
        (first && first.w.getTime() <= (options.madeBy ?? options.at) ? first.k : undefined);
      if (key !== undefined && (options.below === undefined || key < options.below))
        placed.push({ chat, key });
    }
    placed.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    const page = placed.slice(0, options.limit);
    return {
      chats: page.map((p) => ({ ...p.chat, activityKey: p.key })),
      hasMore: placed.length > options.limit,
    };
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

  /**
   * Moves lastSeq, lastMessage and the activity key forward (never back) once a message is
   * stored, logging the key with when it was written (for cursors of the chat list).
   */
  async recordMessage(chatId: string, last: LastMessage): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const chat = await this.collection.findOne({ _id: chatId });
      if (!chat || chat.lastSeq >= last.seq) return;
      const candidate = activityKeyOf(new Date(last.createdAt), chatId);
      const set: Record<string, unknown> = { lastSeq: last.seq, lastMessage: last };
      if (candidate > (chat.activityKey ?? "")) {
        const now = new Date();
        set.activityKey = candidate;
        set.activityWrittenAt = now;
        set.activityLog = appendActivity(
          chat.activityLog ?? [],
          { w: now, k: candidate },
          CURSOR_LIFETIME_MS,
        );
      }
      const n = await this.collection.updateOne(
        { _id: chatId, lastSeq: chat.lastSeq },
        this.stampUpdate({ $set: set }),
      );
      if (n === 1) return;
    }
  }

  async updateLastMessage(chatId: string, last: LastMessage): Promise<void> {
    await this.collection.updateOne(
      { _id: chatId, "lastMessage.id": last.id },
      { $set: { lastMessage: last } },
    );
  }
}

import { setTimeout as sleep } from "node:timers/promises";
import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec, Update } from "../../lib/store/types.ts";
import type { StoredAttachment } from "./uploads.repo.ts";

export interface Message {
  _id: string;
  chatId: string;
  seq: number;
  senderId: string;
  message: string;
  clientMsgId: string;
  createdAt: Date;
  updatedAt: Date;
  editedAt?: Date;
  deleted?: boolean;
  /** The message this one answers: its id, and what of it never changes. */
  replyTo?: { id: string; seq: number; senderId: string };
  /** The members `@username` named, resolved when stored or edited. */
  mentions?: string[];
  /** Reactions in order of first use, kept in step with the reactions collection (reactions.ts). */
  reactions?: StoredReaction[];
  /** Changes whenever `reactions` does (and on deletion): the compare-and-set of their writes. */
  reactionsRev?: number;
  /** The files it holds, as they were when it was sent (uploads.repo.ts). */
  attachments?: StoredAttachment[];
}

export interface StoredReaction {
  emoji: string;
  count: number;
  /** The first 50 who reacted with it. */
  userIds: string[];
}

/** What a sender gives for a new message. */
export type NewMessage = Pick<
  Message,
  "chatId" | "senderId" | "message" | "clientMsgId" | "replyTo" | "mentions" | "attachments"
>;

export const SEQ_INDEX = "chat_seq_unique";
export const CLIENT_MSG_INDEX = "chat_sender_client_msg_unique";
export const SENDER_TIME_INDEX = "sender_time";

export function messageIdOf(chatId: string, seq: number): string {
  return `${chatId}_${seq}`;
}

/** Messages looked up at once when a page is read. */
const PAGE_BATCH = 50;

/** How many times a send retries after another writer took the seq it tried. */
const MAX_SEQ_ATTEMPTS = 50;
/** How often, and how long apart, the message a racing resend stored is looked for. */
const FIRST_SENT_LOOKUPS = 3;
const FIRST_SENT_WAIT_MS = 20;

export class MessagesRepository extends BaseRepository<Message> {
  indexes(): IndexSpec[] {
    return [
      // A message's `_id` is `chatId_seq`: the primary key already makes a seq unique per chat,
      // and every read by seq is by `_id`. Keeping this index cost each insert a second compound key.
      { name: SEQ_INDEX, fields: { chatId: 1, seq: 1 }, unique: true, retired: true },
      { name: CLIENT_MSG_INDEX, fields: { chatId: 1, senderId: 1, clientMsgId: 1 }, unique: true },
      // A user's own messages across their chats, oldest first: their export and their erasure.
      { name: SENDER_TIME_INDEX, fields: { senderId: 1, createdAt: 1 } },
    ];
  }

  /**
   * The message a resend's first send stored, once the clientMsgId index refused the resend. The
   * writer that refused it has committed on every backend; the lookups repeat briefly anyway, so
   * a replica or a store that makes the index entry visible before the document cannot fail it.
   */
  private async firstSent(
    input: Pick<Message, "chatId" | "senderId" | "clientMsgId">,
  ): Promise<Message | null> {
    for (let attempt = 1; ; attempt++) {
      const first = await this.findByClientMsgId(input.chatId, input.senderId, input.clientMsgId);
      if (first || attempt >= FIRST_SENT_LOOKUPS) return first;
      await sleep(FIRST_SENT_WAIT_MS);
    }
  }

  findByClientMsgId(chatId: string, senderId: string, clientMsgId: string): Promise<Message | null> {
    return this.collection.findOne({ chatId, senderId, clientMsgId });
  }

  /** The highest seq of a chat, found by `_id` probes up from a seq known to exist (or 0). */
  async maxSeq(chatId: string, knownSeq = 0): Promise<number> {
    const exists = async (seq: number) =>
      (await this.collection.findOne({ _id: messageIdOf(chatId, seq) })) !== null;
    let low = knownSeq;
    let step = 1;
    while (await exists(low + step)) {
      low += step;
      step *= 2;
    }
    let high = low + step;
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      if (await exists(mid)) low = mid;
      else high = mid;
    }
    return low;
  }

  /**
   * Stores a message at the next free `seq` of its chat, in one insert when nothing races it. A
   * message's `_id` is `chatId_seq`, so the store's unique `_id` makes it the arbiter between
   * writers on any number of nodes, and every probe is a lookup by `_id` (cheap on every backend):
   * a writer that loses a seq tries the next one, so seqs have no gaps and no duplicates. The
   * unique (chatId, senderId, clientMsgId) index makes a resend resolve to the first message
   * instead of storing a second: its insert is refused, and the first is read by that index.
   */
  async append(input: NewMessage, seqHint: number): Promise<{ message: Message; created: boolean }> {
    let seq = seqHint + 1;
    for (let attempt = 0; attempt < MAX_SEQ_ATTEMPTS; attempt++) {
      const _id = messageIdOf(input.chatId, seq);
      try {
        // Which index refused it is found below by `_id`, which FerretDB answers from its key.
        const message = await this.collection.insertOne(this.newMessage(input, seq), {
          identifyIndex: false,
        });
        return { message, created: true };
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err;
        const taken = await this.collection.findOne({ _id });
        if (taken && taken.senderId === input.senderId && taken.clientMsgId === input.clientMsgId) {
          return { message: taken, created: false };
        }
        if (!taken) {
          // The seq is free, so the clientMsgId index refused it: a resend stored it first.
          const first = await this.firstSent(input);
          if (first) return { message: first, created: false };
          throw err;
        }
        seq = await this.nextFreeSeq(input.chatId, seq + 1);
      }
    }
    throw new Error(`No free seq in chat ${input.chatId} after ${MAX_SEQ_ATTEMPTS} attempts`);
  }

  /** The document of a new message at `seq`. */
  newMessage(input: NewMessage, seq: number): Message {
    return this.stampNew({ ...input, _id: messageIdOf(input.chatId, seq), seq });
  }

  /**
   * Stores new messages in one call, in order, stopping at the first a unique index refuses (its
   * seq is taken, or it is a resend): resolves how many, the first ones, were stored.
   */
  insertMany(messages: Message[]): Promise<number> {
    return this.collection.insertMany(messages);
  }

  /**
   * The first seq from `from` on that no message holds yet (`from - 1` is known to be taken).
   * Seqs have no holes, so it is found by galloping and bisecting (maxSeq): a node whose hint is
   * far behind (restarted, or the other node appended many since) costs O(log gap) lookups, not
   * one per message it missed.
   */
  private async nextFreeSeq(chatId: string, from: number): Promise<number> {
    return (await this.maxSeq(chatId, from - 1)) + 1;
  }

  /**
   * Messages after `after` (ascending), or the newest ones before `before` (or overall), ascending.
   * Seqs have no holes, so a page is read by `_id` (`chatId_seq`), a lookup every backend answers
   * from its primary key, whatever the size of the collection.
   */
  async page(
    chatId: string,
    options: { before?: number; after?: number; limit: number; seqHint: number },
  ): Promise<Message[]> {
    if (options.after !== undefined) return this.run(chatId, options.after + 1, options.limit, 1);
    const top =
      options.before !== undefined ? options.before - 1 : await this.maxSeq(chatId, options.seqHint);
    const newest = await this.run(chatId, top, Math.min(options.limit, Math.max(0, top)), -1);
    return newest.reverse();
  }

  /** Up to `count` consecutive messages from `from`, in `step` direction, stopping at the first missing. */
  private async run(chatId: string, from: number, count: number, step: 1 | -1): Promise<Message[]> {
    const found: Message[] = [];
    for (let seq = from; found.length < count && seq >= 1; ) {
      const batch = Array.from(
        { length: Math.min(PAGE_BATCH, count - found.length) },
        (_, i) => seq + i * step,
      ).filter((n) => n >= 1);
      const docs = await this.collection.findByIds(batch.map((n) => messageIdOf(chatId, n)));
      for (const doc of docs) {
        if (!doc) return found;
        found.push(doc);
      }
      seq += batch.length * step;
    }
    return found;
  }

  findInChat(chatId: string, id: string): Promise<Message | null> {
    return this.collection.findOne({ _id: id, chatId });
  }

  edit(id: string, message: string, mentions: string[], now: Date): Promise<Message | null> {
    return this.collection.findOneAndUpdate(
      { _id: id, deleted: { $ne: true } },
      this.stampUpdate({ $set: { message, mentions, editedAt: now } }),
    );
  }

  /** Empties a message, its mentions and reactions; the revision moves so no reaction write lands after. */
  tombstone(id: string, now: Date): Promise<Message | null> {
    return this.collection.findOneAndUpdate({ _id: id }, this.stampUpdate(tombstoneOf(now)));
  }

  /** The messages with these ids (of any chat; callers check), null where none. */
  byIds(ids: string[]): Promise<(Message | null)[]> {
    return this.collection.findByIds(ids);
  }

  /**
   * Replaces the reactions if they are still at revision `rev` (0: never written); resolves
   * whether they were.
   */
  async setReactions(id: string, rev: number, reactions: StoredReaction[]): Promise<boolean> {
    const n = await this.collection.updateOne(
      { _id: id, ...(rev === 0 ? { reactionsRev: { $exists: false } } : { reactionsRev: rev }) },
      { $set: { reactions, reactionsRev: rev + 1 } },
    );
    return n === 1;
  }

  /**
   * Up to `limit` of the sender's messages (of every chat), oldest first: those sent at or after
   * `from` (all when absent), the first `skip` of them left out (the ones a previous page gave
   * that were sent at exactly `from`).
   */
  bySender(senderId: string, from: Date | undefined, skip: number, limit: number): Promise<Message[]> {
    return this.collection.find(from === undefined ? { senderId } : { senderId, createdAt: { $gte: from } }, {
      sort: { createdAt: 1, _id: 1 },
      skip,
      limit,
    });
  }

  /**
   * Empties the files of up to `limit` of the sender's messages that still hold any, in one
   * update; resolves how many. Those emptied no longer match, so repeated calls finish them all.
   */
  async emptyAttachmentsOf(senderId: string, limit: number): Promise<number> {
    const held = await this.collection.find({ senderId, attachments: { $exists: true, $ne: [] } }, { limit });
    if (held.length === 0) return 0;
    await this.collection.updateMany(
      { _id: { $in: held.map((m) => m._id) } },
      this.stampUpdate({ $set: { attachments: [] } }),
    );
    return held.length;
  }

  /**
   * Tombstones up to `limit` of the sender's messages that are not deleted yet, in one update, as
   * `tombstone` does one: resolves how many. Repeated calls finish them all.
   */
  async tombstoneSomeOf(senderId: string, limit: number, now: Date): Promise<number> {
    const live = await this.collection.find({ senderId, deleted: { $ne: true } }, { limit });
    if (live.length === 0) return 0;
    await this.collection.updateMany(
      { _id: { $in: live.map((m) => m._id) }, deleted: { $ne: true } },
      this.stampUpdate(
        {
          $set: { message: "", deleted: true, editedAt: now, mentions: [], reactions: [], attachments: [] },
          $inc: { reactionsRev: 1 },
        },
        now,
      ),
    );
    return live.length;
  }
}

/** What deleting a message writes: empty text, mentions, reactions and files; the revision moves. */
function tombstoneOf(now: Date): Update {
  return {
    $set: { message: "", deleted: true, editedAt: now, mentions: [], reactions: [], attachments: [] },
    $inc: { reactionsRev: 1 },
  };
}

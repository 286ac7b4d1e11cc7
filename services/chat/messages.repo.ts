import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

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
}

export const SEQ_INDEX = "chat_seq_unique";
export const CLIENT_MSG_INDEX = "chat_sender_client_msg_unique";

export function messageIdOf(chatId: string, seq: number): string {
  return `${chatId}_${seq}`;
}

/** How many times a send retries after another writer took the seq it tried. */
const MAX_SEQ_ATTEMPTS = 50;

export class MessagesRepository extends BaseRepository<Message> {
  indexes(): IndexSpec[] {
    return [
      { name: SEQ_INDEX, fields: { chatId: 1, seq: 1 }, unique: true },
      { name: CLIENT_MSG_INDEX, fields: { chatId: 1, senderId: 1, clientMsgId: 1 }, unique: true },
    ];
  }

  findByClientMsgId(chatId: string, senderId: string, clientMsgId: string): Promise<Message | null> {
    return this.collection.findOne({ chatId, senderId, clientMsgId });
  }

  async maxSeq(chatId: string): Promise<number> {
    const [last] = await this.collection.find({ chatId }, { sort: { seq: -1 }, limit: 1 });
    return last?.seq ?? 0;
  }

  /**
   * Stores a message at the next free `seq` of its chat. A message's `_id` is `chatId_seq`, so the
   * store's unique `_id` makes it the arbiter between writers on any number of nodes, and every
   * probe is a lookup by `_id` (cheap on every backend): a writer that loses a seq tries the next
   * one, so seqs have no gaps and no duplicates. The unique (chatId, senderId, clientMsgId) index
   * makes a resend resolve to the first message instead of storing a second.
   */
  async append(
    input: Omit<Message, "_id" | "seq" | "createdAt" | "updatedAt">,
    seqHint: number,
  ): Promise<{ message: Message; created: boolean }> {
    let seq = seqHint + 1;
    for (let attempt = 0; attempt < MAX_SEQ_ATTEMPTS; attempt++) {
      const _id = messageIdOf(input.chatId, seq);
      try {
        const message = await this.collection.insertOne(this.stampNew({ ...input, _id, seq }) as Message);
        return { message, created: true };
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err;
        const taken = await this.collection.findOne({ _id });
        if (taken && taken.senderId === input.senderId && taken.clientMsgId === input.clientMsgId) {
          return { message: taken, created: false };
        }
        if (!taken) {
          const first = await this.findByClientMsgId(input.chatId, input.senderId, input.clientMsgId);
          if (first) return { message: first, created: false };
          throw err;
        }
        seq = await this.nextFreeSeq(input.chatId, seq + 1);
      }
    }
    throw new Error(`No free seq in chat ${input.chatId} after ${MAX_SEQ_ATTEMPTS} attempts`);
  }

  /** The first seq from `from` on that no message holds yet, probing by `_id`. */
  private async nextFreeSeq(chatId: string, from: number): Promise<number> {
    let seq = from;
    while (await this.collection.findOne({ _id: messageIdOf(chatId, seq) })) seq += 1;
    return seq;
  }

  /** Messages after `after` (ascending) or before `before` (the newest of them), ascending. */
  async page(
    chatId: string,
    options: { before?: number; after?: number; limit: number },
  ): Promise<Message[]> {
    if (options.after !== undefined) {
      return this.collection.find(
        { chatId, seq: { $gt: options.after } },
        { sort: { seq: 1 }, limit: options.limit },
      );
    }
    const filter = options.before !== undefined ? { chatId, seq: { $lt: options.before } } : { chatId };
    const newest = await this.collection.find(filter, { sort: { seq: -1 }, limit: options.limit });
    return newest.reverse();
  }

  findInChat(chatId: string, id: string): Promise<Message | null> {
    return this.collection.findOne({ _id: id, chatId });
  }

  edit(id: string, message: string, now: Date): Promise<Message | null> {
    return this.collection.findOneAndUpdate(
      { _id: id, deleted: { $ne: true } },
      this.stampUpdate({ $set: { message, editedAt: now } }),
    );
  }

  tombstone(id: string, now: Date): Promise<Message | null> {
    return this.collection.findOneAndUpdate(
      { _id: id },
      this.stampUpdate({ $set: { message: "", deleted: true, editedAt: now } }),
    );
  }
}

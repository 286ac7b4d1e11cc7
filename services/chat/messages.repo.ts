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
   * Stores a message at the next free `seq` of its chat. The unique (chatId, seq) index makes the
   * store the arbiter between writers on any number of nodes: a writer that loses a seq reads the
   * new maximum and tries the next one, so seqs have no gaps and no duplicates. The unique
   * (chatId, senderId, clientMsgId) index makes a resend resolve to the first message.
   */
  async append(
    input: Omit<Message, "seq" | "createdAt" | "updatedAt">,
    seqHint: number,
  ): Promise<{ message: Message; created: boolean }> {
    let seq = seqHint + 1;
    for (let attempt = 0; attempt < MAX_SEQ_ATTEMPTS; attempt++) {
      try {
        const message = await this.collection.insertOne(this.stampNew({ ...input, seq }) as Message);
        return { message, created: true };
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err;
        const first = await this.findByClientMsgId(input.chatId, input.senderId, input.clientMsgId);
        if (first) return { message: first, created: false };
        seq = (await this.maxSeq(input.chatId)) + 1;
      }
    }
    throw new Error(`No free seq in chat ${input.chatId} after ${MAX_SEQ_ATTEMPTS} attempts`);
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

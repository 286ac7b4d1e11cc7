import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** A member's last read `seq` in a chat; `_id` is `chatId:userId`. */
export interface Receipt {
  _id: string;
  chatId: string;
  userId: string;
  lastReadSeq: number;
  createdAt: Date;
  updatedAt: Date;
}

export class ReceiptsRepository extends BaseRepository<Receipt> {
  indexes(): IndexSpec[] {
    return [{ name: "user_chats", fields: { userId: 1, chatId: 1 } }];
  }

  /** Moves the read mark forward only; resolves whether it moved. */
  async markRead(chatId: string, userId: string, seq: number): Promise<boolean> {
    const _id = `${chatId}:${userId}`;
    const moved = await this.collection.updateOne(
      { _id, lastReadSeq: { $lt: seq } },
      this.stampUpdate({ $set: { lastReadSeq: seq } }),
    );
    if (moved === 1) return true;
    if (await this.collection.findOne({ _id })) return false;
    try {
      await this.collection.insertOne(this.stampNew({ _id, chatId, userId, lastReadSeq: seq }) as Receipt);
      return true;
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
      return this.markRead(chatId, userId, seq);
    }
  }

  async forUser(userId: string, chatIds: string[]): Promise<Map<string, number>> {
    const receipts = await this.collection.find(
      { userId, chatId: { $in: chatIds } },
      { limit: chatIds.length },
    );
    return new Map(receipts.map((r) => [r.chatId, r.lastReadSeq]));
  }
}

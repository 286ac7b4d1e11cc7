import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** A pinned message of a chat; `_id` is `chatId|messageId`. */
export interface Pin {
  _id: string;
  chatId: string;
  messageId: string;
  pinnedBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export class PinsRepository extends BaseRepository<Pin> {
  indexes(): IndexSpec[] {
    return [{ name: "chat_time", fields: { chatId: 1, createdAt: -1 } }];
  }

  /** Pins the message; resolves false when it was pinned already. */
  add(chatId: string, messageId: string, pinnedBy: string): Promise<boolean> {
    return this.insertIfNew({ _id: idOf(chatId, messageId), chatId, messageId, pinnedBy });
  }

  async remove(chatId: string, messageId: string): Promise<boolean> {
    return (await this.collection.deleteOne({ _id: idOf(chatId, messageId) })) === 1;
  }

  count(chatId: string): Promise<number> {
    return this.collection.count({ chatId });
  }

  /** The chat's pins, newest first. */
  list(chatId: string, limit: number): Promise<Pin[]> {
    return this.collection.find({ chatId }, { sort: { createdAt: -1, _id: -1 }, limit });
  }
}

function idOf(chatId: string, messageId: string): string {
  return `${chatId}|${messageId}`;
}

import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/** One user's reaction with one emoji to one message; `_id` is `messageId|emoji|userId`. */
export interface Reaction {
  _id: string;
  chatId: string;
  messageId: string;
  emoji: string;
  userId: string;
  createdAt: Date;
  updatedAt: Date;
}

/** The reactors a message's summary names per emoji. */
export const REACTORS_SHOWN = 50;

export class ReactionsRepository extends BaseRepository<Reaction> {
  indexes(): IndexSpec[] {
    return [{ name: "message_emoji_time", fields: { messageId: 1, emoji: 1, createdAt: 1 } }];
  }

  /** Stores the reaction; resolves false when it was there already. */
  add(chatId: string, messageId: string, emoji: string, userId: string): Promise<boolean> {
    return this.insertIfNew({ _id: idOf(messageId, emoji, userId), chatId, messageId, emoji, userId });
  }

  /** Removes the reaction; resolves false when there was none. */
  async remove(messageId: string, emoji: string, userId: string): Promise<boolean> {
    return (await this.collection.deleteOne({ _id: idOf(messageId, emoji, userId) })) === 1;
  }

  /** How many reacted with the emoji, and the first REACTORS_SHOWN of them in the order they did. */
  async tally(messageId: string, emoji: string): Promise<{ count: number; userIds: string[] }> {
    const [count, first] = await Promise.all([
      this.collection.count({ messageId, emoji }),
      this.collection.find({ messageId, emoji }, { sort: { createdAt: 1, _id: 1 }, limit: REACTORS_SHOWN }),
    ]);
    return { count, userIds: first.map((r) => r.userId) };
  }

  /** Drops every reaction of a message (it was deleted). */
  async removeAll(messageId: string): Promise<void> {
    await this.collection.deleteMany({ messageId });
  }
}

function idOf(messageId: string, emoji: string, userId: string): string {
  return `${messageId}|${emoji}|${userId}`;
}

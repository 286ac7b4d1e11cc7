/**
 * Reactions: each one a document of its own (so adding and removing are single inserts and deletes,
 * idempotent by `_id`, on any number of chat nodes at once), and on the message a summary per emoji
 * (count, first reactors) that history pages read without another query.
 *
 * The summary is a read-modify-write compared and set on the message's `reactionsRev`, and each
 * attempt counts the emoji's reactions after reading the revision it writes over. So the write that
 * lands last counted after every reaction stored before it: fifty concurrent reactions end with the
 * count at fifty, whatever order their writes land in.
 */
import { NotFoundError, ValidationFailedError } from "../../lib/errors.ts";
import { normalizeEmoji } from "./emoji.ts";
import type { Message, MessagesRepository, StoredReaction } from "./messages.repo.ts";
import type { ReactionsRepository } from "./reactions.repo.ts";

/** Distinct emoji a message takes. */
export const MAX_EMOJI_PER_MESSAGE = 20;
const CAS_ATTEMPTS = 200;

export interface ReactionChange {
  /** Whether anything changed (a repeated add or a remove of nothing changes nothing). */
  changed: boolean;
  emoji: string;
  /** The emoji's count after the change. */
  count: number;
}

export class Reactions {
  private readonly messages: MessagesRepository;
  private readonly reactions: ReactionsRepository;

  constructor(messages: MessagesRepository, reactions: ReactionsRepository) {
    this.messages = messages;
    this.reactions = reactions;
  }

  /** The emoji as stored, or a 422 naming `emoji`. */
  static emojiOf(text: string): string {
    const emoji = normalizeEmoji(text);
    if (emoji === null) {
      throw new ValidationFailedError([
        { field: "emoji", type: "emoji", message: "The 'emoji' must be exactly one emoji" },
      ]);
    }
    return emoji;
  }

  async add(message: Message, emojiText: string, userId: string): Promise<ReactionChange> {
    const emoji = Reactions.emojiOf(emojiText);
    const known = message.reactions ?? [];
    if (!known.some((r) => r.emoji === emoji) && known.length >= MAX_EMOJI_PER_MESSAGE) throw tooMany();
    if (!(await this.reactions.add(message.chatId, message._id, emoji, userId))) {
      return { changed: false, emoji, count: known.find((r) => r.emoji === emoji)?.count ?? 1 };
    }
    try {
      return { changed: true, emoji, count: await this.summarise(message._id, emoji, true) };
    } catch (err) {
      // Refused (too many emoji, the message was deleted meanwhile) or failed: the reaction goes.
      await this.reactions.remove(message._id, emoji, userId);
      throw err;
    }
  }

  async remove(message: Message, emojiText: string, userId: string): Promise<ReactionChange> {
    const emoji = Reactions.emojiOf(emojiText);
    if (!(await this.reactions.remove(message._id, emoji, userId)))
      return { changed: false, emoji, count: 0 };
    return { changed: true, emoji, count: await this.summarise(message._id, emoji, false) };
  }

  /** A deleted message keeps no reactions (its summary was emptied by the tombstone). */
  clear(messageId: string): Promise<void> {
    return this.reactions.removeAll(messageId);
  }

  /** Rewrites the emoji's entry of the message's summary; resolves its count. */
  private async summarise(messageId: string, emoji: string, adding: boolean): Promise<number> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const [message] = await this.messages.byIds([messageId]);
      if (!message || message.deleted) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
      const summary = message.reactions ?? [];
      const at = summary.findIndex((r) => r.emoji === emoji);
      if (adding && at < 0 && summary.length >= MAX_EMOJI_PER_MESSAGE) throw tooMany();
      const { count, userIds } = await this.reactions.tally(messageId, emoji);
      const next: StoredReaction[] = [...summary];
      if (count === 0) {
        if (at >= 0) next.splice(at, 1);
      } else if (at >= 0) next[at] = { emoji, count, userIds };
      else next.push({ emoji, count, userIds });
      if (await this.messages.setReactions(messageId, message.reactionsRev ?? 0, next)) return count;
    }
    throw new Error(`The reactions of ${messageId} changed ${CAS_ATTEMPTS} times while being written`);
  }
}

function tooMany(): ValidationFailedError {
  return new ValidationFailedError([
    {
      field: "emoji",
      type: "reactionLimit",
      message: `A message takes at most ${MAX_EMOJI_PER_MESSAGE} different emoji`,
    },
  ]);
}

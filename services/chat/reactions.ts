/**
 * Reactions: each one a document of its own (so adding and removing are single inserts and deletes,
 * idempotent by `_id`, on any number of chat nodes at once), and on the message a summary per emoji
 * (count, first reactors) that history pages read without another query.
 *
 * The summary is rewritten by one run at a time per message on a node: the reactions that arrive
 * while a run works wait for the next, which counts every emoji they touched in one go, so fifty
 * members reacting at once cost a couple of runs, not fifty racing rewrites (chat.react is sharded
 * by chat, so one node gets them). Each run is a read-modify-write compared and set on the
 * message's `reactionsRev`, counting after reading the revision it writes over: when two nodes do
 * write at once (the chat moved to another node), the write that lands last counted after every
 * reaction stored before it, so the count ends right whatever order the writes land in.
 */
import { NotFoundError, ValidationFailedError } from "../../lib/errors.ts";
import { normalizeEmoji } from "./emoji.ts";
import type { Message, MessagesRepository, StoredReaction } from "./messages.repo.ts";
import type { ReactionsRepository } from "./reactions.repo.ts";

/** Distinct emoji a message takes. */
export const MAX_EMOJI_PER_MESSAGE = 20;
const CAS_ATTEMPTS = 100;

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
  /** The summary rewrites of each message that has reactions waiting on this node. */
  private readonly runs = new Map<string, RunState>();

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
      return { changed: true, emoji, count: await this.summarise(message._id, emoji) };
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
    return { changed: true, emoji, count: await this.summarise(message._id, emoji) };
  }

  /** A deleted message keeps no reactions (its summary was emptied by the tombstone). */
  clear(messageId: string): Promise<void> {
    return this.reactions.removeAll(messageId);
  }

  /** Rewrites the emoji's entry of the message's summary (in the message's next run); resolves its count. */
  private summarise(messageId: string, emoji: string): Promise<number> {
    return new Promise((resolve, reject) => {
      let state = this.runs.get(messageId);
      if (!state) {
        state = { running: false, waiting: [] };
        this.runs.set(messageId, state);
      }
      state.waiting.push({ emoji, resolve, reject });
      if (!state.running) void this.run(messageId, state);
    });
  }

  /** Runs the message's summary rewrites until no reaction waits for one. */
  private async run(messageId: string, state: RunState): Promise<void> {
    state.running = true;
    while (state.waiting.length > 0) {
      const batch = state.waiting.splice(0);
      try {
        const outcome = await this.rewrite(messageId, batch);
        for (const w of batch) {
          const count = outcome.counts.get(w.emoji);
          if (count === undefined) w.reject(outcome.refused);
          else w.resolve(count);
        }
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    state.running = false;
    this.runs.delete(messageId);
  }

  /**
   * One compare-and-set rewrite for the batch's emoji: each counted anew, a new emoji beyond the
   * 20th refused (its reactions get `refused`), an emoji nobody uses any more dropped.
   */
  private async rewrite(
    messageId: string,
    batch: Waiting[],
  ): Promise<{ counts: Map<string, number>; refused: Error }> {
    const emojis = [...new Set(batch.map((w) => w.emoji))];
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const [message] = await this.messages.byIds([messageId]);
      if (!message || message.deleted) throw new NotFoundError("Message", "MESSAGE_NOT_FOUND");
      const tallies = await Promise.all(emojis.map((e) => this.reactions.tally(messageId, e)));
      const next: StoredReaction[] = [...(message.reactions ?? [])];
      const counts = new Map<string, number>();
      emojis.forEach((emoji, i) => {
        const { count, userIds } = tallies[i] as { count: number; userIds: string[] };
        const at = next.findIndex((r) => r.emoji === emoji);
        if (count === 0) {
          if (at >= 0) next.splice(at, 1);
          counts.set(emoji, 0);
        } else if (at >= 0) {
          next[at] = { emoji, count, userIds };
          counts.set(emoji, count);
        } else if (next.length < MAX_EMOJI_PER_MESSAGE) {
          next.push({ emoji, count, userIds });
          counts.set(emoji, count);
        }
        // Otherwise a new emoji that does not fit: left out, and its reactions are refused.
      });
      if (await this.messages.setReactions(messageId, message.reactionsRev ?? 0, next)) {
        return { counts, refused: tooMany() };
      }
    }
    throw new Error(`The reactions of ${messageId} changed ${CAS_ATTEMPTS} times while being written`);
  }
}

interface Waiting {
  emoji: string;
  resolve(count: number): void;
  reject(err: unknown): void;
}

interface RunState {
  running: boolean;
  waiting: Waiting[];
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

import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

/**
 * A member's own state in a chat; `_id` is `chatId:userId`: the last read `seq`, the seqs of the
 * messages that mention them and are not read yet, and whether they muted the chat.
 */
export interface Receipt {
  _id: string;
  chatId: string;
  userId: string;
  lastReadSeq: number;
  /** Seqs of messages that mention the user, ascending; those up to lastReadSeq no longer count. */
  mentionSeqs?: number[];
  /** Changes whenever mentionSeqs does: the compare-and-set of its read-modify-writes. */
  mentionsRev?: number;
  muted?: boolean;
  /** The end of a mute; null for always. */
  mutedUntil?: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Unread mentions a receipt keeps per chat at most (the count shown tops out there). */
const MENTIONS_KEPT = 100;
const CAS_ATTEMPTS = 50;

export function receiptIdOf(chatId: string, userId: string): string {
  return `${chatId}:${userId}`;
}

/** Unread mentions: those after the read mark. */
export function mentionCountOf(receipt: Receipt | undefined): number {
  if (!receipt?.mentionSeqs) return 0;
  return receipt.mentionSeqs.filter((s) => s > receipt.lastReadSeq).length;
}

/** Whether the receipt's mute is in force at `now`, and until when (null: always or not muted). */
export function muteOf(
  receipt: Receipt | undefined,
  now = Date.now(),
): { muted: boolean; mutedUntil: string | null } {
  if (!receipt?.muted) return { muted: false, mutedUntil: null };
  const until = receipt.mutedUntil ?? null;
  if (until === null) return { muted: true, mutedUntil: null };
  return until.getTime() > now
    ? { muted: true, mutedUntil: until.toISOString() }
    : { muted: false, mutedUntil: null };
}

export class ReceiptsRepository extends BaseRepository<Receipt> {
  indexes(): IndexSpec[] {
    return [{ name: "user_chats", fields: { userId: 1, chatId: 1 } }];
  }

  /** Moves the read mark forward only; resolves whether it moved. */
  async markRead(chatId: string, userId: string, seq: number): Promise<boolean> {
    const _id = receiptIdOf(chatId, userId);
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

  /** The receipts of the user in the given chats, by chat id. */
  async forUser(userId: string, chatIds: string[]): Promise<Map<string, Receipt>> {
    if (chatIds.length === 0) return new Map();
    const receipts = await this.collection.find(
      { userId, chatId: { $in: chatIds } },
      { limit: chatIds.length },
    );
    return new Map(receipts.map((r) => [r.chatId, r]));
  }

  async get(chatId: string, userId: string): Promise<Receipt | undefined> {
    return (await this.collection.findOne({ _id: receiptIdOf(chatId, userId) })) ?? undefined;
  }

  /** Notes that the message at `seq` mentions the user (unless they read past it already). */
  addMention(chatId: string, userId: string, seq: number): Promise<void> {
    return this.changeMentions(chatId, userId, (seqs, read) =>
      seq <= read || seqs.includes(seq) ? undefined : [...seqs, seq].sort((a, b) => a - b),
    );
  }

  /** The message at `seq` no longer mentions the user (edited, or deleted). */
  removeMention(chatId: string, userId: string, seq: number): Promise<void> {
    return this.changeMentions(chatId, userId, (seqs) =>
      seqs.includes(seq) ? seqs.filter((s) => s !== seq) : undefined,
    );
  }

  /**
   * A read-modify-write of the mention list, compared and set on its revision, so concurrent
   * mentions on several chat nodes all count. `change` answers undefined for "nothing to do". Read
   * seqs are dropped as it goes.
   */
  private async changeMentions(
    chatId: string,
    userId: string,
    change: (seqs: number[], lastReadSeq: number) => number[] | undefined,
  ): Promise<void> {
    const _id = receiptIdOf(chatId, userId);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const receipt = await this.ensure(chatId, userId);
      const unread = (receipt.mentionSeqs ?? []).filter((s) => s > receipt.lastReadSeq);
      const next = change(unread, receipt.lastReadSeq);
      if (next === undefined) return;
      const rev = receipt.mentionsRev ?? 0;
      const n = await this.collection.updateOne(
        { _id, ...(rev === 0 ? { mentionsRev: { $exists: false } } : { mentionsRev: rev }) },
        this.stampUpdate({ $set: { mentionSeqs: next.slice(-MENTIONS_KEPT), mentionsRev: rev + 1 } }),
      );
      if (n === 1) return;
    }
    throw new Error(`The mentions of ${_id} changed ${CAS_ATTEMPTS} times while being written`);
  }

  /** Mutes the chat for the user until `until` (null: always), or unmutes it (`muted` false). */
  async setMute(chatId: string, userId: string, muted: boolean, until: Date | null): Promise<void> {
    await this.ensure(chatId, userId);
    await this.collection.updateOne(
      { _id: receiptIdOf(chatId, userId) },
      this.stampUpdate({ $set: { muted, mutedUntil: muted ? until : null } }),
    );
  }

  /** The user's receipt of the chat, made (read mark 0) when there is none. */
  private async ensure(chatId: string, userId: string): Promise<Receipt> {
    const _id = receiptIdOf(chatId, userId);
    const found = await this.collection.findOne({ _id });
    if (found) return found;
    try {
      return await this.collection.insertOne(
        this.stampNew({ _id, chatId, userId, lastReadSeq: 0 }) as Receipt,
      );
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
      const winner = await this.collection.findOne({ _id });
      if (!winner) throw err;
      return winner;
    }
  }
}

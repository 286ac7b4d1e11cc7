/**
 * Keeps each chat document's lastSeq and lastMessage up to date off the send path: the message is
 * stored and acknowledged first, then the chat's summary is written, at most one write per chat at
 * a time with the newest value winning. A busy chat costs one summary write per round trip of the
 * store instead of one per message, and senders never queue behind each other on the chat document.
 */
import type { ChatsRepository, LastMessage } from "./chats.repo.ts";

export class LastMessageWriter {
  private readonly chats: ChatsRepository;
  private readonly onError: (err: unknown) => void;
  private readonly pending = new Map<string, LastMessage>();
  private readonly writing = new Set<string>();
  private idle: Promise<void> = Promise.resolve();
  private settle: (() => void) | undefined;

  constructor(chats: ChatsRepository, onError: (err: unknown) => void) {
    this.chats = chats;
    this.onError = onError;
  }

  record(chatId: string, last: LastMessage): void {
    const queued = this.pending.get(chatId);
    if (!queued || queued.seq < last.seq) this.pending.set(chatId, last);
    if (!this.writing.has(chatId)) void this.drain(chatId);
  }

  /** Resolves once every recorded summary has been written (or failed). */
  flushed(): Promise<void> {
    return this.writing.size === 0 ? Promise.resolve() : this.idle;
  }

  private async drain(chatId: string): Promise<void> {
    if (this.writing.size === 0) this.idle = new Promise((resolve) => (this.settle = resolve));
    this.writing.add(chatId);
    for (let last = this.pending.get(chatId); last; last = this.pending.get(chatId)) {
      this.pending.delete(chatId);
      try {
        await this.chats.recordMessage(chatId, last);
      } catch (err) {
        this.onError(err);
      }
    }
    this.writing.delete(chatId);
    if (this.writing.size === 0) this.settle?.();
  }
}

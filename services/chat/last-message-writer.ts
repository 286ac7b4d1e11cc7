/**
 * Keeps each chat document's lastSeq and lastMessage up to date off the send path: the message is
 * stored and acknowledged first, then the chat's summary is written, at most one write per chat
 * every WRITE_INTERVAL_MS with the newest value winning. A busy chat costs about one summary write
 * a second instead of one per message, and senders never queue behind each other on the chat
 * document; the chat list may show a last message up to that long old.
 */
import type { ChatsRepository, LastMessage } from "./chats.repo.ts";

const WRITE_INTERVAL_MS = 1_000;

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
      const started = Date.now();
      try {
        await this.chats.recordMessage(chatId, last);
      } catch (err) {
        this.onError(err);
      }
      if (this.pending.has(chatId)) await delay(WRITE_INTERVAL_MS - (Date.now() - started));
    }
    this.writing.delete(chatId);
    if (this.writing.size === 0) this.settle?.();
  }
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms).unref()) : Promise.resolve();
}

/**
 * Keeps each chat document's lastSeq and lastMessage up to date off the send path: the message is
 * stored and acknowledged first, then the chat's summary is written, at once for a chat that was
 * quiet, then at most one write per chat every `intervalMs` (5 s) with the newest value winning.
 * A busy chat costs one summary write per interval instead of one per message, and senders never
 * queue behind each other on the chat document. The chat list this node answers overlays the
 * summaries it has not written yet (`latest`), so it is exact on one node; another chat node's
 * list may show a last message up to the interval old.
 *
 * At most MAX_IN_FLIGHT summary writes run at once on a node, whatever the number of chats: with
 * many quiet chats (10,000 users in groups of 10 each sending now and then) nearly every message
 * was a write of its own, and on FerretDB such a write is four store operations (a lock taken and
 * freed around a read and an update), which took the store's time from the sends; on the embedded
 * store, updating a chat re-indexes its members, which cost twice a message insert.
 * Chats waiting for a turn keep only their newest summary, so under load the summaries lag (by
 * about chats waiting / write rate) instead of the sends.
 */
import type { ChatsRepository, LastMessage } from "./chats.repo.ts";

const WRITE_INTERVAL_MS = 5_000;
export const MAX_IN_FLIGHT = 2;

export class LastMessageWriter {
  private readonly chats: ChatsRepository;
  private readonly onError: (err: unknown) => void;
  private readonly maxInFlight: number;
  private readonly intervalMs: number;
  private readonly pending = new Map<string, LastMessage>();
  /** The newest summary recorded per chat until it is written. */
  private readonly unwritten = new Map<string, LastMessage>();
  private readonly writing = new Set<string>();
  private inFlight = 0;
  private readonly turns: (() => void)[] = [];
  private idle: Promise<void> = Promise.resolve();
  private settle: (() => void) | undefined;

  constructor(
    chats: ChatsRepository,
    onError: (err: unknown) => void,
    maxInFlight = MAX_IN_FLIGHT,
    intervalMs = WRITE_INTERVAL_MS,
  ) {
    this.chats = chats;
    this.onError = onError;
    this.maxInFlight = maxInFlight;
    this.intervalMs = intervalMs;
  }

  record(chatId: string, last: LastMessage): void {
    const queued = this.pending.get(chatId);
    if (!queued || queued.seq < last.seq) this.pending.set(chatId, last);
    const newest = this.unwritten.get(chatId);
    if (!newest || newest.seq < last.seq) this.unwritten.set(chatId, last);
    if (!this.writing.has(chatId)) void this.drain(chatId);
  }

  /** The newest summary of a chat recorded here and not written yet, if any. */
  latest(chatId: string): LastMessage | undefined {
    return this.unwritten.get(chatId);
  }

  /** Resolves once every recorded summary has been written (or failed). */
  flushed(): Promise<void> {
    return this.writing.size === 0 ? Promise.resolve() : this.idle;
  }

  private async drain(chatId: string): Promise<void> {
    if (this.writing.size === 0) this.idle = new Promise((resolve) => (this.settle = resolve));
    this.writing.add(chatId);
    for (;;) {
      await this.turn();
      const last = this.pending.get(chatId);
      if (!last) {
        this.release();
        break;
      }
      this.pending.delete(chatId);
      const started = Date.now();
      try {
        await this.chats.recordMessage(chatId, last);
      } catch (err) {
        this.onError(err);
      }
      this.release();
      if (!this.pending.has(chatId)) break;
      await delay(this.intervalMs - (Date.now() - started));
    }
    this.unwritten.delete(chatId);
    this.writing.delete(chatId);
    if (this.writing.size === 0) this.settle?.();
  }

  private turn(): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.turns.push(resolve));
  }

  /** Hands the slot to the next chat waiting, or frees it. */
  private release(): void {
    const next = this.turns.shift();
    if (next) next();
    else this.inFlight -= 1;
  }
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms).unref()) : Promise.resolve();
}

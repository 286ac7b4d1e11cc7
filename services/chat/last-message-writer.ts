/**
 * Keeps each chat document's lastSeq and lastMessage up to date off the send path: the message is
 * stored and acknowledged first, then the chat's summary is written, at once for a chat whose
 * summary was not written in the last `intervalMs` (5 s), otherwise when that interval since its
 * last write is over, with the newest value winning. A chat costs at most one summary write per
 * interval however often it gets messages, and senders never queue behind each other on the chat
 * document. The chat list this node answers overlays the summaries it has not written yet
 * (`latest`), so it is exact on one node; another chat node's list may show a last message up to
 * the interval old.
 *
 * The interval runs from a chat's last write, not from its last message: 1,000 groups each getting
 * a message a second are never "quiet" for long, and waiting only for a quiet moment wrote nearly
 * every message's summary (a chat update re-indexes its members on the embedded store, and is a
 * locked read and update on FerretDB: more store time than the message insert itself).
 *
 * At most MAX_IN_FLIGHT summary writes run at once on a node, whatever the number of chats; chats
 * waiting for a turn keep only their newest summary, so under load the summaries lag (by about
 * chats waiting / write rate) instead of the sends. `flushed()` (on stop) cuts the intervals short.
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
  /** The newest summary recorded per chat until its interval after the write is over. */
  private readonly unwritten = new Map<string, LastMessage>();
  /** Chats being written or within the interval after their last write. */
  private readonly writing = new Set<string>();
  /** Wakes a chat waiting out its interval. */
  private readonly waiting = new Map<string, () => void>();
  private hurry = false;
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

  /** The newest summary of a chat recorded here lately, if it may not be written yet. */
  latest(chatId: string): LastMessage | undefined {
    return this.unwritten.get(chatId);
  }

  /** Writes what is pending without waiting out intervals; resolves once all is written (or failed). */
  flushed(): Promise<void> {
    if (this.writing.size === 0) return Promise.resolve();
    this.hurry = true;
    for (const wake of [...this.waiting.values()]) wake();
    return this.idle;
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
      await this.waitOut(chatId, this.intervalMs - (Date.now() - started));
    }
    this.unwritten.delete(chatId);
    this.writing.delete(chatId);
    if (this.writing.size === 0) {
      this.hurry = false;
      this.settle?.();
    }
  }

  /** The rest of a chat's interval after its write, unless a flush cuts it short. */
  private waitOut(chatId: string, ms: number): Promise<void> {
    if (this.hurry || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiting.delete(chatId);
        resolve();
      };
      const timer = setTimeout(wake, ms).unref();
      this.waiting.set(chatId, wake);
    });
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

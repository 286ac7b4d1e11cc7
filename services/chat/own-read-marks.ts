/**
 * A sender's read mark moving to their own new message, written behind the send instead of before
 * its answer. The send is acknowledged once its message is stored; the mark goes to the store
 * right after, at most MAX_IN_FLIGHT writes at once per node, a user's newest mark in a chat
 * replacing an older one still waiting. Until it is written, this node's reads of the receipt
 * (the chat, the chat list) see it through overlay(), so the sender's own message never counts as
 * unread here; another chat node reads the stored mark, behind by the writes waiting (none, but
 * under a load the store cannot take at once).
 *
 * Why: the mark was awaited before the answer, one conditional update per message outside the
 * appender's batches. On FerretDB such updates run one after the other, and the cluster's sends
 * queued behind them: at 300 messages/s to groups of 10 the delivery p50 was 1.3 s with the mark
 * awaited, 18 ms without (docs/benchmarks.md). A failed write is retried while the mark is still
 * the user's newest: that mark alone waits, the others go on, first RETRY_MS and then twice as long
 * after each failure in a row, up to MAX_RETRY_MS, so a store that stays down is not asked again
 * for every waiting mark each second. Stopping waits for the marks waiting, up to a bound.
 */
import type { Receipt, ReceiptsRepository } from "./receipts.repo.ts";

export const MAX_IN_FLIGHT = 4;
/** The wait before a failed mark's first retry, and the longest wait between its retries. */
export const RETRY_MS = 1_000;
export const MAX_RETRY_MS = 30_000;

type Marks = Pick<ReceiptsRepository, "markRead">;

interface Mark {
  chatId: string;
  userId: string;
  seq: number;
  /** A mark whose write failed is not tried again before this (on the retry clock, `now`). */
  notBefore?: number;
  /** Its writes that failed in a row. */
  failures?: number;
}

export class OwnReadMarks {
  private readonly receipts: Marks;
  private readonly onError: (err: unknown) => void;
  private readonly maxInFlight: number;
  /** The newest mark waiting per `chatId userId`, in the order they first waited. */
  private readonly waiting = new Map<string, Mark>();
  /** Marks being written: their key and seq. */
  private readonly writing = new Map<string, number>();
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private retryTimer: NodeJS.Timeout | undefined;
  /** Retry waits; `now` is the clock they are counted on (performance.now unless a test gives one). */
  private readonly retry: { firstMs: number; maxMs: number; now: () => number };

  constructor(
    receipts: Marks,
    onError: (err: unknown) => void,
    maxInFlight = MAX_IN_FLIGHT,
    retry: { firstMs?: number; maxMs?: number; now?: () => number } = {},
  ) {
    this.receipts = receipts;
    this.onError = onError;
    this.maxInFlight = maxInFlight;
    this.retry = {
      firstMs: retry.firstMs ?? RETRY_MS,
      maxMs: retry.maxMs ?? MAX_RETRY_MS,
      now: retry.now ?? (() => performance.now()),
    };
  }

  /** The user's mark in the chat is to move to `seq` (never back). */
  record(chatId: string, userId: string, seq: number): void {
    const key = keyOf(chatId, userId);
    const queued = this.waiting.get(key);
    if (queued && queued.seq >= seq) return;
    if ((this.writing.get(key) ?? 0) >= seq && !queued) return;
    if (queued) queued.seq = seq;
    else this.waiting.set(key, { chatId, userId, seq });
    this.pump();
  }

  /** The mark this node has not written yet, if any. */
  pendingOf(chatId: string, userId: string): number | undefined {
    const key = keyOf(chatId, userId);
    const seq = Math.max(this.waiting.get(key)?.seq ?? 0, this.writing.get(key) ?? 0);
    return seq > 0 ? seq : undefined;
  }

  /** The stored receipt with the marks not yet written applied. */
  overlay(chatId: string, userId: string, receipt: Receipt | undefined): Receipt | undefined {
    const pending = this.pendingOf(chatId, userId);
    if (pending === undefined || (receipt && receipt.lastReadSeq >= pending)) return receipt;
    if (receipt) return { ...receipt, lastReadSeq: pending };
    const now = new Date();
    return {
      _id: keyOf(chatId, userId),
      chatId,
      userId,
      lastReadSeq: pending,
      createdAt: now,
      updatedAt: now,
    };
  }

  /** Marks waiting or being written (a metric, tests). */
  get backlog(): number {
    return this.waiting.size + this.inFlight;
  }

  /** Resolves once every mark recorded so far is written (or after timeoutMs). */
  flushed(timeoutMs = 5_000): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private pump(): void {
    const now = this.retry.now();
    while (this.inFlight < this.maxInFlight) {
      const next = this.takeNext(now);
      if (!next) break;
      this.inFlight += 1;
      void this.write(next.key, next.mark);
    }
    if (this.backlog === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * The oldest waiting mark whose key is not being written (one write per key at a time) and whose
   * retry time, if it failed, has come.
   */
  private takeNext(now: number): { key: string; mark: Mark } | undefined {
    for (const [key, mark] of this.waiting) {
      if (this.writing.has(key) || (mark.notBefore ?? 0) > now) continue;
      this.waiting.delete(key);
      this.writing.set(key, mark.seq);
      return { key, mark };
    }
    return undefined;
  }

  private async write(key: string, mark: Mark): Promise<void> {
    try {
      await this.receipts.markRead(mark.chatId, mark.userId, mark.seq);
    } catch (err) {
      this.onError(err);
      // Tried again later unless a newer mark of the user's replaced it meanwhile (that one goes
      // at its turn: it was never tried).
      const newer = this.waiting.get(key);
      if (!newer) {
        const failures = (mark.failures ?? 0) + 1;
        const wait = Math.min(this.retry.firstMs * 2 ** (failures - 1), this.retry.maxMs);
        this.waiting.set(key, { ...mark, failures, notBefore: this.retry.now() + wait });
      }
    } finally {
      this.writing.delete(key);
      this.inFlight -= 1;
      this.pump();
      this.retryLater();
    }
  }

  /**
   * Pumps again once the earliest failed mark may be retried: at once when its time has already
   * come (a timer may fire a moment early, and the mark fall due between that pump and this), unless
   * every write slot is taken or its key is being written: a write's end pumps then.
   */
  private retryLater(): void {
    if (this.retryTimer) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, { notBefore }] of this.waiting)
      if (notBefore !== undefined && notBefore < earliest && !this.writing.has(key)) earliest = notBefore;
    if (!Number.isFinite(earliest)) return;
    const delay = earliest - this.retry.now();
    if (delay <= 0 && this.inFlight >= this.maxInFlight) return;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.pump();
        this.retryLater();
      },
      Math.max(0, delay),
    );
    this.retryTimer.unref();
  }
}

function keyOf(chatId: string, userId: string): string {
  return `${chatId}:${userId}`;
}

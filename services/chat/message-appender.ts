/**
 * Stores new messages in batches (group commit): sends that arrive while a batch is being stored
 * wait for the next one, and each batch is one ordered insertMany, whatever the number of chats
 * in it. On the embedded store that is one transaction, one disk flush, instead of one per
 * message; on MongoDB or FerretDB one round trip. When nothing is queued a send goes at once, alone.
 *
 * A chat's messages are stored one batch at a time: a chat with a message in a batch being stored
 * waits with its next ones for that batch to end, so each batch gives a chat's messages the seqs
 * after the highest its chat had, in arrival order, and a seq is never given twice by this node.
 * The insert stops at the first document a unique index refuses (its seq was taken by another
 * chat node, or it is a resend of a stored message): the ones before it are stored, that one is
 * stored by the one-at-a-time path (MessagesRepository.append, which finds the next free seq or
 * the first message of a resend), and the ones after it go in the next insert of the same round.
 * A store failure rejects every send of the batch not stored yet; they are retried by their
 * clients with the same clientMsgId, which makes a retry of a message that was stored after all
 * resolve to it.
 */
import type { Message, MessagesRepository, NewMessage } from "./messages.repo.ts";

/** Messages in one insert at most. */
export const MAX_BATCH = 500;
/** Batches being stored at once by a node. */
export const MAX_BATCHES_IN_FLIGHT = 2;

export interface AppendDeps {
  messages: MessagesRepository;
  /** The highest seq this node knows its chat to have. */
  knownSeq(chatId: string): number;
  /** Called with each stored message's seq. */
  stored(chatId: string, seq: number): void;
}

interface Request {
  input: NewMessage;
  /** The highest seq the sender's view of the chat had. */
  seenSeq: number;
  resolve(result: { message: Message; created: boolean }): void;
  reject(err: unknown): void;
}

export class MessageAppender {
  private readonly d: AppendDeps;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private queue: Request[] = [];
  /** Chats with a message in a batch being stored. */
  private readonly busy = new Set<string>();
  private inFlight = 0;
  private scheduled = false;

  constructor(deps: AppendDeps, maxBatch = MAX_BATCH, maxInFlight = MAX_BATCHES_IN_FLIGHT) {
    this.d = deps;
    this.maxBatch = maxBatch;
    this.maxInFlight = maxInFlight;
  }

  /** Stores a message at its chat's next seq; a resend resolves to the first message, not created. */
  append(input: NewMessage, seenSeq: number): Promise<{ message: Message; created: boolean }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, seenSeq, resolve, reject });
      this.schedule();
    });
  }

  /** Sends that arrive in the same turn of the event loop go in the same batch. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startBatches();
    });
  }

  private startBatches(): void {
    while (this.inFlight < this.maxInFlight) {
      const batch = this.take();
      if (batch.length === 0) return;
      this.inFlight += 1;
      void this.store(batch).finally(() => {
        for (const r of batch) this.busy.delete(r.input.chatId);
        this.inFlight -= 1;
        if (this.queue.length > 0) this.schedule();
      });
    }
  }

  /** The queued sends of chats not being stored now, oldest first, up to a batch. */
  private take(): Request[] {
    const batch: Request[] = [];
    const left: Request[] = [];
    const blocked = new Set<string>();
    for (const r of this.queue) {
      const chatId = r.input.chatId;
      if (batch.length >= this.maxBatch || blocked.has(chatId) || this.busy.has(chatId)) {
        // Later sends of a chat stay behind its earlier ones.
        blocked.add(chatId);
        left.push(r);
      } else batch.push(r);
    }
    this.queue = left;
    for (const r of batch) this.busy.add(r.input.chatId);
    return batch;
  }

  private async store(batch: Request[]): Promise<void> {
    let rest = batch;
    while (rest.length > 0) {
      const docs = this.number(rest);
      let stored: number;
      try {
        stored = await this.d.messages.insertMany(docs);
      } catch (err) {
        for (const r of rest) r.reject(err);
        return;
      }
      for (let i = 0; i < stored; i++) this.done(rest[i] as Request, docs[i] as Message, true);
      const refused = rest[stored];
      if (!refused) return;
      try {
        const { message, created } = await this.d.messages.append(
          refused.input,
          Math.max(refused.seenSeq, this.d.knownSeq(refused.input.chatId)),
        );
        this.done(refused, message, created);
      } catch (err) {
        refused.reject(err);
      }
      rest = rest.slice(stored + 1);
    }
  }

  /** The documents of the sends, each chat's numbered on from the highest seq known for it. */
  private number(requests: Request[]): Message[] {
    const next = new Map<string, number>();
    return requests.map((r) => {
      const chatId = r.input.chatId;
      const seq = next.get(chatId) ?? Math.max(r.seenSeq, this.d.knownSeq(chatId)) + 1;
      next.set(chatId, seq + 1);
      return this.d.messages.newMessage(r.input, seq);
    });
  }

  private done(r: Request, message: Message, created: boolean): void {
    this.d.stored(message.chatId, message.seq);
    r.resolve({ message, created });
  }
}

/**
 * Per-document locks kept in the store itself, for servers whose single-document writes are not
 * atomic (FerretDB 1.x reads, modifies in memory and writes back, without isolation). A lock is a
 * document in `_locks` whose `_id` is the locked key: the unique `_id` lets exactly one holder insert
 * it. A lock outlives a crashed holder only until its lease ends; then the next contender breaks it.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Collection } from "mongodb";
import { StoreUnavailableError } from "../errors.ts";
import { isDuplicateKey } from "./mongo-errors.ts";

const LEASE_MS = 10_000;
const ACQUIRE_TIMEOUT_MS = 15_000;
/** Contenders poll the store; a higher cap keeps a hot document from flooding it. */
const MAX_BACKOFF_MS = 200;

export interface LockDoc {
  _id: string;
  owner: string;
  expiresAt: Date;
}

export class DocLocks {
  readonly #locks: Collection<LockDoc>;
  /** Contenders of this process wait their turn here, so only one of them polls the store. */
  readonly #turns = new Map<string, Promise<void>>();

  constructor(locks: Collection<LockDoc>) {
    this.#locks = locks;
  }

  async with<R>(key: string, action: () => Promise<R>): Promise<R> {
    const previous = this.#turns.get(key);
    const turn = Promise.withResolvers<void>();
    this.#turns.set(key, turn.promise);
    await previous;
    try {
      return await this.#holding(key, action);
    } finally {
      if (this.#turns.get(key) === turn.promise) this.#turns.delete(key);
      turn.resolve();
    }
  }

  async #holding<R>(key: string, action: () => Promise<R>): Promise<R> {
    const owner = randomUUID();
    await this.#acquire(key, owner);
    try {
      return await action();
    } finally {
      // A lock that cannot be released now is freed when its lease ends.
      await this.#locks.deleteOne({ _id: key, owner }).catch(() => undefined);
    }
  }

  async #acquire(key: string, owner: string): Promise<void> {
    const deadline = Date.now() + ACQUIRE_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#locks.insertOne({ _id: key, owner, expiresAt: new Date(Date.now() + LEASE_MS) });
        return;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      if (Date.now() > deadline) throw new StoreUnavailableError(new Error(`Lock ${key} stayed busy`));
      await this.#locks.deleteOne({ _id: key, expiresAt: { $lt: new Date() } });
      await sleep(Math.min(2 ** attempt, MAX_BACKOFF_MS) * (0.5 + Math.random()));
    }
  }
}

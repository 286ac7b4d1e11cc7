/**
 * Removes expired documents for servers without TTL indexes (FerretDB 1.x), the way MongoDB's TTL
 * monitor does: once a minute, every document whose date field is older than the index's seconds.
 */
import type { Collection, Document } from "mongodb";

const SWEEP_INTERVAL_MS = 60_000;

interface TtlTarget {
  collection: Collection<Document>;
  field: string;
  seconds: number;
}

export class TtlSweeper {
  readonly #targets = new Map<string, TtlTarget>();
  #timer: NodeJS.Timeout | undefined;

  add(collection: Collection<Document>, field: string, seconds: number): void {
    this.#targets.set(`${collection.collectionName}.${field}`, { collection, field, seconds });
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.#timer.unref();
  }

  async sweep(): Promise<void> {
    for (const { collection, field, seconds } of this.#targets.values()) {
      const cutoff = new Date(Date.now() - seconds * 1000);
      // A sweep that fails (the store is down) is simply done again by the next one.
      await collection.deleteMany({ [field]: { $lt: cutoff } }).catch(() => undefined);
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

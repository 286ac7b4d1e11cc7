/** What every repository shares: its collection, its indexes, and the createdAt/updatedAt stamps. */
import { DuplicateKeyError } from "./store-errors.ts";
import type { Collection, Doc, IndexSpec, Update } from "./types.ts";

export interface Timestamps {
  createdAt: Date;
  updatedAt: Date;
}

export abstract class BaseRepository<T extends Doc> {
  protected readonly collection: Collection<T>;

  constructor(collection: Collection<T>) {
    this.collection = collection;
  }

  abstract indexes(): IndexSpec[];

  init(): Promise<void> {
    return this.collection.ensureIndexes(this.indexes());
  }

  /** Inserts the document, stamped; resolves false when its `_id` (or a unique index) had it already. */
  protected async insertIfNew(doc: Omit<T, "createdAt" | "updatedAt">): Promise<boolean> {
    try {
      await this.collection.insertOne(this.stampNew(doc) as unknown as T);
      return true;
    } catch (err) {
      if (err instanceof DuplicateKeyError) return false;
      throw err;
    }
  }

  protected stampNew<D extends object>(doc: D, now = new Date()): D & Timestamps {
    return { ...doc, createdAt: now, updatedAt: now };
  }

  protected stampUpdate(update: Update, now = new Date()): Update {
    return { ...update, $set: { ...update.$set, updatedAt: now } };
  }
}

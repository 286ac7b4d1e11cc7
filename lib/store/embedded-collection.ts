/** One collection of the embedded store: a nedb Datastore over one append-only file. */

import { DuplicateKeyError, StoreUnavailableError } from "../errors.ts";
import { toNedbQuery, toNedbUpdate } from "./embedded-query.ts";
import {
  isUniqueViolation,
  nedbIndexKey,
  orderCompoundKeys,
  tagUniqueViolations,
} from "./embedded-unique.ts";
import { Datastore } from "./nedb.ts";
import type { Collection, Doc, Filter, FindOptions, IndexSpec, Update } from "./types.ts";

export class EmbeddedCollection<T extends Doc> implements Collection<T> {
  readonly name: string;
  readonly #datastore: Datastore;
  readonly #loaded: Promise<void>;
  /** nedb index key (sorted field names) to IndexSpec name. */
  readonly #indexNames = new Map<string, string>([["_id", "_id_"]]);
  /** nedb's own compaction timer would keep the process alive; this one does not. */
  readonly #compaction: NodeJS.Timeout;

  constructor(name: string, filename: string, compactionIntervalMs: number) {
    this.name = name;
    this.#datastore = new Datastore({ filename });
    this.#loaded = this.#datastore
      .loadDatabaseAsync()
      .then(() => tagUniqueViolations(this.#datastore, "_id"));
    // A failed load is reported by every operation and by ping(); it must not crash the process.
    this.#loaded.catch(() => undefined);
    this.#compaction = setInterval(() => void this.#compact(), compactionIntervalMs).unref();
  }

  /** Resolves once the file is loaded. */
  ready(): Promise<void> {
    return this.#loaded;
  }

  insertOne(doc: T): Promise<T> {
    return this.#run(async () => {
      await this.#datastore.insertAsync(doc);
      return doc;
    });
  }

  /**
   * nedb inserts an array at once (one append to the file) and all or nothing: when a unique index
   * refuses one, the documents are inserted one at a time up to that one.
   */
  insertMany(docs: T[]): Promise<number> {
    return this.#run(async () => {
      if (docs.length === 0) return 0;
      try {
        await this.#datastore.insertAsync(docs);
        return docs.length;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      for (const [i, doc] of docs.entries()) {
        try {
          await this.#datastore.insertAsync(doc);
        } catch (err) {
          if (isUniqueViolation(err)) return i;
          throw err;
        }
      }
      return docs.length;
    });
  }

  findOne(filter: Filter): Promise<T | null> {
    return this.#run(async () => (await this.#datastore.findOneAsync<T>(toNedbQuery(filter))) ?? null);
  }

  find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    return this.#run(async () => {
      let cursor = this.#datastore.findAsync<T>(toNedbQuery(filter));
      if (options.sort) cursor = cursor.sort(options.sort);
      if (options.skip) cursor = cursor.skip(options.skip);
      if (options.limit) cursor = cursor.limit(options.limit);
      return (await cursor) as unknown as T[];
    });
  }

  count(filter: Filter): Promise<number> {
    return this.#run(
      async () => (await this.#datastore.countAsync(toNedbQuery(filter))) as unknown as number,
    );
  }

  updateOne(filter: Filter, update: Update): Promise<number> {
    return this.#update(filter, update, false);
  }

  updateMany(filter: Filter, update: Update): Promise<number> {
    return this.#update(filter, update, true);
  }

  /** nedb runs each update, upsert included, as one task of its queue: find and modify are atomic. */
  findOneAndUpdate(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<T | null> {
    const upsert = options.upsert ?? false;
    return this.#run(async () => {
      const { affectedDocuments } = await this.#datastore.updateAsync<
        T,
        { returnUpdatedDocs: true; upsert: boolean }
      >(toNedbQuery(filter, upsert), toNedbUpdate(update), { returnUpdatedDocs: true, upsert });
      return (affectedDocuments as T | null | undefined) ?? null;
    });
  }

  deleteOne(filter: Filter): Promise<number> {
    return this.#run(() => this.#datastore.removeAsync(toNedbQuery(filter), { multi: false }));
  }

  deleteMany(filter: Filter): Promise<number> {
    return this.#run(() => this.#datastore.removeAsync(toNedbQuery(filter), { multi: true }));
  }

  /**
   * nedb answers a query from a compound index only when the query matches every one of its
   * fields by value, where MongoDB also uses the index's leading field alone (`{ chatId, seq:
   * { $gt } }`, `{ members: { $in } }`). So each compound index also gets a plain index on its
   * first field; without it those queries read the whole collection. A compound index that is not
   * unique gets only that plain index: it would serve no query the plain one does not narrow as
   * well, and every write would pay for it (a chat's summary update re-indexed its members twice).
   * A retired index is dropped from the file if it is there.
   */
  ensureIndexes(indexes: IndexSpec[]): Promise<void> {
    return this.#run(async () => {
      const declared = new Set<string>();
      for (const spec of indexes) {
        const fields = Object.keys(spec.fields);
        if (spec.retired || (fields.length > 1 && !spec.unique)) {
          await this.#dropIndex(nedbIndexKey(fields));
          continue;
        }
        await this.#ensureIndex(spec);
        declared.add(fields.join(","));
      }
      for (const spec of indexes) {
        const [first, ...rest] = Object.keys(spec.fields);
        if (spec.retired || first === undefined || rest.length === 0 || declared.has(first)) continue;
        declared.add(first);
        await this.#datastore.ensureIndexAsync({ fieldName: first });
      }
    });
  }

  /** Removes an index an older release declared, if this file still has it. */
  async #dropIndex(key: string): Promise<void> {
    const indexes = (this.#datastore as unknown as { indexes: Record<string, unknown> }).indexes;
    if (indexes[key]) await this.#datastore.removeIndexAsync(key);
  }

  /** Stops the compaction timer and leaves a compacted file behind. */
  async close(): Promise<void> {
    clearInterval(this.#compaction);
    await this.#run(() => this.#datastore.compactDatafileAsync());
  }

  /** Rewrites the append-only file without its superseded lines; a failed run is redone by the next. */
  async #compact(): Promise<void> {
    await this.#run(() => this.#datastore.compactDatafileAsync()).catch(() => undefined);
  }

  async #ensureIndex(spec: IndexSpec): Promise<void> {
    const fields = Object.keys(spec.fields);
    const key = nedbIndexKey(fields);
    this.#indexNames.set(key, spec.name);
    try {
      await this.#datastore.ensureIndexAsync({
        fieldName: fields.length === 1 ? key : fields,
        unique: spec.unique ?? false,
        sparse: spec.sparse ?? false,
        expireAfterSeconds: spec.expireAfterSeconds,
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new DuplicateKeyError(spec.name, err);
      throw err;
    }
    tagUniqueViolations(this.#datastore, key);
    orderCompoundKeys(this.#datastore, key);
  }

  #update(filter: Filter, update: Update, multi: boolean): Promise<number> {
    return this.#run(async () => {
      const { numAffected } = await this.#datastore.updateAsync(toNedbQuery(filter), toNedbUpdate(update), {
        multi,
      });
      return numAffected;
    });
  }

  async #run<R>(operation: () => Promise<R>): Promise<R> {
    try {
      await this.#loaded;
      return await operation();
    } catch (err) {
      throw this.#translate(err);
    }
  }

  #translate(err: unknown): unknown {
    if (err instanceof DuplicateKeyError) return err;
    if (isUniqueViolation(err)) {
      return new DuplicateKeyError(err.indexFields && this.#indexNames.get(err.indexFields), err);
    }
    if (isSystemError(err)) return new StoreUnavailableError(err);
    return err;
  }
}

/** Node's file-system errors (ENOENT, EACCES, ENOSPC, EIO...) mean the store cannot be used. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === "string";
}

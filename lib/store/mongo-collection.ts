/** One collection of the MongoDB store. */

import { setTimeout as sleep } from "node:timers/promises";
import {
  type Document,
  type Collection as DriverCollection,
  type IndexDescription,
  MongoBulkWriteError,
  MongoNetworkError,
  MongoServerError,
} from "mongodb";
import { DuplicateKeyError } from "../errors.ts";
import type { DocLocks } from "./doc-locks.ts";
import { matchesFilter, pinnedId } from "./id-lookup.ts";
import { duplicateKeyError } from "./mongo-duplicate-key.ts";
import { isDuplicateKey, isDuplicateKeyReport, toStoreError } from "./mongo-errors.ts";
import { LockedWrites } from "./mongo-locked-writes.ts";
import { toMongoFilter } from "./mongo-query.ts";
import { type MongoWrites, NativeWrites } from "./mongo-writes.ts";
import type { TtlSweeper } from "./ttl-sweeper.ts";
import type {
  Collection,
  Doc,
  Filter,
  FindOptions,
  IndexSpec,
  InsertOptions,
  Update,
  UpdateOptions,
} from "./types.ts";

const NAMESPACE_NOT_FOUND = 26;
const INDEX_NOT_FOUND = 27;
const INDEX_ATTEMPTS = 6;
const INDEX_RETRY_MS = 100;

/** What a collection needs from its store. */
export interface MongoServer {
  /** FerretDB 1.x, which needs the stand-ins described in mongo.ts. */
  isFerretDb(): Promise<boolean>;
  readonly locks: DocLocks;
  readonly sweeper: TtlSweeper;
}

export class MongoCollection<T extends Doc> implements Collection<T> {
  readonly name: string;
  readonly #collection: DriverCollection<Document>;
  readonly #server: MongoServer;
  #writes: MongoWrites | undefined;
  /** Writes by one writer at a time need no lock, even on FerretDB. */
  readonly #native: NativeWrites;

  constructor(collection: DriverCollection<Document>, server: MongoServer) {
    this.name = collection.collectionName;
    this.#collection = collection;
    this.#server = server;
    this.#native = new NativeWrites(collection);
  }

  insertOne(doc: T, options: InsertOptions = {}): Promise<T> {
    return this.#run(async () => {
      try {
        await this.#collection.insertOne(doc as Document);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        if (options.identifyIndex === false) throw new DuplicateKeyError(undefined, err);
        throw await duplicateKeyError(this.#collection, err, doc, true);
      }
      return doc;
    });
  }

  insertMany(docs: T[]): Promise<number> {
    return this.#run(async () => {
      if (docs.length === 0) return 0;
      try {
        await this.#collection.insertMany(docs as Document[], { ordered: true });
        return docs.length;
      } catch (err) {
        // An ordered insert stops at its first write error; the documents before it are stored.
        const refused = err instanceof MongoBulkWriteError ? [err.writeErrors].flat()[0] : undefined;
        if (!refused || !isDuplicateKeyReport(refused.code, refused.errmsg ?? "")) throw err;
        return refused.index;
      }
    });
  }

  /** One `{ _id }` query each, in parallel: FerretDB answers those from its key, but not `$in`. */
  findByIds(ids: string[]): Promise<(T | null)[]> {
    return this.#run(() => Promise.all(ids.map((_id) => this.#collection.findOne<T>({ _id } as Document))));
  }

  findOne(filter: Filter): Promise<T | null> {
    return this.#run(async (): Promise<T | null> => {
      const query = toMongoFilter(filter);
      const pinned = pinnedId(query);
      if (pinned === undefined || Object.keys(query).length === 1 || !(await this.#server.isFerretDb())) {
        return this.#collection.findOne<T>(query);
      }
      // FerretDB scans the collection for `{ _id, ...more }`; `{ _id }` alone comes from its key.
      const doc = await this.#collection.findOne<T>({ _id: pinned } as Document);
      return doc && matchesFilter(doc as Document, query) ? doc : null;
    });
  }

  find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    return this.#run(() => this.#collection.find<T>(toMongoFilter(filter), options).toArray());
  }

  count(filter: Filter): Promise<number> {
    return this.#run(() => this.#collection.countDocuments(toMongoFilter(filter)));
  }

  updateOne(filter: Filter, update: Update, options: UpdateOptions = {}): Promise<number> {
    if (options.singleWriter) {
      return this.#run(() => this.#native.updateOne(toMongoFilter(filter), update));
    }
    return this.#write((writes) => writes.updateOne(toMongoFilter(filter), update));
  }

  updateMany(filter: Filter, update: Update): Promise<number> {
    return this.#write((writes) => writes.updateMany(toMongoFilter(filter), update));
  }

  async findOneAndUpdate(
    filter: Filter,
    update: Update,
    options: { upsert?: boolean } = {},
  ): Promise<T | null> {
    const doc = await this.#write((writes) =>
      writes.findOneAndUpdate(toMongoFilter(filter), update, options.upsert ?? false),
    );
    return doc as T | null;
  }

  deleteOne(filter: Filter): Promise<number> {
    return this.#write((writes) => writes.deleteOne(toMongoFilter(filter)));
  }

  deleteMany(filter: Filter): Promise<number> {
    return this.#write((writes) => writes.deleteMany(toMongoFilter(filter)));
  }

  /**
   * On FerretDB, TTL indexes become plain ones swept by the TtlSweeper, and only missing indexes
   * are sent: FerretDB 1.24 drops the connection when asked to create an index that exists, and
   * when two clients create the indexes of a new collection at once (nodes starting together), so
   * there a dropped connection is retried, asking again for what is still missing.
   */
  ensureIndexes(specs: IndexSpec[]): Promise<void> {
    return this.#run(async () => {
      const ferretDb = await this.#server.isFerretDb();
      const indexes = specs.filter((spec) => !spec.retired);
      const retired = specs.filter((spec) => spec.retired).map((spec) => spec.name);
      if (retired.length > 0) await this.#drop(retired);
      for (let attempt = 1; ; attempt++) {
        try {
          const wanted = ferretDb ? await this.#missing(indexes) : indexes;
          if (wanted.length > 0) {
            await this.#collection.createIndexes(wanted.map((spec) => describeIndex(spec, !ferretDb)));
          }
          break;
        } catch (err) {
          if (!ferretDb || attempt >= INDEX_ATTEMPTS || !(err instanceof MongoNetworkError)) throw err;
          await sleep(INDEX_RETRY_MS * attempt * (0.5 + Math.random()));
        }
      }
      if (!ferretDb) return;
      for (const spec of indexes) {
        const [field] = Object.keys(spec.fields);
        if (field && spec.expireAfterSeconds !== undefined) {
          this.#server.sweeper.add(this.#collection, field, spec.expireAfterSeconds);
        }
      }
    });
  }

  async #missing(indexes: IndexSpec[]): Promise<IndexSpec[]> {
    const names = await this.#existing();
    return indexes.filter((spec) => !names.has(spec.name));
  }

  /** Drops the named indexes that exist; one dropped meanwhile by another node is fine. */
  async #drop(names: string[]): Promise<void> {
    const existing = await this.#existing();
    for (const name of names) {
      if (!existing.has(name)) continue;
      await this.#collection.dropIndex(name).catch((err: unknown) => {
        if (!(err instanceof MongoServerError && err.code === INDEX_NOT_FOUND)) throw err;
      });
    }
  }

  async #existing(): Promise<Set<string | undefined>> {
    const existing = await this.#collection.indexes().catch((err: unknown) => {
      if (err instanceof MongoServerError && err.code === NAMESPACE_NOT_FOUND) return [];
      throw err;
    });
    return new Set(existing.map((index) => index.name));
  }

  #write<R>(operation: (writes: MongoWrites) => Promise<R>): Promise<R> {
    return this.#run(async () => operation(await this.#writesFor()));
  }

  async #writesFor(): Promise<MongoWrites> {
    if (!this.#writes) {
      const ferretDb = await this.#server.isFerretDb();
      this.#writes = ferretDb
        ? new LockedWrites(this.#collection, this.#server.locks)
        : new NativeWrites(this.#collection);
    }
    return this.#writes;
  }

  async #run<R>(operation: () => Promise<R>): Promise<R> {
    try {
      return await operation();
    } catch (err) {
      throw toStoreError(err, this.name);
    }
  }
}

function describeIndex(spec: IndexSpec, withTtl: boolean): IndexDescription {
  const description: IndexDescription = { key: spec.fields, name: spec.name };
  if (spec.unique) description.unique = true;
  if (spec.sparse) description.sparse = true;
  if (withTtl && spec.expireAfterSeconds !== undefined) {
    description.expireAfterSeconds = spec.expireAfterSeconds;
  }
  return description;
}

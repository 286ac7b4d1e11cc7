/**
 * A Store decorator that times every collection operation, whatever the backend: the duration
 * goes to a histogram labelled by collection and operation, and a failure (other than a
 * duplicate key, which repositories expect and handle) to an error counter with the same labels.
 * Label objects are built once per collection and frozen, so an operation allocates nothing for
 * its metrics.
 */
import { DuplicateKeyError } from "../errors.ts";
import {
  COLLECTION_OPERATIONS,
  type Collection,
  type CollectionOperation,
  type Doc,
  type Filter,
  type FindOptions,
  type IndexSpec,
  type InsertOptions,
  type Store,
  type Update,
  type UpdateOptions,
} from "./types.ts";

type Labels = Record<string, string>;

/** Where the timings go: PlatformMetrics (lib/metrics.ts) is one. */
export interface StoreMetrics {
  storeDuration: { observe(seconds: number, labels: Labels): void };
  storeErrors: { increment(labels: Labels): void };
}

type Operation = CollectionOperation;

export function instrumentStore(store: Store, metrics: StoreMetrics | undefined): Store {
  return metrics ? new InstrumentedStore(store, metrics) : store;
}

export class InstrumentedStore implements Store {
  readonly #inner: Store;
  readonly #metrics: StoreMetrics;
  readonly #collections = new Map<string, InstrumentedCollection<Doc>>();

  constructor(inner: Store, metrics: StoreMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
  }

  get kind(): Store["kind"] {
    return this.#inner.kind;
  }

  collection<T extends Doc>(name: string): Collection<T> {
    let collection = this.#collections.get(name);
    if (!collection) {
      collection = new InstrumentedCollection(this.#inner.collection<Doc>(name), this.#metrics);
      this.#collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  collectionNames(): Promise<string[]> {
    return this.#inner.collectionNames();
  }

  ping(): Promise<void> {
    return this.#inner.ping();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

export class InstrumentedCollection<T extends Doc> implements Collection<T> {
  readonly #inner: Collection<T>;
  readonly #metrics: StoreMetrics;
  readonly #labels: Record<Operation, Labels>;

  constructor(inner: Collection<T>, metrics: StoreMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
    this.#labels = Object.fromEntries(
      COLLECTION_OPERATIONS.map((operation) => [
        operation,
        Object.freeze({ collection: inner.name, operation }),
      ]),
    ) as unknown as Record<Operation, Labels>;
  }

  get name(): string {
    return this.#inner.name;
  }

  insertOne(doc: T, options?: InsertOptions): Promise<T> {
    return this.#timed("insertOne", performance.now(), this.#inner.insertOne(doc, options));
  }

  insertMany(docs: T[]): Promise<number> {
    return this.#timed("insertMany", performance.now(), this.#inner.insertMany(docs));
  }

  findOne(filter: Filter): Promise<T | null> {
    return this.#timed("findOne", performance.now(), this.#inner.findOne(filter));
  }

  findByIds(ids: string[]): Promise<(T | null)[]> {
    return this.#timed("findByIds", performance.now(), this.#inner.findByIds(ids));
  }

  find(filter: Filter, options?: FindOptions): Promise<T[]> {
    return this.#timed("find", performance.now(), this.#inner.find(filter, options));
  }

  count(filter: Filter): Promise<number> {
    return this.#timed("count", performance.now(), this.#inner.count(filter));
  }

  updateOne(filter: Filter, update: Update, options?: UpdateOptions): Promise<number> {
    return this.#timed("updateOne", performance.now(), this.#inner.updateOne(filter, update, options));
  }

  updateMany(filter: Filter, update: Update): Promise<number> {
    return this.#timed("updateMany", performance.now(), this.#inner.updateMany(filter, update));
  }

  findOneAndUpdate(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<T | null> {
    return this.#timed(
      "findOneAndUpdate",
      performance.now(),
      this.#inner.findOneAndUpdate(filter, update, options),
    );
  }

  deleteOne(filter: Filter): Promise<number> {
    return this.#timed("deleteOne", performance.now(), this.#inner.deleteOne(filter));
  }

  deleteMany(filter: Filter): Promise<number> {
    return this.#timed("deleteMany", performance.now(), this.#inner.deleteMany(filter));
  }

  ensureIndexes(indexes: IndexSpec[]): Promise<void> {
    return this.#timed("ensureIndexes", performance.now(), this.#inner.ensureIndexes(indexes));
  }

  async #timed<R>(operation: Operation, start: number, pending: Promise<R>): Promise<R> {
    const labels = this.#labels[operation];
    try {
      return await pending;
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) this.#metrics.storeErrors.increment(labels);
      throw err;
    } finally {
      this.#metrics.storeDuration.observe((performance.now() - start) / 1000, labels);
    }
  }
}

/**
 * The storage contract every backend implements: a small, explicit subset of MongoDB's query and
 * update language, so the same repository code runs on MongoDB (and MongoDB-wire servers such as
 * FerretDB) and on the embedded on-disk store. No transactions and no change streams are needed.
 */

/** Every stored document has a string `_id`. */
export interface Doc {
  _id: string;
}

/** Field conditions allowed in a filter. Values are always plain data built by repositories. */
export interface FieldCondition {
  $eq?: unknown;
  $ne?: unknown;
  $gt?: unknown;
  $gte?: unknown;
  $lt?: unknown;
  $lte?: unknown;
  $in?: unknown[];
  $exists?: boolean;
  /** An anchored prefix match on a string field; backends escape it themselves. */
  $prefix?: string;
}

export type Filter = Record<string, unknown | FieldCondition>;

export interface Update {
  $set?: Record<string, unknown>;
  $unset?: Record<string, true>;
  $inc?: Record<string, number>;
}

export interface FindOptions {
  sort?: Record<string, 1 | -1>;
  limit?: number;
  skip?: number;
}

export interface IndexSpec {
  /** Stable name, used in duplicate-key errors. */
  name: string;
  fields: Record<string, 1 | -1>;
  unique?: boolean;
  /** Documents missing the indexed field(s) are left out of the index. */
  sparse?: boolean;
  /** Documents are removed once the date in this single field is older than the given seconds. */
  expireAfterSeconds?: number;
  /** An index an older release declared and this one does not need: dropped where it exists. */
  retired?: boolean;
  /**
   * The index has two fields, the first holding arrays, and serves pages of the documents holding
   * one element in the second field's order (a member's chats by activity). MongoDB's compound
   * multikey index does that by itself; the embedded store keeps (element, second field, _id) in a
   * table of its own, which such a find walks in order instead of sorting all of the element's
   * documents.
   */
  arrayPrefix?: boolean;
}

export interface InsertOptions {
  identifyIndex?: boolean;
}

export interface UpdateOptions {
  singleWriter?: boolean;
}

export interface Collection<T extends Doc> {
  readonly name: string;
  /**
   * Throws DuplicateKeyError when a unique index is violated, naming the index unless
   * `identifyIndex` is false: on FerretDB naming it may take a query per unique index, and a
   * caller that finds out for itself by `_id` can skip them.
   */
  insertOne(doc: T, options?: InsertOptions): Promise<T>;
  /**
   * Inserts the documents in order in one request to the store, stopping at the first a unique
   * index refuses: resolves how many were stored, the first ones of the list; when that is fewer
   * than all, the next one was refused by a unique index and none after it was stored. Any other
   * failure rejects, and then which of them were stored is not known (as with a failed insertOne).
   */
  insertMany(docs: T[]): Promise<number>;
  findOne(filter: Filter): Promise<T | null>;
  /**
   * The documents with these `_id`s, in the order of the ids, null where there is none: each one a
   * lookup by primary key on every backend (a page of messages is read this way).
   */
  findByIds(ids: string[]): Promise<(T | null)[]>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  count(filter: Filter): Promise<number>;
  /**
   * Updates the first matching document; resolves how many matched (0 or 1). `singleWriter` says
   * the caller is the only one writing that document now, so a server whose updates are not atomic
   * (FerretDB 1.x) may write it without taking a lock.
   */
  updateOne(filter: Filter, update: Update, options?: UpdateOptions): Promise<number>;
  updateMany(filter: Filter, update: Update): Promise<number>;
  /** Atomically updates one matching document and resolves it as it is after the update. */
  findOneAndUpdate(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<T | null>;
  deleteOne(filter: Filter): Promise<number>;
  deleteMany(filter: Filter): Promise<number>;
  ensureIndexes(indexes: IndexSpec[]): Promise<void>;
}

/** Every operation of a Collection, for code that handles them all alike. */
export const COLLECTION_OPERATIONS = [
  "insertOne",
  "insertMany",
  "findOne",
  "findByIds",
  "find",
  "count",
  "updateOne",
  "updateMany",
  "findOneAndUpdate",
  "deleteOne",
  "deleteMany",
  "ensureIndexes",
] as const satisfies readonly Exclude<keyof Collection<Doc>, "name">[];

export type CollectionOperation = (typeof COLLECTION_OPERATIONS)[number];

export interface Store {
  readonly kind: "mongo" | "embedded";
  collection<T extends Doc>(name: string): Collection<T>;
  /** The names of the collections that exist in the store (for tools that copy a whole store). */
  collectionNames(): Promise<string[]>;
  /** Resolves when the store answers; rejects (StoreUnavailableError) otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

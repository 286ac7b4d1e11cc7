/**
 * The store on MongoDB, or on a server speaking its wire protocol. FerretDB 1.x is detected (its
 * buildInfo has `ferretdbVersion`) and gets two stand-ins: lock-guarded writes (mongo-locked-writes.ts)
 * since its updates are not atomic, and a TTL sweeper since it has no TTL indexes.
 */
import { type Db, MongoClient } from "mongodb";
import { StoreUnavailableError } from "../errors.ts";
import { DocLocks, type LockDoc } from "./doc-locks.ts";
import { fixClosedSocketWrites } from "./mongo-closed-socket.ts";
import { MongoCollection, type MongoServer } from "./mongo-collection.ts";
import { TtlSweeper } from "./ttl-sweeper.ts";
import type { Collection, Doc, Store } from "./types.ts";

// Before any client exists: a command on a just-destroyed socket would otherwise never settle.
fixClosedSocketWrites();

const DEFAULT_DATABASE = "social";
/** How long an operation waits for a reachable server, at most and by default. */
export const MAX_SERVER_WAIT_MS = 5_000;
const LOCKS_COLLECTION = "_locks";

export class MongoStore implements Store, MongoServer {
  readonly kind = "mongo";
  readonly #client: MongoClient;
  readonly #db: Db;
  readonly #collections = new Map<string, MongoCollection<Doc>>();
  readonly sweeper = new TtlSweeper();
  readonly locks: DocLocks;
  #ferretDb: Promise<boolean> | undefined;

  /**
   * Connects lazily: the first operation connects, so a node can start while the store is down.
   * `serverWaitMs` bounds how long an operation waits for a reachable server (5 s by default).
   */
  constructor(url: string, options: { serverWaitMs?: number } = {}) {
    const serverWaitMs = options.serverWaitMs ?? MAX_SERVER_WAIT_MS;
    this.#client = new MongoClient(url, {
      serverSelectionTimeoutMS: serverWaitMs,
      connectTimeoutMS: serverWaitMs,
      socketTimeoutMS: 30_000,
      maxPoolSize: 50,
      // Retries a write once after a failover on a replica set. FerretDB presents itself as a
      // standalone server, on which the driver never sends retryable writes, so it is harmless there.
      retryWrites: true,
      // An `undefined` field is left out, as in the embedded store, instead of being stored as null.
      ignoreUndefined: true,
    });
    this.#db = this.#client.db(databaseName(url));
    this.locks = new DocLocks(this.#db.collection<LockDoc>(LOCKS_COLLECTION));
  }

  collection<T extends Doc>(name: string): Collection<T> {
    let collection = this.#collections.get(name);
    if (!collection) {
      collection = new MongoCollection(this.#db.collection(name), this);
      this.#collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  async collectionNames(): Promise<string[]> {
    try {
      const listed = await this.#db.listCollections({}, { nameOnly: true }).toArray();
      return listed.map((c) => c.name).filter((name) => name !== LOCKS_COLLECTION);
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#db.command({ ping: 1 });
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
  }

  async close(): Promise<void> {
    this.sweeper.stop();
    await this.#client.close();
  }

  /** Asked once (buildInfo); a failed attempt is retried by the next caller. */
  isFerretDb(): Promise<boolean> {
    this.#ferretDb ??= this.#db
      .admin()
      .command({ buildInfo: 1 })
      .then(
        (info) => "ferretdbVersion" in info,
        (err: unknown) => {
          this.#ferretDb = undefined;
          throw err;
        },
      );
    return this.#ferretDb;
  }
}

/** The database named in the URL's path, else `social`. */
function databaseName(url: string): string {
  const path = /^mongodb(?:\+srv)?:\/\/[^/]*\/([^?]*)/.exec(url)?.[1];
  return path ? decodeURIComponent(path) : DEFAULT_DATABASE;
}

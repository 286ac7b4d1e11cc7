/**
 * The embedded store on a thread of its own. Every embedded store a process opens lives in one
 * worker thread (embedded-worker.ts), which runs SQLite and waits for its disk flushes, so neither
 * holds up the event loop that serves the gateway's sockets and the services. Operations cross as
 * structured clones (Dates survive), and errors come back as the classes the repositories expect
 * (DuplicateKeyError with its index, StoreUnavailableError, StoreFileError, TypeError...).
 *
 * The thread keeps the process alive only while an operation waits for it. If it dies, the
 * operations waiting for it reject with StoreUnavailableError (whether they were applied is not
 * known, as with a lost connection to a database server), and the next operation starts a new
 * thread, which reopens the open stores from their files and declares their indexes again.
 */
import { Worker } from "node:worker_threads";
import { DuplicateKeyError, StoreUnavailableError } from "../errors.ts";
import type { StoreReply, StoreRequest, WireError } from "./embedded-worker.ts";
import { COLLECTION_NAME, StoreFileError, type Synchronous } from "./sqlite.ts";
import type {
  Collection,
  CollectionOperation,
  Doc,
  Filter,
  FindOptions,
  IndexSpec,
  InsertOptions,
  Store,
  Update,
  UpdateOptions,
} from "./types.ts";

export interface EmbeddedStoreOptions {
  dataDir: string;
  synchronous?: Synchronous | undefined;
}

type Outgoing = StoreRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

interface Waiter {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** A running thread and the requests waiting for its answers. */
interface Live {
  worker: Worker;
  waiting: Map<number, Waiter>;
}

/** The one thread of the process and the stores open on it. */
class StoreThread {
  #live: Live | undefined;
  #nextId = 1;
  readonly #stores = new Set<ThreadedEmbeddedStore>();

  /** Opens the store on the thread, starting the thread if there is none. */
  add(store: ThreadedEmbeddedStore): Promise<unknown> {
    if (!this.#live) this.#spawn();
    this.#stores.add(store);
    return store.replay();
  }

  remove(store: ThreadedEmbeddedStore): void {
    this.#stores.delete(store);
  }

  request(message: Outgoing): Promise<unknown> {
    const { worker, waiting } = this.#live ?? this.#spawn();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      // An argument that cannot be copied (a function, a symbol...) fails here, before any wait.
      worker.postMessage({ ...message, id });
      waiting.set(id, { resolve, reject });
      if (waiting.size === 1) worker.ref();
    });
  }

  /** Closes a store on the thread; with no thread running there is nothing open to close. */
  async close(store: number): Promise<void> {
    if (this.#live) await this.request({ op: "close", store });
  }

  /** Ends the thread once no store is open on it. */
  async stopIfUnused(): Promise<void> {
    const live = this.#live;
    if (!live || this.#stores.size > 0 || live.waiting.size > 0) return;
    this.#live = undefined;
    await live.worker.terminate();
  }

  async collect(): Promise<void> {
    if (this.#live) await this.request({ op: "collect" });
  }

  #spawn(): Live {
    const worker = new Worker(new URL("./embedded-worker.ts", import.meta.url));
    // Each thread answers only what was asked of it: one that is ending fails its own requests.
    const live: Live = { worker, waiting: new Map() };
    const { waiting } = live;
    worker.unref();
    worker.on("message", (replies: StoreReply[]) => {
      for (const reply of replies) {
        const waiter = waiting.get(reply.id);
        if (!waiter) continue;
        waiting.delete(reply.id);
        if ("error" in reply) waiter.reject(decodeError(reply.error));
        else waiter.resolve(reply.value);
      }
      if (waiting.size === 0) worker.unref();
    });
    // An uncaught error ends the thread; "exit" follows and fails what waited for it.
    let failure: unknown;
    worker.on("error", (err) => {
      failure = err;
    });
    worker.on("exit", (code) => {
      if (this.#live === live) this.#live = undefined;
      const lost = [...waiting.values()];
      waiting.clear();
      const cause = new Error(`the embedded store's thread exited (code ${code})`, { cause: failure });
      for (const waiter of lost) waiter.reject(new StoreUnavailableError(cause));
    });
    this.#live = live;
    for (const store of this.#stores) store.replay();
    return live;
  }
}

const thread = new StoreThread();

/** Collects the garbage of the store's thread (the bench does before it samples memory). */
export function collectStoreThreads(): Promise<void> {
  return thread.collect();
}

let nextStoreId = 1;

export class ThreadedEmbeddedStore implements Store {
  readonly kind = "embedded";
  readonly #id = nextStoreId++;
  readonly #options: EmbeddedStoreOptions;
  readonly #collections = new Map<string, ThreadedCollection<Doc>>();
  /** The index declarations made so far, per collection, declared again on a new thread. */
  readonly #indexes = new Map<string, IndexSpec[][]>();
  #closed = false;

  readonly #onClose: (() => void) | undefined;

  private constructor(options: EmbeddedStoreOptions, onClose: (() => void) | undefined) {
    this.#options = options;
    this.#onClose = onClose;
  }

  /** Opens the store on the thread; rejects (StoreFileError...) when its file cannot be opened. */
  static async open(options: EmbeddedStoreOptions, onClose?: () => void): Promise<ThreadedEmbeddedStore> {
    const store = new ThreadedEmbeddedStore(options, onClose);
    try {
      await thread.add(store);
    } catch (err) {
      // Nothing was opened on the thread; closing only forgets the store and ends an idle thread.
      await store.close().catch(() => undefined);
      throw err;
    }
    return store;
  }

  collection<T extends Doc>(name: string): Collection<T> {
    if (!COLLECTION_NAME.test(name)) throw new TypeError(`Invalid collection name "${name}"`);
    let collection = this.#collections.get(name);
    if (!collection) {
      collection = new ThreadedCollection(name, this);
      this.#collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  async collectionNames(): Promise<string[]> {
    return (await this.#request({ op: "collections", store: this.#id })) as string[];
  }

  async ping(): Promise<void> {
    await this.#request({ op: "ping", store: this.#id });
  }

  /** The most pages (4 KiB) the database may hold, as if the disk were that size: for tests of a full disk. */
  async setMaxPageCount(pages: number): Promise<void> {
    await this.#request({ op: "maxPageCount", store: this.#id, pages });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    thread.remove(this);
    try {
      await thread.close(this.#id);
    } finally {
      this.#onClose?.();
      await thread.stopIfUnused();
    }
  }

  /** @internal One collection operation on the thread. */
  call(collection: string, method: CollectionOperation, args: unknown[]): Promise<unknown> {
    if (method === "ensureIndexes") this.#record(collection, args[0] as IndexSpec[]);
    return this.#request({ op: "call", store: this.#id, collection, method, args });
  }

  /** @internal Opens this store on a (new) thread and declares its indexes there again. */
  replay(): Promise<unknown> {
    const ignore = () => undefined;
    const opened = thread.request({ op: "open", store: this.#id, ...this.#options });
    opened.catch(ignore);
    for (const [collection, declarations] of this.#indexes) {
      for (const specs of declarations) {
        void thread
          .request({ op: "call", store: this.#id, collection, method: "ensureIndexes", args: [specs] })
          .catch(ignore);
      }
    }
    return opened;
  }

  #record(collection: string, specs: IndexSpec[]): void {
    const declarations = this.#indexes.get(collection) ?? [];
    const key = JSON.stringify(specs);
    if (!declarations.some((known) => JSON.stringify(known) === key)) declarations.push(specs);
    this.#indexes.set(collection, declarations);
  }

  #request(message: Outgoing): Promise<unknown> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError(new Error("the store is closed")));
    return thread.request(message);
  }
}

class ThreadedCollection<T extends Doc> implements Collection<T> {
  readonly name: string;
  readonly #store: ThreadedEmbeddedStore;

  constructor(name: string, store: ThreadedEmbeddedStore) {
    this.name = name;
    this.#store = store;
  }

  async insertOne(doc: T, _options?: InsertOptions): Promise<T> {
    await this.#call("insertOne", [doc]);
    return doc;
  }

  insertMany(docs: T[]): Promise<number> {
    return this.#call("insertMany", [docs]);
  }

  findOne(filter: Filter): Promise<T | null> {
    return this.#call("findOne", [filter]);
  }

  findByIds(ids: string[]): Promise<(T | null)[]> {
    return this.#call("findByIds", [ids]);
  }

  find(filter: Filter, options?: FindOptions): Promise<T[]> {
    return this.#call("find", options ? [filter, options] : [filter]);
  }

  count(filter: Filter): Promise<number> {
    return this.#call("count", [filter]);
  }

  updateOne(filter: Filter, update: Update, _options?: UpdateOptions): Promise<number> {
    return this.#call("updateOne", [filter, update]);
  }

  updateMany(filter: Filter, update: Update): Promise<number> {
    return this.#call("updateMany", [filter, update]);
  }

  findOneAndUpdate(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<T | null> {
    return this.#call("findOneAndUpdate", options ? [filter, update, options] : [filter, update]);
  }

  deleteOne(filter: Filter): Promise<number> {
    return this.#call("deleteOne", [filter]);
  }

  deleteMany(filter: Filter): Promise<number> {
    return this.#call("deleteMany", [filter]);
  }

  async ensureIndexes(indexes: IndexSpec[]): Promise<void> {
    await this.#call("ensureIndexes", [indexes]);
  }

  #call<R>(method: CollectionOperation, args: unknown[]): Promise<R> {
    return this.#store.call(this.name, method, args) as Promise<R>;
  }
}

const ERROR_CLASSES: Record<string, new (message: string) => Error> = {
  TypeError,
  RangeError,
  SyntaxError,
};

function decodeError(wire: WireError): Error {
  if (wire.kind === "duplicate") return new DuplicateKeyError(wire.index);
  if (wire.kind === "unavailable") return new StoreUnavailableError(new Error(wire.message));
  if (wire.kind === "file") return new StoreFileError(wire.file ?? "", wire.message);
  const ErrorClass = ERROR_CLASSES[wire.name];
  if (ErrorClass) return new ErrorClass(wire.message);
  const err = new Error(wire.message);
  err.name = wire.name;
  return err;
}

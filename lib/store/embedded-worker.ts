/**
 * The embedded store's thread (embedded-thread.ts): hosts the SqliteStore of every data dir the
 * process opens (one connection per file, however many stores share it) and answers their
 * operations, so SQLite's work and its waits for the disk never hold up the event loop that
 * serves the sockets.
 *
 * Group commit: the requests that arrived together are run in order inside one transaction per
 * database, and answered once it has committed. With `synchronous = FULL` a write is on the disk
 * before it is acknowledged, and a burst of writes costs one disk flush, not one each. If the
 * commit fails (a full disk), every request of that transaction is answered StoreFailure (StoreUnavailableError, 503, on the caller's side)
 * and none of its writes is kept.
 */
import path from "node:path";
import { parentPort } from "node:worker_threads";
import { DATABASE_FILE, SqliteStore, StoreFileError, type Synchronous } from "./sqlite.ts";
import type { SqliteCollection } from "./sqlite-collection.ts";
import { DuplicateKeyError, StoreFailure } from "./store-errors.ts";
import { COLLECTION_OPERATIONS, type CollectionOperation, type Doc } from "./types.ts";

export type StoreRequest =
  | { id: number; op: "open"; store: number; dataDir: string; synchronous?: Synchronous | undefined }
  | {
      id: number;
      op: "call";
      store: number;
      collection: string;
      method: CollectionOperation;
      args: unknown[];
    }
  | { id: number; op: "ping" | "close" | "collections"; store: number }
  | { id: number; op: "maxPageCount"; store: number; pages: number }
  | { id: number; op: "collect" };

export interface WireError {
  kind: "duplicate" | "unavailable" | "file" | "other";
  name: string;
  message: string;
  index?: string | undefined;
  file?: string | undefined;
}

export type StoreReply = { id: number; value: unknown } | { id: number; error: WireError };

const METHODS = new Set<string>(COLLECTION_OPERATIONS);

type Args = [never, never, never];

/** The synchronous form of each collection operation (the arguments are as the caller sent them). */
const SYNC: Record<CollectionOperation, (c: SqliteCollection<Doc>, args: Args) => unknown> = {
  insertOne: (c, [doc]) => c.insertOneSync(doc),
  insertMany: (c, [docs]) => c.insertManySync(docs),
  findOne: (c, [filter]) => c.findOneSync(filter),
  findByIds: (c, [ids]) => c.findByIdsSync(ids),
  find: (c, [filter, options]) => c.findSync(filter, options),
  count: (c, [filter]) => c.countSync(filter),
  updateOne: (c, [filter, update]) => c.updateSync(filter, update, 1),
  updateMany: (c, [filter, update]) => c.updateSync(filter, update, Infinity),
  findOneAndUpdate: (c, [filter, update, options]) => c.findOneAndUpdateSync(filter, update, options),
  deleteOne: (c, [filter]) => c.deleteOneSync(filter),
  deleteMany: (c, [filter]) => c.deleteManySync(filter),
  ensureIndexes: (c, [indexes]) => c.ensureIndexesSync(indexes),
};

const port = parentPort;
if (!port) throw new Error("embedded-worker.ts runs as a worker thread of embedded-thread.ts");

/** One connection per database file, shared by the stores open on it. */
const databases = new Map<string, { store: SqliteStore; users: number }>();
const stores = new Map<number, SqliteStore>();
let queue: StoreRequest[] = [];
let scheduled = false;

port.on("message", (request: StoreRequest) => {
  queue.push(request);
  if (scheduled) return;
  scheduled = true;
  setImmediate(flush);
});

interface Answer {
  id: number;
  value?: unknown;
  error?: unknown;
}

function flush(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  const answers: Answer[] = [];
  /** The answers given inside the transaction now open, held until it commits. */
  let pending: Answer[] = [];
  let open: SqliteStore | undefined;
  const settle = () => {
    if (!open) return;
    try {
      open.commit();
    } catch (err) {
      for (const answer of pending) answer.error = unavailable(err);
    }
    open = undefined;
    pending = [];
  };
  for (const request of batch) {
    const answer: Answer = { id: request.id };
    answers.push(answer);
    try {
      if (request.op !== "call") {
        settle();
        answer.value = handle(request);
        continue;
      }
      if (!METHODS.has(request.method)) throw new TypeError(`Unknown collection method "${request.method}"`);
      const store = storeOf(request.store);
      if (open !== store) {
        settle();
        store.begin();
        open = store;
      }
      pending.push(answer);
      const collection = store.collectionOf(request.collection);
      const value = SYNC[request.method](collection, request.args as Args);
      // The caller keeps the document it inserted; sending it back would only copy it again.
      answer.value = request.method === "insertOne" ? undefined : value;
      // A full disk or an I/O error may have ended the transaction: what it held is gone too.
      if (!store.inTransaction) {
        const lost = new Error("the transaction was rolled back");
        for (const earlier of pending) if (earlier !== answer) earlier.error = new StoreFailure(lost);
        open = undefined;
        pending = [];
      }
    } catch (err) {
      answer.error = err;
    }
  }
  settle();
  // One message for the whole batch: a message per answer cost a tenth of the thread's time.
  const replies: StoreReply[] = answers.map((answer) =>
    answer.error === undefined
      ? { id: answer.id, value: answer.value }
      : { id: answer.id, error: encodeError(answer.error) },
  );
  port?.postMessage(replies);
}

function handle(request: Exclude<StoreRequest, { op: "call" }>): unknown {
  switch (request.op) {
    case "open": {
      const file = path.join(request.dataDir, DATABASE_FILE);
      let shared = databases.get(file);
      if (!shared) {
        shared = { store: new SqliteStore({ file, synchronous: request.synchronous }), users: 0 };
        databases.set(file, shared);
      }
      shared.users += 1;
      stores.set(request.store, shared.store);
      return undefined;
    }
    case "ping":
      return storeOf(request.store).pingSync();
    case "collections":
      return storeOf(request.store).collectionNamesSync();
    case "maxPageCount":
      storeOf(request.store).setMaxPageCount(request.pages);
      return undefined;
    case "close": {
      const store = storeOf(request.store);
      stores.delete(request.store);
      const shared = databases.get(store.file);
      if (shared && --shared.users === 0) {
        databases.delete(store.file);
        store.closeSync();
      }
      return undefined;
    }
    case "collect":
      (globalThis as { gc?: () => void }).gc?.();
      return undefined;
  }
}

function storeOf(id: number): SqliteStore {
  const store = stores.get(id);
  if (!store) throw new StoreFailure(new Error("the store is closed"));
  return store;
}

function unavailable(err: unknown): StoreFailure {
  return err instanceof StoreFailure ? err : new StoreFailure(err);
}

function encodeError(err: unknown): WireError {
  if (err instanceof DuplicateKeyError) {
    return { kind: "duplicate", name: err.name, message: err.message, index: err.index };
  }
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof StoreFileError) return { kind: "file", name: err.name, message, file: err.file };
  if (err instanceof StoreFailure) {
    const cause = (err as { cause?: unknown }).cause;
    return { kind: "unavailable", name: err.name, message: cause instanceof Error ? cause.message : message };
  }
  return { kind: "other", name: err instanceof Error ? err.name : "Error", message };
}

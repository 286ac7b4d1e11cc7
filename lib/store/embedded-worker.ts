/**
 * The embedded store's thread (embedded-thread.ts): hosts the EmbeddedStore of every embedded
 * store the process opens and answers their operations, so nedb's indexing, queries and garbage
 * take a core of their own rather than the event loop that serves the sockets. Requests are handled
 * in the order they arrive: a collection's operations reach its nedb queue in the order they were
 * made. Its file appends are synchronous (nedb-appends.ts): nothing else runs on this thread.
 */
import { parentPort } from "node:worker_threads";
import { DuplicateKeyError, StoreUnavailableError } from "../errors.ts";
import { EmbeddedStore } from "./embedded.ts";
import { useSynchronousAppends } from "./nedb-appends.ts";
import { COLLECTION_OPERATIONS, type CollectionOperation } from "./types.ts";

export type StoreRequest =
  | { id: number; op: "open"; store: number; dataDir: string; compactionIntervalMs?: number | undefined }
  | {
      id: number;
      op: "call";
      store: number;
      collection: string;
      method: CollectionOperation;
      args: unknown[];
    }
  | { id: number; op: "ping" | "close"; store: number }
  | { id: number; op: "collect" };

export interface WireError {
  kind: "duplicate" | "unavailable" | "other";
  name: string;
  message: string;
  index?: string | undefined;
}

export type StoreReply = { id: number; value: unknown } | { id: number; error: WireError };

const METHODS = new Set<string>(COLLECTION_OPERATIONS);

const port = parentPort;
if (!port) throw new Error("embedded-worker.ts runs as a worker thread of embedded-thread.ts");
const stores = new Map<number, EmbeddedStore>();
useSynchronousAppends();

port.on("message", (request: StoreRequest) => {
  let result: Promise<unknown>;
  try {
    result = Promise.resolve(handle(request));
  } catch (err) {
    result = Promise.reject(err);
  }
  result.then(
    (value) => port.postMessage({ id: request.id, value } satisfies StoreReply),
    (err: unknown) => port.postMessage({ id: request.id, error: encodeError(err) } satisfies StoreReply),
  );
});

function handle(request: StoreRequest): unknown {
  switch (request.op) {
    case "open":
      stores.set(
        request.store,
        new EmbeddedStore({ dataDir: request.dataDir, compactionIntervalMs: request.compactionIntervalMs }),
      );
      return undefined;
    case "call": {
      if (!METHODS.has(request.method)) throw new TypeError(`Unknown collection method "${request.method}"`);
      const collection = storeOf(request.store).collection(request.collection) as unknown as Record<
        string,
        (...args: unknown[]) => Promise<unknown>
      >;
      const pending = collection[request.method]?.(...request.args);
      // The caller keeps the document it inserted; sending it back would only copy it again.
      return request.method === "insertOne" ? pending?.then(() => undefined) : pending;
    }
    case "ping":
      return storeOf(request.store).ping();
    case "close": {
      const store = storeOf(request.store);
      stores.delete(request.store);
      return store.close();
    }
    case "collect":
      (globalThis as { gc?: () => void }).gc?.();
      return undefined;
  }
}

function storeOf(id: number): EmbeddedStore {
  const store = stores.get(id);
  if (!store) throw new StoreUnavailableError(new Error("the store is closed"));
  return store;
}

function encodeError(err: unknown): WireError {
  if (err instanceof DuplicateKeyError) {
    return { kind: "duplicate", name: err.name, message: err.message, index: err.index };
  }
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof StoreUnavailableError) {
    const cause = (err as { cause?: unknown }).cause;
    return { kind: "unavailable", name: err.name, message: cause instanceof Error ? cause.message : message };
  }
  return { kind: "other", name: err instanceof Error ? err.name : "Error", message };
}

/**
 * The store's errors that must not need Moleculer: the SQLite store runs on a worker thread
 * (embedded-worker.ts) that loads neither Moleculer nor anything else it does not use, which keeps
 * the thread's start-up and memory small. lib/errors.ts re-exports DuplicateKeyError; the threaded
 * store answers a StoreFailure as StoreUnavailableError (503).
 */

/** Raised by a store backend when a unique index is violated; repositories translate it. */
export class DuplicateKeyError extends Error {
  readonly index: string | undefined;
  constructor(index: string | undefined, cause?: unknown) {
    super(`Duplicate key${index ? ` for index ${index}` : ""}`, { cause });
    this.name = "DuplicateKeyError";
    this.index = index;
  }
}

/** The SQLite store cannot be used now (closed, full disk, I/O error, file removed...). */
export class StoreFailure extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "StoreFailure";
  }
}

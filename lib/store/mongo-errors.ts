/** Sorting MongoDB driver errors into the store's errors. */
import {
  MongoBulkWriteError,
  MongoClientClosedError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from "mongodb";
import { DuplicateKeyError, StoreUnavailableError } from "../errors.ts";
import { escapeRegExp } from "./filter.ts";

const UNAVAILABLE_CLASSES = [
  MongoNetworkError,
  MongoServerSelectionError,
  MongoNotConnectedError,
  MongoTopologyClosedError,
  MongoServerClosedError,
  MongoClientClosedError,
  MongoOperationTimeoutError,
];

/** Pool errors the driver does not export as classes. */
const UNAVAILABLE_NAMES = new Set(["MongoPoolClosedError", "MongoWaitQueueTimeoutError"]);

/** A server that is unreachable, shutting down, or not (or no longer) primary: worth a retry later. */
const UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

/** FerretDB reports a unique index broken by an update as an InternalError from its backend. */
const SQLITE_UNIQUE = /UNIQUE constraint failed: index '([^']+)'/;
const POSTGRES_UNIQUE = /duplicate key value violates unique constraint "([^"]+)" \(SQLSTATE 23505\)/;

export function isDuplicateKey(err: unknown): err is MongoServerError {
  return err instanceof MongoServerError && isDuplicateKeyReport(err.code, err.errmsg ?? err.message);
}

/** A server's error code and message (of an error, or of one write of a bulk write) say duplicate key. */
export function isDuplicateKeyReport(code: unknown, message: string): boolean {
  return code === 11000 || code === 11001 || SQLITE_UNIQUE.test(message) || POSTGRES_UNIQUE.test(message);
}

export function isUnavailable(err: unknown): boolean {
  if (UNAVAILABLE_CLASSES.some((type) => err instanceof type)) return true;
  // A bulk write (insertMany) that failed on the driver's side, not by a write the server refused,
  // carries the driver's error as its response: a lost connection is that error.
  if (err instanceof MongoBulkWriteError && (err.errorResponse as unknown) instanceof Error)
    return isUnavailable(err.errorResponse);
  if (err instanceof MongoServerError) return typeof err.code === "number" && UNAVAILABLE_CODES.has(err.code);
  if (!(err instanceof Error)) return false;
  // A socket error the driver passes on as it is: writing to a connection the server has just
  // closed gives a plain Error with code EPIPE ("This socket has been ended by the other party").
  const code = (err as Error & { code?: unknown }).code;
  return UNAVAILABLE_NAMES.has(err.name) || (typeof code === "string" && SOCKET_CODES.has(code));
}

const SOCKET_CODES = new Set([
  "EPIPE",
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ENOTCONN",
]);

/**
 * The index a duplicate-key error names, if it does. MongoDB: "... index: email_unique dup key: ...".
 * FerretDB names it only when an update broke it, as its SQLite index, "<collection>_<hash>_<index>",
 * or its PostgreSQL one, "<table>_<index>_<hash>_idx" with a table "<collection>_<hash>" whose
 * name FerretDB shortens and escapes; its insert errors name no index at all.
 */
export function indexNameInMessage(err: MongoServerError, collection: string): string | undefined {
  const message = err.errmsg ?? err.message;
  const mongo = /index: (\S+) dup key/.exec(message)?.[1];
  if (mongo) return mongo;
  const postgres = POSTGRES_UNIQUE.exec(message)?.[1];
  if (postgres) return /^[a-z0-9_]*?_[0-9a-f]{8}_(.+)_[0-9a-f]{8}_idx$/.exec(postgres)?.[1];
  const sqlite = SQLITE_UNIQUE.exec(message)?.[1];
  const table = new RegExp(`^_?${escapeRegExp(collection.toLowerCase())}_[0-9a-f]{8}_`);
  return sqlite && table.test(sqlite) ? sqlite.replace(table, "") : undefined;
}

export function toStoreError(err: unknown, collection: string): unknown {
  if (err instanceof DuplicateKeyError || err instanceof StoreUnavailableError) return err;
  if (isDuplicateKey(err)) return new DuplicateKeyError(indexNameInMessage(err, collection), err);
  if (isUnavailable(err)) return new StoreUnavailableError(err);
  return err;
}

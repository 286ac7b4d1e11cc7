/** SQLite's errors as the store's: unique violations, a store that cannot be used now, a damaged file. */
import { DuplicateKeyError, StoreFailure } from "./store-errors.ts";

/** The database file cannot be used: it is not a database, or is damaged. Never written over. */
export class StoreFileError extends Error {
  readonly file: string;
  constructor(file: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "StoreFileError";
    this.file = file;
  }

  static of(file: string, problem: string, cause?: unknown): StoreFileError {
    return new StoreFileError(
      file,
      `The embedded store's file ${file} ${problem}. It was left as it is. Restore a backup with ` +
        "`npm run restore -- BACKUP_FILE` (the platform stopped), or move the file away to start empty.",
      cause,
    );
  }
}

interface SqliteError extends Error {
  code?: string;
  errcode?: number;
  errstr?: string;
}

const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;
/** Primary result codes that mean the store cannot be used now: busy, locked, I/O, corrupt, full... */
const UNAVAILABLE = new Set([5, 6, 7, 8, 10, 11, 13, 14, 15, 26]);

export function translate(err: unknown, file: string): unknown {
  if (err instanceof DuplicateKeyError || err instanceof StoreFailure) return err;
  const sqlite = err as SqliteError;
  if (sqlite?.code === "ERR_SQLITE_ERROR" && typeof sqlite.errcode === "number") {
    if (sqlite.errcode === SQLITE_CONSTRAINT_UNIQUE || sqlite.errcode === SQLITE_CONSTRAINT_PRIMARYKEY) {
      return new DuplicateKeyError(indexNameOf(sqlite.message), err);
    }
    if (UNAVAILABLE.has(sqlite.errcode & 0xff)) {
      return new StoreFailure(new Error(`${file}: ${sqlite.message}`, { cause: err }));
    }
  }
  if (sqlite?.code === "ERR_INVALID_STATE") return new StoreFailure(err);
  return err;
}

/** "UNIQUE constraint failed: index 'accounts$email_unique'" or "...: accounts._id". */
function indexNameOf(message: string): string | undefined {
  const named = /index '[^'$]+\$([^']+)'/.exec(message);
  if (named) return named[1];
  return /failed: [^ ]+\._id\b/.test(message) ? "_id_" : undefined;
}

export function isCorruption(err: unknown): boolean {
  const code = (err as SqliteError)?.errcode;
  return typeof code === "number" && ((code & 0xff) === 11 || (code & 0xff) === 26);
}

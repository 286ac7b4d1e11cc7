/**
 * The embedded store on `node:sqlite`: one database file, `<DATA_DIR>/social.sqlite`, in WAL mode.
 *
 * Layout. Each collection is a table `(_id TEXT PRIMARY KEY, doc TEXT, dates TEXT)`: the document
 * as JSON (sqlite-codec.ts), which every query reads through `json_extract`, and the paths that held
 * Dates. An IndexSpec becomes an expression index over those same `json_extract` terms, unique
 * ones included, so SQLite itself enforces every uniqueness the platform relies on (email, lower-
 * cased username, one direct chat per pair, a message's `chatId_seq` id, one clientMsgId per
 * sender and chat, token hashes) and answers lookups from the index, whatever the size. Typed
 * columns would serve the same queries; expression indexes keep the store generic (any collection,
 * any field, as on MongoDB) with one definition of each field's expression. Arrays in indexed fields
 * (a chat's `members`) get a multikey table `<name>$multi (field, value, _id)`, kept in step with
 * every write, so "chats where members holds X" is an index lookup too; `$fields` records which
 * indexed fields exist and which have held arrays.
 *
 * Writes are read-modify-write in JavaScript inside a transaction (apply-update.ts): on one
 * connection with synchronous calls nothing interleaves, so each operation is atomic, and a failed
 * one (a unique index, a full disk) leaves nothing behind. The caller may group many operations in
 * one transaction (begin/commit): the store's thread commits each batch at once (embedded-worker.ts).
 *
 * Durability is SQLite's: with `synchronous = FULL` (the default) a committed transaction is on the
 * disk when the commit returns, so it survives a crash of the process and a power cut; `NORMAL`
 * survives a crash of the process, but a power cut may lose the last transactions before a
 * checkpoint (never the database's consistency).
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { SqliteCollection } from "./sqlite-collection.ts";
import { isCorruption, StoreFileError, translate } from "./sqlite-errors.ts";
import { StoreFailure } from "./store-errors.ts";
import type { Collection, Doc, Store } from "./types.ts";

export { StoreFileError } from "./sqlite-errors.ts";

export const DATABASE_FILE = "social.sqlite";
export const COLLECTION_NAME = /^[A-Za-z0-9_-]+$/;
const TTL_SWEEP_MS = 60_000;
/** SQLite's page cache per connection, in KiB (negative cache_size). */
const CACHE_KIB = 16 * 1024;

export type Synchronous = "FULL" | "NORMAL";

export interface SqliteStoreOptions {
  file: string;
  synchronous?: Synchronous;
  /**
   * The most pages (4 KiB each) the database may hold; writes beyond it fail as on a full disk.
   * Unset: as many as the disk holds.
   */
  maxPageCount?: number;
}

export class SqliteStore implements Store {
  readonly kind = "embedded";
  readonly file: string;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  readonly #collections = new Map<string, SqliteCollection<Doc>>();
  readonly #ttl = new Map<string, { collection: string; field: string; seconds: number }>();
  #sweeper: NodeJS.Timeout | undefined;
  #open = true;
  /** The file's inode when opened: a file removed or replaced since is not written to. */
  readonly #inode: number;

  constructor(options: SqliteStoreOptions) {
    this.file = options.file;
    checkFileHeader(options.file);
    // Made by the owner for the owner: SQLite gives its -wal and -shm files the same mode.
    closeSync(openSync(options.file, "a", 0o600));
    try {
      this.#db = new DatabaseSync(options.file, { timeout: 5_000 });
      this.#db.exec(`
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = ${options.synchronous ?? "FULL"};
        PRAGMA cache_size = -${CACHE_KIB};
        PRAGMA temp_store = MEMORY;
        PRAGMA journal_size_limit = ${64 * 1024 * 1024};
        CREATE TABLE IF NOT EXISTS "$fields" (
          collection TEXT NOT NULL, field TEXT NOT NULL, multikey INTEGER NOT NULL DEFAULT 0,
          PRIMARY KEY (collection, field)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS "$arrayIndexes" (
          collection TEXT NOT NULL, name TEXT NOT NULL, first TEXT NOT NULL, second TEXT NOT NULL,
          PRIMARY KEY (collection, name)) WITHOUT ROWID;
      `);
      if (options.maxPageCount !== undefined) this.setMaxPageCount(options.maxPageCount);
      this.#inode = statSync(options.file).ino;
    } catch (err) {
      throw isCorruption(err) ? StoreFileError.of(options.file, "is not a usable database", err) : err;
    }
  }

  collection<T extends Doc>(name: string): Collection<T> {
    return this.collectionOf(name) as unknown as Collection<T>;
  }

  /** @internal The collection with its synchronous operations (the store's thread calls them). */
  collectionOf(name: string): SqliteCollection<Doc> {
    if (!COLLECTION_NAME.test(name)) throw new TypeError(`Invalid collection name "${name}"`);
    let collection = this.#collections.get(name);
    if (!collection) {
      collection = new SqliteCollection(name, this);
      this.#collections.set(name, collection);
    }
    return collection;
  }

  async collectionNames(): Promise<string[]> {
    return this.collectionNamesSync();
  }

  collectionNamesSync(): string[] {
    return this.run(() =>
      (
        this.statement(
          `SELECT name FROM sqlite_master WHERE type = 'table' AND instr(name, '$') = 0 AND name NOT LIKE 'sqlite%' ORDER BY name`,
        ).all() as { name: string }[]
      ).map((row) => row.name),
    );
  }

  async ping(): Promise<void> {
    this.pingSync();
  }

  pingSync(): void {
    this.run(() => {
      this.#checkFile();
      this.statement("SELECT 1").get();
    });
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (!this.#open) return;
    this.#open = false;
    clearInterval(this.#sweeper);
    if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
    this.#db.close();
  }

  /** Insert-or-replace by `_id` in one transaction, no unique index but `_id` consulted: for import and copy. */
  putRaw(collection: string, docs: Doc[]): void {
    const target = this.collectionOf(collection);
    this.atomic(() => {
      for (const doc of docs) target.replaceRaw(doc);
    });
  }

  /** Deletes by `_id` in one transaction. */
  deleteRaw(collection: string, ids: string[]): void {
    const target = this.collectionOf(collection);
    this.atomic(() => {
      for (const id of ids) target.deleteOneSync({ _id: id });
    });
  }

  /** Starts a transaction that groups the operations until commit(). */
  begin(): void {
    this.run(() => {
      this.#checkFile();
      this.#db.exec("BEGIN IMMEDIATE");
    });
  }

  /** Commits what began; on failure everything since begin() is rolled back and the error thrown. */
  commit(): void {
    this.run(() => {
      try {
        this.#db.exec("COMMIT");
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw err;
      }
    });
  }

  get inTransaction(): boolean {
    return this.#open && this.#db.isTransaction;
  }

  /** The limit of maxPageCount, changed on the open database (tests of a full disk). */
  setMaxPageCount(pages: number): void {
    this.#db.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor(pages))}`);
  }

  /** @internal Runs `fn` as one atomic step: a savepoint inside a transaction, else a transaction. */
  atomic<R>(fn: () => R): R {
    return this.run(() => {
      const db = this.#db;
      const nested = db.isTransaction;
      if (!nested) this.#checkFile();
      db.exec(nested ? "SAVEPOINT op" : "BEGIN IMMEDIATE");
      try {
        const result = fn();
        db.exec(nested ? "RELEASE op" : "COMMIT");
        return result;
      } catch (err) {
        // A full disk or an I/O error may have rolled the whole transaction back already.
        if (db.isTransaction) db.exec(nested ? "ROLLBACK TO op; RELEASE op" : "ROLLBACK");
        throw err;
      }
    });
  }

  /** Writes to a file that was removed (its data dir deleted) or replaced would be lost: refused. */
  #checkFile(): void {
    const stat = statSync(this.file, { throwIfNoEntry: false });
    if (stat?.ino !== this.#inode) {
      throw new StoreFailure(new Error(`${this.file} was removed or replaced while open`));
    }
  }

  /** @internal A prepared statement, cached by its text. */
  statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      if (this.#statements.size >= 1_000) this.#statements.clear();
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** @internal Runs `fn`, its SQLite errors translated into the store's. */
  run<R>(fn: () => R): R {
    if (!this.#open) throw new StoreFailure(new Error("the store is closed"));
    try {
      return fn();
    } catch (err) {
      throw translate(err, this.file);
    }
  }

  /** @internal Keeps the documents of a TTL index's collection younger than its seconds. */
  expireAfter(collection: string, field: string, seconds: number): void {
    this.#ttl.set(`${collection}.${field}`, { collection, field, seconds });
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => this.sweepExpired(), TTL_SWEEP_MS);
    this.#sweeper.unref();
  }

  /** Removes documents past their TTL; one that fails (a full disk) is done again by the next sweep. */
  sweepExpired(now = Date.now()): void {
    for (const { collection, field, seconds } of this.#ttl.values()) {
      const cutoff = new Date(now - seconds * 1000);
      try {
        this.collectionOf(collection).deleteManySync({ [field]: { $lt: cutoff } });
      } catch {
        // Swept again in a minute.
      }
    }
  }
}

const HEADER = "SQLite format 3\0";

/**
 * A file that exists must be an SQLite database at least as long as its header says: a file that
 * is not (overwritten, truncated) is refused before SQLite opens it, so it is never written over.
 */
function checkFileHeader(file: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return;
  }
  if (size === 0) return;
  const header = Buffer.alloc(100);
  const fd = openSync(file, "r");
  try {
    readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 100 || header.toString("latin1", 0, 16) !== HEADER) {
    throw StoreFileError.of(file, "is not an SQLite database");
  }
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize;
  const pages = header.readUInt32BE(28);
  if (pages > 0 && size < pages * pageSize) {
    throw StoreFileError.of(file, `is truncated (${size} bytes of ${pages * pageSize})`);
  }
}

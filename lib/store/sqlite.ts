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
import { randomUUID } from "node:crypto";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { DuplicateKeyError, StoreUnavailableError } from "../errors.ts";
import { applyUpdate, getPath, upsertDocument } from "./apply-update.ts";
import { decodeDocument, encodeDocument, fieldExpression, jsonPath } from "./sqlite-codec.ts";
import { type QueryTarget, type SqlParam, toSqlOrder, toSqlWhere } from "./sqlite-query.ts";
import type { Collection, Doc, Filter, FindOptions, IndexSpec, Store, Update } from "./types.ts";

export const DATABASE_FILE = "social.sqlite";
export const COLLECTION_NAME = /^[A-Za-z0-9_-]+$/;
const INDEX_NAME = /^[A-Za-z0-9_-]+$/;
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
          `SELECT name FROM sqlite_master WHERE type = 'table' AND instr(name, '$') = 0 ORDER BY name`,
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
      throw new StoreUnavailableError(new Error(`${this.file} was removed or replaced while open`));
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
    if (!this.#open) throw new StoreUnavailableError(new Error("the store is closed"));
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

/** The state of one collection and its synchronous operations; the async ones wrap them. */
export class SqliteCollection<T extends Doc> implements Collection<T> {
  readonly name: string;
  readonly #store: SqliteStore;
  readonly #table: string;
  readonly #target: QueryTarget & { indexedFields: Set<string>; multikeyFields: Set<string> };
  #created = false;

  constructor(name: string, store: SqliteStore) {
    this.name = name;
    this.#store = store;
    this.#table = `"${name}"`;
    this.#target = { multikeyTable: `"${name}$multi"`, indexedFields: new Set(), multikeyFields: new Set() };
  }

  async insertOne(doc: T): Promise<T> {
    this.insertOneSync(doc);
    return doc;
  }

  async insertMany(docs: T[]): Promise<number> {
    return this.insertManySync(docs);
  }

  async findOne(filter: Filter): Promise<T | null> {
    return this.findOneSync(filter);
  }

  async find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    return this.findSync(filter, options);
  }

  async count(filter: Filter): Promise<number> {
    return this.countSync(filter);
  }

  async updateOne(filter: Filter, update: Update): Promise<number> {
    return this.updateSync(filter, update, 1);
  }

  async updateMany(filter: Filter, update: Update): Promise<number> {
    return this.updateSync(filter, update, Infinity);
  }

  async findOneAndUpdate(
    filter: Filter,
    update: Update,
    options: { upsert?: boolean } = {},
  ): Promise<T | null> {
    return this.findOneAndUpdateSync(filter, update, options);
  }

  async deleteOne(filter: Filter): Promise<number> {
    return this.deleteOneSync(filter);
  }

  async deleteMany(filter: Filter): Promise<number> {
    return this.deleteManySync(filter);
  }

  async ensureIndexes(indexes: IndexSpec[]): Promise<void> {
    this.ensureIndexesSync(indexes);
  }

  insertOneSync(doc: T): void {
    this.#write(() => this.#insert(doc));
  }

  /** Inserts in order in one transaction, stopping at the first a unique index refuses. */
  insertManySync(docs: T[]): number {
    if (docs.length === 0) return 0;
    return this.#write(() => {
      for (const [i, doc] of docs.entries()) {
        try {
          // The INSERT comes first in #insert: a document it refuses has left nothing behind.
          this.#insert(doc);
        } catch (err) {
          const translated = translate(err, this.#store.file);
          if (translated instanceof DuplicateKeyError) return i;
          throw translated;
        }
      }
      return docs.length;
    });
  }

  findOneSync(filter: Filter): T | null {
    return this.findSync(filter, { limit: 1 })[0] ?? null;
  }

  findSync(filter: Filter, options: FindOptions = {}): T[] {
    return this.#read(() => {
      const where = toSqlWhere(filter, this.#target);
      const params: SqlParam[] = [...where.params];
      let sql = `SELECT doc, dates FROM ${this.#table} WHERE ${where.sql}${toSqlOrder(options)}`;
      if (options.limit !== undefined || options.skip !== undefined) {
        sql += " LIMIT ? OFFSET ?";
        params.push(options.limit && options.limit > 0 ? options.limit : -1, options.skip ?? 0);
      }
      const rows = this.#store.statement(sql).all(...params) as { doc: string; dates: string | null }[];
      return rows.map((row) => decodeDocument<T>(row.doc, row.dates));
    });
  }

  countSync(filter: Filter): number {
    return this.#read(() => {
      const where = toSqlWhere(filter, this.#target);
      const row = this.#store
        .statement(`SELECT count(*) AS n FROM ${this.#table} WHERE ${where.sql}`)
        .get(...where.params) as { n: number };
      return row.n;
    });
  }

  updateSync(filter: Filter, update: Update, most: number): number {
    return this.#write(() => {
      const rows = this.#matching(filter, most);
      for (const row of rows) this.#replace(row, applyUpdate(row.doc as Plain, update) as T);
      return rows.length;
    });
  }

  findOneAndUpdateSync(filter: Filter, update: Update, options: { upsert?: boolean } = {}): T | null {
    return this.#write(() => {
      const [row] = this.#matching(filter, 1);
      if (row) {
        const updated = applyUpdate(row.doc as Plain, update) as T;
        this.#replace(row, updated);
        return updated;
      }
      if (!options.upsert) return null;
      const inserted = upsertDocument(filter, update) as T;
      inserted._id ??= randomUUID();
      this.#insert(inserted);
      return inserted;
    });
  }

  deleteOneSync(filter: Filter): number {
    return this.#delete(filter, 1);
  }

  deleteManySync(filter: Filter): number {
    return this.#delete(filter, -1);
  }

  /**
   * Creates each index (a unique one fails with DuplicateKeyError when documents already break it),
   * replaces one whose definition changed, drops retired ones; fields newly indexed get their
   * arrays' elements into the multikey table. TTL indexes are swept once a minute.
   */
  ensureIndexesSync(indexes: IndexSpec[]): void {
    this.#write(() => {
      for (const spec of indexes) {
        if (!INDEX_NAME.test(spec.name)) throw new TypeError(`Invalid index name "${spec.name}"`);
        const name = `"${this.name}$${spec.name}"`;
        if (spec.retired) {
          this.#store.statement(`DROP INDEX IF EXISTS ${name}`).run();
          continue;
        }
        const fields = Object.entries(spec.fields);
        const terms = fields.map(
          ([field, direction]) => `${column(field)}${direction === -1 ? " DESC" : ""}`,
        );
        const present = fields.map(([field]) => `json_type(doc, '${jsonPath(field)}') IS NOT NULL`);
        const sql =
          `CREATE ${spec.unique ? "UNIQUE " : ""}INDEX ${name} ON ${this.#table} (${terms.join(", ")})` +
          (spec.sparse ? ` WHERE ${present.join(" OR ")}` : "");
        const existing = this.#store
          .statement("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?")
          .get(`${this.name}$${spec.name}`) as { sql: string } | undefined;
        if (existing?.sql !== sql) {
          if (existing) this.#store.statement(`DROP INDEX ${name}`).run();
          try {
            this.#store.atomic(() => this.#store.statement(sql).run());
          } catch (err) {
            if (err instanceof DuplicateKeyError) throw new DuplicateKeyError(spec.name, err);
            throw err;
          }
        }
        for (const [field] of fields) if (field !== "_id") this.#index(field);
        const [ttlField] = fields;
        if (spec.expireAfterSeconds !== undefined && ttlField) {
          this.#store.expireAfter(this.name, ttlField[0], spec.expireAfterSeconds);
        }
      }
    });
  }

  /** @internal Insert-or-replace by `_id` (putRaw). */
  replaceRaw(doc: Doc): void {
    this.#ensureTable();
    const old = this.#matching({ _id: doc._id }, 1)[0];
    if (old) this.#replace(old, doc as T);
    else this.#insert(doc as T);
  }

  #insert(doc: T): void {
    if (typeof doc._id !== "string") {
      if (doc._id !== undefined) throw new TypeError("A document's _id must be a string");
      doc._id = randomUUID();
    }
    const encoded = encodeDocument(doc);
    this.#store
      .statement(`INSERT INTO ${this.#table} (_id, doc, dates) VALUES (?, ?, ?)`)
      .run(doc._id, encoded.json, encoded.dates);
    this.#addElements(doc);
  }

  #replace(row: Row<T>, doc: T): void {
    const encoded = encodeDocument(doc);
    this.#store
      .statement(`UPDATE ${this.#table} SET doc = ?, dates = ? WHERE rowid = ?`)
      .run(encoded.json, encoded.dates, row.rowid);
    if (this.#target.multikeyFields.size > 0) this.#removeElements([row.doc._id]);
    this.#addElements(doc);
  }

  #delete(filter: Filter, most: number): number {
    return this.#write(() => {
      const where = toSqlWhere(filter, this.#target);
      const multikey = this.#target.multikeyFields.size > 0;
      const sql =
        `DELETE FROM ${this.#table} WHERE rowid IN (SELECT rowid FROM ${this.#table} WHERE ${where.sql} LIMIT ?)` +
        (multikey ? " RETURNING _id" : "");
      const statement = this.#store.statement(sql);
      if (!multikey) return Number(statement.run(...where.params, most).changes);
      const ids = (statement.all(...where.params, most) as { _id: string }[]).map((row) => row._id);
      this.#removeElements(ids);
      return ids.length;
    });
  }

  #matching(filter: Filter, most: number): Row<T>[] {
    const where = toSqlWhere(filter, this.#target);
    const rows = this.#store
      .statement(`SELECT rowid, doc, dates FROM ${this.#table} WHERE ${where.sql} LIMIT ?`)
      .all(...where.params, Number.isFinite(most) ? most : -1) as {
      rowid: number;
      doc: string;
      dates: string | null;
    }[];
    return rows.map((row) => ({ rowid: row.rowid, doc: decodeDocument<T>(row.doc, row.dates) }));
  }

  /** Records an indexed field; its existing arrays' elements go into the multikey table once. */
  #index(field: string): void {
    if (this.#target.indexedFields.has(field)) return;
    this.#ensureMultikeyTable();
    const path = jsonPath(field);
    const added = this.#store
      .statement(
        `INSERT INTO ${this.#target.multikeyTable} (field, value, _id)
         SELECT ?, j.value, t._id FROM ${this.#table} t, json_each(t.doc, '${path}') j
         WHERE json_type(t.doc, '${path}') = 'array'`,
      )
      .run(field).changes;
    this.#store
      .statement(`INSERT OR IGNORE INTO "$fields" (collection, field) VALUES (?, ?)`)
      .run(this.name, field);
    this.#target.indexedFields.add(field);
    if (Number(added) > 0) this.#markMultikey(field);
  }

  #addElements(doc: T): void {
    for (const field of this.#target.indexedFields) {
      const value = getPath(doc as unknown as Record<string, unknown>, field);
      if (!Array.isArray(value) || value.length === 0) continue;
      this.#markMultikey(field);
      const insert = this.#store.statement(
        `INSERT INTO ${this.#target.multikeyTable} (field, value, _id) SELECT ?, value, ? FROM json_each(?)`,
      );
      insert.run(
        field,
        doc._id,
        JSON.stringify(value.map((element) => (element instanceof Date ? element.toISOString() : element))),
      );
    }
  }

  #removeElements(ids: string[]): void {
    const remove = this.#store.statement(`DELETE FROM ${this.#target.multikeyTable} WHERE _id = ?`);
    for (const id of ids) remove.run(id);
  }

  #markMultikey(field: string): void {
    if (this.#target.multikeyFields.has(field)) return;
    this.#store
      .statement(`UPDATE "$fields" SET multikey = 1 WHERE collection = ? AND field = ?`)
      .run(this.name, field);
    this.#target.multikeyFields.add(field);
  }

  #ensureMultikeyTable(): void {
    const table = this.#target.multikeyTable;
    this.#store
      .statement(`CREATE TABLE IF NOT EXISTS ${table} (field TEXT NOT NULL, value, _id TEXT NOT NULL)`)
      .run();
    this.#store
      .statement(`CREATE INDEX IF NOT EXISTS "${this.name}$multi$value" ON ${table} (field, value, _id)`)
      .run();
    this.#store.statement(`CREATE INDEX IF NOT EXISTS "${this.name}$multi$id" ON ${table} (_id)`).run();
  }

  /** The table, made on first use, and what `$fields` knows of its indexed fields. */
  #ensureTable(): void {
    if (this.#created) return;
    this.#store
      .statement(
        `CREATE TABLE IF NOT EXISTS ${this.#table} (_id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL, dates TEXT)`,
      )
      .run();
    const known = this.#store
      .statement(`SELECT field, multikey FROM "$fields" WHERE collection = ?`)
      .all(this.name) as { field: string; multikey: number }[];
    if (known.length > 0) this.#ensureMultikeyTable();
    for (const { field, multikey } of known) {
      this.#target.indexedFields.add(field);
      if (multikey) this.#target.multikeyFields.add(field);
    }
    this.#created = true;
  }

  #read<R>(fn: () => R): R {
    return this.#store.run(() => {
      this.#ensureTable();
      return fn();
    });
  }

  #write<R>(fn: () => R): R {
    return this.#store.atomic(() => {
      this.#ensureTable();
      return fn();
    });
  }
}

type Plain = Record<string, unknown>;

interface Row<T> {
  rowid: number;
  doc: T;
}

function column(field: string): string {
  return field === "_id" ? "_id" : fieldExpression(field);
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

function translate(err: unknown, file: string): unknown {
  if (err instanceof DuplicateKeyError || err instanceof StoreUnavailableError) return err;
  const sqlite = err as SqliteError;
  if (sqlite?.code === "ERR_SQLITE_ERROR" && typeof sqlite.errcode === "number") {
    if (sqlite.errcode === SQLITE_CONSTRAINT_UNIQUE || sqlite.errcode === SQLITE_CONSTRAINT_PRIMARYKEY) {
      return new DuplicateKeyError(indexNameOf(sqlite.message), err);
    }
    if (UNAVAILABLE.has(sqlite.errcode & 0xff)) {
      return new StoreUnavailableError(new Error(`${file}: ${sqlite.message}`, { cause: err }));
    }
  }
  if (sqlite?.code === "ERR_INVALID_STATE") return new StoreUnavailableError(err);
  return err;
}

/** "UNIQUE constraint failed: index 'accounts$email_unique'" or "...: accounts._id". */
function indexNameOf(message: string): string | undefined {
  const named = /index '[^'$]+\$([^']+)'/.exec(message);
  if (named) return named[1];
  return /failed: [^ ]+\._id\b/.test(message) ? "_id_" : undefined;
}

function isCorruption(err: unknown): boolean {
  const code = (err as SqliteError)?.errcode;
  return typeof code === "number" && ((code & 0xff) === 11 || (code & 0xff) === 26);
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

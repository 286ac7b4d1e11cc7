/**
 * One collection of the SQLite store (sqlite.ts): its table, its indexes, its multikey table, and
 * its operations, synchronous (the store's thread calls those) and as the async Collection.
 */
import { randomUUID } from "node:crypto";
import { applyUpdate, getPath, upsertDocument } from "./apply-update.ts";
import { isCondition } from "./filter.ts";
import type { SqliteStore } from "./sqlite.ts";
import { decodeDocument, encodeDocument, fieldExpression, jsonPath, toSqlScalar } from "./sqlite-codec.ts";
import { translate } from "./sqlite-errors.ts";
import { type QueryTarget, type SqlParam, toSqlOrder, toSqlWhere } from "./sqlite-query.ts";
import { DuplicateKeyError } from "./store-errors.ts";
import type { Collection, Doc, Filter, FindOptions, IndexSpec, Update } from "./types.ts";

const INDEX_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * An index with `arrayPrefix` (types.ts): its table holds one row per distinct element of the
 * first field (or its one value) with the document's second field, so the documents of one
 * element are walked in the second field's order.
 */
interface ArrayIndex {
  table: string;
  first: string;
  second: string;
}

export class SqliteCollection<T extends Doc> implements Collection<T> {
  readonly name: string;
  readonly #store: SqliteStore;
  readonly #table: string;
  readonly #target: QueryTarget & { indexedFields: Set<string>; multikeyFields: Set<string> };
  readonly #arrayIndexes = new Map<string, ArrayIndex>();
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

  async findByIds(ids: string[]): Promise<(T | null)[]> {
    return this.findByIdsSync(ids);
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

  /** One query by primary key for all of them. */
  findByIdsSync(ids: string[]): (T | null)[] {
    if (ids.length === 0) return [];
    return this.#read(() => {
      const rows = this.#store
        .statement(`SELECT _id, doc, dates FROM ${this.#table} WHERE _id IN (SELECT value FROM json_each(?))`)
        .all(JSON.stringify(ids)) as { _id: string; doc: string; dates: string | null }[];
      const byId = new Map(rows.map((row) => [row._id, row]));
      return ids.map((id) => {
        const row = byId.get(id);
        return row ? decodeDocument<T>(row.doc, row.dates) : null;
      });
    });
  }

  findSync(filter: Filter, options: FindOptions = {}): T[] {
    return this.#read(() => {
      const walk = this.#arrayIndexWalk(filter, options);
      const where = toSqlWhere(walk?.rest ?? filter, this.#target);
      const params: SqlParam[] = [...(walk?.params ?? []), ...where.params];
      let sql = walk
        ? `SELECT t.doc, t.dates FROM ${walk.from} WHERE ${walk.where} AND ${where.sql} ORDER BY ${walk.order}`
        : `SELECT doc, dates FROM ${this.#table} WHERE ${where.sql}${toSqlOrder(options)}`;
      if (options.limit !== undefined || options.skip !== undefined) {
        sql += " LIMIT ? OFFSET ?";
        params.push(options.limit && options.limit > 0 ? options.limit : -1, options.skip ?? 0);
      }
      const rows = this.#store.statement(sql).all(...params) as { doc: string; dates: string | null }[];
      return rows.map((row) => decodeDocument<T>(row.doc, row.dates));
    });
  }

  /**
   * How a find with equality on an arrayPrefix index's first field, sorted by its second alone,
   * walks that index's table in order (a range on the second field bounds the walk), joining each
   * row's document, so a page costs its own rows instead of a sort of all the element's documents.
   */
  #arrayIndexWalk(
    filter: Filter,
    options: FindOptions,
  ): { from: string; where: string; order: string; params: SqlParam[]; rest: Filter } | undefined {
    const sort = Object.entries(options.sort ?? {});
    if (sort.length !== 1 || this.#arrayIndexes.size === 0) return undefined;
    const [second, direction] = sort[0] as [string, 1 | -1];
    for (const index of this.#arrayIndexes.values()) {
      if (index.second !== second) continue;
      const value = filter[index.first];
      if (typeof value !== "string" && typeof value !== "number") continue;
      const { [index.first]: _, ...rest } = filter;
      const clauses = ["ix.ixvalue = ?"];
      const params: SqlParam[] = [value];
      const bound = filter[second];
      if (isCondition(bound)) {
        for (const [op, sql] of [
          ["$lt", "<"],
          ["$lte", "<="],
          ["$gt", ">"],
          ["$gte", ">="],
        ] as const) {
          const limit = bound[op] instanceof Date ? toSqlScalar(bound[op]) : bound[op];
          if (typeof limit === "string" || typeof limit === "number") {
            clauses.push(`ix.ixk ${sql} ?`);
            params.push(limit);
          }
        }
      }
      const dir = direction === -1 ? "DESC" : "ASC";
      return {
        from: `${index.table} AS ix CROSS JOIN ${this.#table} AS t ON t._id = ix.ixid`,
        where: clauses.join(" AND "),
        order: `ix.ixk ${dir}, ix.ixid ${dir}`,
        params,
        rest,
      };
    }
    return undefined;
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
          this.#dropArrayIndex(spec.name);
          continue;
        }
        if (spec.arrayPrefix) this.#ensureArrayIndex(spec);
        else this.#dropArrayIndex(spec.name);
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

  /** @internal Insert-or-replace by `_id` (putRaw), in one statement. */
  replaceRaw(doc: Doc): void {
    this.#ensureTable();
    const encoded = encodeDocument(doc);
    this.#store
      .statement(
        `INSERT INTO ${this.#table} (_id, doc, dates) VALUES (?, ?, ?)
         ON CONFLICT (_id) DO UPDATE SET doc = excluded.doc, dates = excluded.dates`,
      )
      .run(doc._id, encoded.json, encoded.dates);
    this.#removeElements([doc._id]);
    this.#addElements(doc as T);
    this.#indexArrays(doc._id, encoded.json);
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
    this.#indexArrays(doc._id, encoded.json);
  }

  #replace(row: Row<T>, doc: T): void {
    const encoded = encodeDocument(doc);
    this.#store
      .statement(`UPDATE ${this.#table} SET doc = ?, dates = ? WHERE rowid = ?`)
      .run(encoded.json, encoded.dates, row.rowid);
    this.#removeElements([row.doc._id]);
    this.#addElements(doc);
    this.#indexArrays(row.doc._id, encoded.json);
  }

  #delete(filter: Filter, most: number): number {
    return this.#write(() => {
      const where = toSqlWhere(filter, this.#target);
      const multikey = this.#target.multikeyFields.size > 0 || this.#arrayIndexes.size > 0;
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
    if (this.#target.multikeyFields.size > 0) {
      const remove = this.#store.statement(`DELETE FROM ${this.#target.multikeyTable} WHERE _id = ?`);
      for (const id of ids) remove.run(id);
    }
    for (const index of this.#arrayIndexes.values()) {
      const remove = this.#store.statement(`DELETE FROM ${index.table} WHERE ixid = ?`);
      for (const id of ids) remove.run(id);
    }
  }

  /** The document's rows in every arrayPrefix index table (its old ones are gone: #removeElements). */
  #indexArrays(id: string, json: string): void {
    for (const index of this.#arrayIndexes.values()) {
      this.#store
        .statement(
          `INSERT INTO ${index.table} (ixvalue, ixk, ixid)
           SELECT DISTINCT j.value, json_extract(?, '${jsonPath(index.second)}'), ? FROM json_each(?, '${jsonPath(index.first)}') j`,
        )
        .run(json, id, json);
    }
  }

  #ensureArrayIndex(spec: IndexSpec): void {
    const fields = Object.keys(spec.fields);
    const [first, second] = fields;
    if (fields.length !== 2 || !first || !second || first === "_id" || spec.unique) {
      throw new TypeError(`Index "${spec.name}": arrayPrefix takes two fields, not _id first, not unique`);
    }
    const table = `"${this.name}$ix$${spec.name}"`;
    const known = this.#arrayIndexes.get(spec.name);
    if (known && known.first === first && known.second === second) return;
    if (known) this.#dropArrayIndex(spec.name);
    this.#store.statement(`CREATE TABLE ${table} (ixvalue, ixk, ixid TEXT NOT NULL)`).run();
    this.#store
      .statement(`CREATE INDEX "${this.name}$ix$${spec.name}$walk" ON ${table} (ixvalue, ixk, ixid)`)
      .run();
    this.#store.statement(`CREATE INDEX "${this.name}$ix$${spec.name}$id" ON ${table} (ixid)`).run();
    this.#store
      .statement(
        `INSERT INTO ${table} (ixvalue, ixk, ixid)
         SELECT DISTINCT j.value, json_extract(t.doc, '${jsonPath(second)}'), t._id
         FROM ${this.#table} t, json_each(t.doc, '${jsonPath(first)}') j`,
      )
      .run();
    this.#store
      .statement(`INSERT INTO "$arrayIndexes" (collection, name, first, second) VALUES (?, ?, ?, ?)`)
      .run(this.name, spec.name, first, second);
    this.#arrayIndexes.set(spec.name, { table, first, second });
  }

  #dropArrayIndex(name: string): void {
    if (!this.#arrayIndexes.has(name)) return;
    this.#store.statement(`DROP TABLE IF EXISTS "${this.name}$ix$${name}"`).run();
    this.#store
      .statement(`DELETE FROM "$arrayIndexes" WHERE collection = ? AND name = ?`)
      .run(this.name, name);
    this.#arrayIndexes.delete(name);
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
    const arrayIndexes = this.#store
      .statement(`SELECT name, first, second FROM "$arrayIndexes" WHERE collection = ?`)
      .all(this.name) as { name: string; first: string; second: string }[];
    for (const { name, first, second } of arrayIndexes) {
      this.#arrayIndexes.set(name, { table: `"${this.name}$ix$${name}"`, first, second });
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

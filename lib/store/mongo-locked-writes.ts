/**
 * The same writes for FerretDB 1.x, whose updates and deletes read the matching documents, change
 * them in memory and write them back by `_id`, without isolation: 20 concurrent compare-and-set
 * updates can all "win" and concurrent `$inc`s are lost. Here each write locks the document
 * (DocLocks), checks under the lock that it still matches, then writes it by `_id`. Inserts need no
 * lock: unique indexes are enforced by the server, so an upsert inserts and, when a concurrent
 * upsert won, updates the winner.
 */
import { randomUUID } from "node:crypto";
import type { Collection, Document } from "mongodb";
import { applyUpdate, upsertDocument } from "./apply-update.ts";
import type { DocLocks } from "./doc-locks.ts";
import { checkable, matchesFilter, pinnedId } from "./id-lookup.ts";
import { duplicateKeyError } from "./mongo-duplicate-key.ts";
import { isDuplicateKey } from "./mongo-errors.ts";
import type { MongoWrites } from "./mongo-writes.ts";
import type { Update } from "./types.ts";

type Found<R> = { value: R } | undefined;

export class LockedWrites implements MongoWrites {
  readonly #collection: Collection<Document>;
  readonly #locks: DocLocks;

  constructor(collection: Collection<Document>, locks: DocLocks) {
    this.#collection = collection;
    this.#locks = locks;
  }

  async updateOne(filter: Document, update: Update): Promise<number> {
    return (await this.#onFirstMatch(filter, (current) => this.#update(current, update))) ? 1 : 0;
  }

  updateMany(filter: Document, update: Update): Promise<number> {
    return this.#onEachMatch(filter, (current) => this.#update(current, update));
  }

  async findOneAndUpdate(filter: Document, update: Update, upsert: boolean): Promise<Document | null> {
    const found = await this.#onFirstMatch(filter, (current) => this.#update(current, update));
    if (found) return found.value;
    if (!upsert) return null;
    const doc: Document = { _id: randomUUID(), ...upsertDocument(filter, update) };
    try {
      await this.#collection.insertOne(doc);
      return doc;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const raced = await this.#onFirstMatch(filter, (current) => this.#update(current, update));
      if (raced) return raced.value;
      throw await duplicateKeyError(this.#collection, err, doc, true);
    }
  }

  async deleteOne(filter: Document): Promise<number> {
    return (await this.#onFirstMatch(filter, (current) => this.#delete(current))) ? 1 : 0;
  }

  deleteMany(filter: Document): Promise<number> {
    return this.#onEachMatch(filter, (current) => this.#delete(current));
  }

  async #onFirstMatch<R>(filter: Document, action: (current: Document) => Promise<R>): Promise<Found<R>> {
    const pinned = pinnedId(filter);
    if (pinned !== undefined) return this.#underLock(filter, pinned, action);
    for (;;) {
      const candidate = await this.#collection.findOne(filter, { projection: { _id: 1 } });
      if (!candidate) return undefined;
      const found = await this.#underLock(filter, candidate._id, action);
      if (found) return found;
    }
  }

  async #onEachMatch<R>(filter: Document, action: (current: Document) => Promise<R>): Promise<number> {
    const candidates = await this.#collection.find(filter, { projection: { _id: 1 } }).toArray();
    let count = 0;
    for (const candidate of candidates) {
      if (await this.#underLock(filter, candidate._id, action)) count++;
    }
    return count;
  }

  /** Runs the action on the document if, once locked, it still matches the filter. */
  #underLock<R>(filter: Document, id: unknown, action: (current: Document) => Promise<R>): Promise<Found<R>> {
    return this.#locks.with(`${this.#collection.collectionName}/${String(id)}`, async () => {
      // By `_id` alone, which FerretDB answers from its key, then the rest checked here.
      const current = checkable(filter)
        ? await this.#collection.findOne({ _id: id } as Document)
        : await this.#collection.findOne({ $and: [filter, { _id: id }] });
      const matching = current && (!checkable(filter) || matchesFilter(current, filter));
      return matching ? { value: await action(current) } : undefined;
    });
  }

  async #update(current: Document, update: Update): Promise<Document | null> {
    try {
      return await this.#collection.findOneAndUpdate({ _id: current._id }, update, {
        returnDocument: "after",
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      throw await duplicateKeyError(this.#collection, err, applyUpdate(current, update), false);
    }
  }

  async #delete(current: Document): Promise<number> {
    return (await this.#collection.deleteOne({ _id: current._id })).deletedCount;
  }
}

/** The writes whose atomicity depends on the server: MongoDB does them natively. */
import { randomUUID } from "node:crypto";
import type { Collection, Document, UpdateFilter } from "mongodb";
import { equalityFields } from "./filter.ts";
import type { Update } from "./types.ts";

export interface MongoWrites {
  updateOne(filter: Document, update: Update): Promise<number>;
  updateMany(filter: Document, update: Update): Promise<number>;
  findOneAndUpdate(filter: Document, update: Update, upsert: boolean): Promise<Document | null>;
  deleteOne(filter: Document): Promise<number>;
  deleteMany(filter: Document): Promise<number>;
}

export class NativeWrites implements MongoWrites {
  readonly #collection: Collection<Document>;

  constructor(collection: Collection<Document>) {
    this.#collection = collection;
  }

  async updateOne(filter: Document, update: Update): Promise<number> {
    return (await this.#collection.updateOne(filter, update)).matchedCount;
  }

  async updateMany(filter: Document, update: Update): Promise<number> {
    return (await this.#collection.updateMany(filter, update)).matchedCount;
  }

  /** An upserted document gets a string `_id` (not an ObjectId) when the filter does not pin one. */
  findOneAndUpdate(filter: Document, update: Update, upsert: boolean): Promise<Document | null> {
    const withId: UpdateFilter<Document> =
      upsert && !("_id" in equalityFields(filter))
        ? { ...update, $setOnInsert: { _id: randomUUID() } }
        : update;
    return this.#collection.findOneAndUpdate(filter, withId, { upsert, returnDocument: "after" });
  }

  async deleteOne(filter: Document): Promise<number> {
    return (await this.#collection.deleteOne(filter)).deletedCount;
  }

  async deleteMany(filter: Document): Promise<number> {
    return (await this.#collection.deleteMany(filter)).deletedCount;
  }
}

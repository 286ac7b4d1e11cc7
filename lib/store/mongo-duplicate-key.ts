/**
 * Names the unique index a failed write violated. MongoDB says it in the error; FerretDB's inserts
 * only say "E11000 duplicate key error collection: db.coll", so the index is found by looking for
 * another document that already holds the written document's key in each unique index.
 */
import type { Collection, Document, IndexDescriptionInfo, MongoServerError } from "mongodb";
import { DuplicateKeyError } from "../errors.ts";
import { getPath } from "./apply-update.ts";
import { indexNameInMessage } from "./mongo-errors.ts";

/** `written` is the document as the failed write would have left it; `inserted` when it was new. */
export async function duplicateKeyError(
  collection: Collection<Document>,
  err: MongoServerError,
  written: Document,
  inserted: boolean,
): Promise<DuplicateKeyError> {
  const named = indexNameInMessage(err, collection.collectionName);
  if (named) return new DuplicateKeyError(named, err);
  try {
    for (const index of await collection.indexes()) {
      if (index.name === "_id_" ? !inserted : !index.unique) continue;
      if (await holdsKey(collection, index, written)) return new DuplicateKeyError(index.name, err);
    }
  } catch {
    // The store went away while looking: the duplicate is certain, only its index stays unknown.
  }
  return new DuplicateKeyError(undefined, err);
}

async function holdsKey(
  collection: Collection<Document>,
  index: IndexDescriptionInfo,
  written: Document,
): Promise<boolean> {
  if (index.name === "_id_") return exists(collection, { _id: written._id });
  const fields = Object.keys(index.key);
  const values = fields.map((field) => getPath(written, field));
  if (values.every((value) => value === undefined)) return false;
  const filter: Document = { _id: { $ne: written._id } };
  fields.forEach((field, i) => {
    filter[field] = values[i] ?? null;
  });
  return exists(collection, filter);
}

async function exists(collection: Collection<Document>, filter: Document): Promise<boolean> {
  return (await collection.countDocuments(filter, { limit: 1 })) > 0;
}

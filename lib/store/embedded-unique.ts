/**
 * nedb's unique-violation error carries the duplicated key but not the index it broke, and a plain
 * key such as "bob" fits several single-field indexes. Each index's insert (which nedb's inserts,
 * updates and upserts all go through) is wrapped so the error also names the index's fields.
 */
import type { Datastore } from "./nedb.ts";

interface NedbIndex {
  insert(doc: unknown): void;
}

interface UniqueViolation extends Error {
  errorType: "uniqueViolated";
  indexFields?: string;
}

const wrapped = new WeakSet<NedbIndex>();

/** `indexFields` is nedb's index key: the field names, sorted and joined by commas. */
export function tagUniqueViolations(datastore: Datastore, indexFields: string): void {
  const index = (datastore as unknown as { indexes: Record<string, NedbIndex | undefined> }).indexes[
    indexFields
  ];
  if (!index || wrapped.has(index)) return;
  wrapped.add(index);
  const insert = index.insert.bind(index);
  index.insert = (doc: unknown) => {
    try {
      insert(doc);
    } catch (err) {
      if (isUniqueViolation(err)) err.indexFields ??= indexFields;
      throw err;
    }
  };
}

export function isUniqueViolation(err: unknown): err is UniqueViolation {
  return err instanceof Error && (err as Partial<UniqueViolation>).errorType === "uniqueViolated";
}

export function nedbIndexKey(fields: string[]): string {
  return [...fields].sort().join(",");
}

/**
 * Two adjustments to nedb's indexes. nedb's unique-violation error carries the duplicated key but
 * not the index it broke, and a plain key such as "bob" fits several single-field indexes: each
 * index's insert (which nedb's inserts, updates and upserts all go through) is wrapped so the
 * error also names the index's fields. And a compound index compares its keys field by field in a
 * fixed order, instead of nedb's generic object comparison, which sorts both keys' field names on
 * every comparison (two arrays made and sorted per step down the tree, on every insert).
 */
import type { Datastore } from "./nedb.ts";
import { compareThings } from "./nedb.ts";

interface NedbIndex {
  insert(doc: unknown): void;
  reset(docs?: unknown[]): void;
  _fields: string[];
  treeOptions: { compareKeys: (a: unknown, b: unknown) => number };
}

type CompoundKey = Record<string, unknown>;

/**
 * Makes a compound index order its keys field by field (the order of its field names). Equal keys
 * stay equal and every other pair keeps an order, which is all nedb asks of a compound index: it
 * answers only queries that give every one of its fields a value.
 */
export function orderCompoundKeys(datastore: Datastore, indexFields: string): void {
  const index = indexOf(datastore, indexFields);
  if (!index || index._fields.length < 2 || ordered.has(index)) return;
  ordered.add(index);
  const fields = index._fields;
  index.treeOptions = {
    ...index.treeOptions,
    compareKeys: (a: unknown, b: unknown) => {
      for (const field of fields) {
        const x = (a as CompoundKey)[field];
        const y = (b as CompoundKey)[field];
        // Two strings (ids, nearly always) order as compareThings orders them, without its checks.
        const order =
          typeof x === "string" && typeof y === "string" ? (x < y ? -1 : x > y ? 1 : 0) : compareThings(x, y);
        if (order !== 0) return order;
      }
      return 0;
    },
  };
  index.reset(datastore.getAllData());
}

function indexOf(datastore: Datastore, indexFields: string): NedbIndex | undefined {
  return (datastore as unknown as { indexes: Record<string, NedbIndex | undefined> }).indexes[indexFields];
}

interface UniqueViolation extends Error {
  errorType: "uniqueViolated";
  indexFields?: string;
}

const wrapped = new WeakSet<NedbIndex>();
const ordered = new WeakSet<NedbIndex>();

/** `indexFields` is nedb's index key: the field names, sorted and joined by commas. */
export function tagUniqueViolations(datastore: Datastore, indexFields: string): void {
  const index = indexOf(datastore, indexFields);
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

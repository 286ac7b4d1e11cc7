/**
 * Applies an Update to a document in memory, as MongoDB would. Used where the server cannot do it
 * atomically (upserts on FerretDB) and to tell which unique index a write would violate.
 */
import { equalityFields } from "./filter.ts";
import type { Filter, Update } from "./types.ts";

type Plain = Record<string, unknown>;

export function applyUpdate(doc: Plain, update: Update): Plain {
  const result = structuredClone(doc);
  for (const [path, value] of Object.entries(update.$set ?? {})) {
    if (value !== undefined) setPath(result, path, structuredClone(value));
  }
  for (const path of Object.keys(update.$unset ?? {})) deletePath(result, path);
  for (const [path, step] of Object.entries(update.$inc ?? {})) {
    const current = getPath(result, path);
    setPath(result, path, (typeof current === "number" ? current : 0) + step);
  }
  return result;
}

/** The document an upsert inserts when nothing matches: the filter's pinned fields, then the update. */
export function upsertDocument(filter: Filter, update: Update): Plain {
  const base: Plain = {};
  for (const [path, value] of Object.entries(equalityFields(filter))) setPath(base, path, value);
  return applyUpdate(base, update);
}

export function getPath(doc: Plain, path: string): unknown {
  let node: unknown = doc;
  for (const key of path.split(".")) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Plain)[key];
  }
  return node;
}

function setPath(doc: Plain, path: string, value: unknown): void {
  const keys = path.split(".");
  const last = keys.pop() as string;
  let node = doc;
  for (const key of keys) {
    const next = node[key];
    if (next === null || typeof next !== "object") node[key] = {};
    node = node[key] as Plain;
  }
  node[last] = value;
}

function deletePath(doc: Plain, path: string): void {
  const keys = path.split(".");
  const last = keys.pop() as string;
  const parent = keys.length > 0 ? getPath(doc, keys.join(".")) : doc;
  if (parent !== null && typeof parent === "object") delete (parent as Plain)[last];
}

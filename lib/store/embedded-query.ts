/** Translates the Filter and Update of types.ts into nedb's query language. */
import { checkFilter, escapeRegExp, isCondition } from "./filter.ts";
import type { Filter, Update } from "./types.ts";

type NedbQuery = Record<string, unknown>;

/**
 * nedb has no `$eq` and no `$prefix`: `$eq` becomes a plain value and `$prefix` an anchored RegExp.
 * For an upsert, nedb builds the new document from the query minus every `$` key, so conditions
 * are moved under `$and` there: the document then gets only the pinned fields, as in MongoDB.
 */
export function toNedbQuery(filter: Filter, forUpsert = false): NedbQuery {
  checkFilter(filter);
  const query: NedbQuery = {};
  const and: NedbQuery[] = [];
  for (const [field, value] of Object.entries(filter)) {
    if (!isCondition(value)) {
      query[field] = value;
      continue;
    }
    const { $eq, $prefix, ...operators } = value;
    const hasEq = "$eq" in value;
    if (hasEq) query[field] = $eq;
    const ops: NedbQuery = { ...operators };
    if ($prefix !== undefined) ops.$regex = new RegExp(`^${escapeRegExp($prefix)}`);
    if (Object.keys(ops).length === 0) continue;
    if (hasEq || forUpsert) and.push({ [field]: ops });
    else query[field] = ops;
  }
  if (and.length > 0) query.$and = and;
  return query;
}

/**
 * MongoDB (with ignoreUndefined) leaves a field alone when `$set` gives it `undefined`; nedb would
 * clear it, so such entries are dropped. An update with nothing left stays a no-op modifier, never
 * the empty replacement document that would wipe the matched one.
 */
export function toNedbUpdate(update: Update): NedbQuery {
  const result: NedbQuery = {};
  const set = Object.entries(update.$set ?? {}).filter(([, value]) => value !== undefined);
  if (set.length > 0) result.$set = Object.fromEntries(set);
  if (update.$unset && Object.keys(update.$unset).length > 0) result.$unset = update.$unset;
  if (update.$inc && Object.keys(update.$inc).length > 0) result.$inc = update.$inc;
  return Object.keys(result).length > 0 ? result : { $set: {} };
}

/** Translates the Filter of types.ts into a MongoDB filter. */
import type { Document } from "mongodb";
import { checkFilter, escapeRegExp, isCondition } from "./filter.ts";
import type { Filter } from "./types.ts";

export function toMongoFilter(filter: Filter): Document {
  checkFilter(filter);
  const result: Document = {};
  for (const [field, value] of Object.entries(filter)) {
    if (isCondition(value) && value.$prefix !== undefined) {
      const { $prefix, ...operators } = value;
      result[field] = { ...operators, $regex: `^${escapeRegExp($prefix)}` };
    } else {
      result[field] = value;
    }
  }
  return result;
}

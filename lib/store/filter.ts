/** Reading the Filter shape of types.ts, shared by the backends. */
import type { FieldCondition, Filter } from "./types.ts";

/** A plain object whose keys are all operators, such as `{ $gt: 1 }`; anything else is a value. */
export function isCondition(value: unknown): value is FieldCondition {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((key) => key.startsWith("$"));
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * An `undefined` filter value is a bug in the caller, and each backend would read it differently
 * (MongoDB with ignoreUndefined drops the field and matches everything), so it is refused.
 */
export function checkFilter(filter: Filter): void {
  for (const [field, value] of Object.entries(filter)) {
    if (value === undefined) throw new TypeError(`Filter field "${field}" is undefined`);
  }
}

/** The fields a filter pins to one value: what an upsert copies into the document it inserts. */
export function equalityFields(filter: Filter): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(filter)) {
    if (!isCondition(value)) fields[field] = value;
    else if ("$eq" in value) fields[field] = value.$eq;
  }
  return fields;
}

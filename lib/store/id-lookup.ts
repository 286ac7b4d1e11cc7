/**
 * FerretDB 1.x answers a filter from its primary key only when the filter is `{ _id: <string> }`
 * and nothing else; any other filter, `{ _id, state }` included, is a scan of the whole collection.
 * For filters that pin `_id` (most reads and every locked write), the document is fetched by `_id`
 * and the rest of the filter is checked here, for the operators mongo-query.ts produces.
 */
import type { Document } from "mongodb";

/** The `_id` a filter pins by equality, when it does and the rest can be checked in memory. */
export function pinnedId(filter: Document): string | undefined {
  const id = filter._id;
  return typeof id === "string" && checkable(filter) ? id : undefined;
}

/** Whether matchesFilter knows every operator of the filter. */
export function checkable(filter: Document): boolean {
  for (const [field, condition] of Object.entries(filter)) {
    if (field.startsWith("$")) return false;
    if (isOperators(condition) && !Object.keys(condition).every((op) => OPERATORS.has(op))) return false;
  }
  return true;
}

/** Whether a document (fetched by its `_id`) matches the rest of the filter. */
export function matchesFilter(doc: Document, filter: Document): boolean {
  for (const [field, condition] of Object.entries(filter)) {
    const value = valueAt(doc, field);
    if (isOperators(condition)) {
      for (const [op, operand] of Object.entries(condition)) if (!test(op, value, operand)) return false;
    } else if (!equalsOrContains(value, condition)) return false;
  }
  return true;
}

const OPERATORS = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$exists", "$regex"]);

function isOperators(condition: unknown): condition is Record<string, unknown> {
  if (condition === null || typeof condition !== "object" || condition instanceof Date) return false;
  if (Array.isArray(condition)) return false;
  const keys = Object.keys(condition);
  return keys.length > 0 && keys.every((k) => k.startsWith("$"));
}

function valueAt(doc: Document, path: string): unknown {
  let current: unknown = doc;
  for (const part of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function test(op: string, value: unknown, operand: unknown): boolean {
  switch (op) {
    case "$eq":
      return equalsOrContains(value, operand);
    case "$ne":
      return !equalsOrContains(value, operand);
    case "$in":
      return (operand as unknown[]).some((o) => equalsOrContains(value, o));
    case "$exists":
      return (value !== undefined) === Boolean(operand);
    case "$regex":
      return typeof value === "string" && new RegExp(String(operand)).test(value);
    default:
      return compare(op, value, operand);
  }
}

/** MongoDB's equality: an array field matches when it holds the value. */
function equalsOrContains(value: unknown, operand: unknown): boolean {
  if (Array.isArray(value) && !Array.isArray(operand)) return value.some((v) => same(v, operand));
  if (operand === null) return value === null || value === undefined;
  return same(value, operand);
}

function same(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    return JSON.stringify(a) === JSON.stringify(b);
  }
  return a === b;
}

/** Range operators compare values of one kind (numbers, strings or dates), as MongoDB does. */
function compare(op: string, value: unknown, operand: unknown): boolean {
  const a = value instanceof Date ? value.getTime() : value;
  const b = operand instanceof Date ? operand.getTime() : operand;
  if (value instanceof Date !== operand instanceof Date) return false;
  if (typeof a !== typeof b || (typeof a !== "number" && typeof a !== "string")) return false;
  const x = a as number | string;
  const y = b as number | string;
  switch (op) {
    case "$gt":
      return x > y;
    case "$gte":
      return x >= y;
    case "$lt":
      return x < y;
    case "$lte":
      return x <= y;
    default:
      return false;
  }
}

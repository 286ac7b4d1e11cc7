/**
 * The Filter and sort of types.ts as SQL over a collection's table (sqlite.ts): `_id` is a column,
 * every other field `json_extract(doc, '$.field')`, the expression its indexes are built on. Values
 * are bound, never spliced; field names must be identifiers (fieldExpression).
 *
 * MongoDB's semantics where the platform relies on them: equality with null matches a missing
 * field too; `$ne` matches documents without the field; comparisons never cross types (a number
 * bound matches numbers only, a string bound strings only, a Date its ISO text); equality and `$in`
 * on a field that holds an array match any element. For indexed fields that have held arrays the
 * elements are in the collection's multikey table, so that match is an index lookup too.
 */

import { checkFilter, isCondition } from "./filter.ts";
import { fieldExpression, jsonPath, toSqlScalar } from "./sqlite-codec.ts";
import type { FieldCondition, Filter, FindOptions } from "./types.ts";

export type SqlParam = string | number | null;

export interface SqlWhere {
  sql: string;
  params: SqlParam[];
}

/** What the translation needs to know of a collection. */
export interface QueryTarget {
  /** The multikey table's quoted name. */
  multikeyTable: string;
  /** Fields of the collection's declared indexes: their arrays' elements are in the multikey table. */
  indexedFields: ReadonlySet<string>;
  /** Indexed fields that have held an array in some document. */
  multikeyFields: ReadonlySet<string>;
}

export function toSqlWhere(filter: Filter, target: QueryTarget): SqlWhere {
  checkFilter(filter);
  const clauses: string[] = [];
  const params: SqlParam[] = [];
  for (const [field, value] of Object.entries(filter)) {
    const column = field === "_id" ? "_id" : fieldExpression(field);
    const term = new Term(field, column, target, params);
    if (isCondition(value)) clauses.push(...term.conditions(value));
    else clauses.push(term.equals(value));
  }
  return { sql: clauses.length > 0 ? clauses.join(" AND ") : "1", params };
}

export function toSqlOrder(options: FindOptions): string {
  const keys = Object.entries(options.sort ?? {});
  if (keys.length === 0) return "";
  const terms = keys.map(
    ([field, direction]) =>
      `${field === "_id" ? "_id" : fieldExpression(field)} ${direction === -1 ? "DESC" : "ASC"}`,
  );
  return ` ORDER BY ${terms.join(", ")}`;
}

class Term {
  readonly #field: string;
  readonly #column: string;
  readonly #target: QueryTarget;
  readonly #params: SqlParam[];

  constructor(field: string, column: string, target: QueryTarget, params: SqlParam[]) {
    this.#field = field;
    this.#column = column;
    this.#target = target;
    this.#params = params;
  }

  conditions(condition: FieldCondition): string[] {
    const out: string[] = [];
    for (const [operator, value] of Object.entries(condition)) {
      if (value === undefined)
        throw new TypeError(`Filter field "${this.#field}" has an undefined ${operator}`);
      switch (operator) {
        case "$eq":
          out.push(this.equals(value));
          break;
        case "$ne":
          out.push(`NOT coalesce(${this.equals(value)}, 0)`);
          break;
        case "$gt":
        case "$gte":
        case "$lt":
        case "$lte":
          out.push(this.#compare(operator, value));
          break;
        case "$in":
          out.push(this.#in(value));
          break;
        case "$exists":
          out.push(this.#exists(value === true));
          break;
        case "$prefix":
          out.push(this.#prefix(value));
          break;
        default:
          throw new TypeError(`Unsupported filter operator ${operator}`);
      }
    }
    return out;
  }

  equals(value: unknown): string {
    if (value === null) return `${this.#column} IS NULL`;
    if (typeof value === "boolean") {
      return `json_type(doc, '${jsonPath(this.#field)}') = '${value ? "true" : "false"}'`;
    }
    if (typeof value === "object" && !(value instanceof Date)) {
      this.#params.push(JSON.stringify(value));
      return `json(${this.#column}) = ?`;
    }
    const scalar = toSqlScalar(value);
    this.#params.push(scalar);
    return this.#orElement(`${this.#column} = ?`, "= ?", scalar);
  }

  #in(values: unknown): string {
    if (!Array.isArray(values)) throw new TypeError(`$in of "${this.#field}" takes an array`);
    if (values.length === 0) return "0";
    const list = JSON.stringify(values.map(toSqlScalar));
    this.#params.push(list);
    return this.#orElement(
      `${this.#column} IN (SELECT value FROM json_each(?))`,
      "IN (SELECT value FROM json_each(?))",
      list,
    );
  }

  /**
   * `match` on the field itself, or on one element of an array it holds: through the multikey
   * table for an indexed field that has held arrays; for a field never indexed, by reading the
   * array (an `_id` never holds one, nor does an indexed field that never held one).
   */
  #orElement(match: string, elementMatch: string, param: SqlParam): string {
    if (this.#field === "_id") return match;
    if (this.#target.multikeyFields.has(this.#field)) {
      this.#params.push(this.#field, param);
      return `(${match} OR _id IN (SELECT _id FROM ${this.#target.multikeyTable} WHERE field = ? AND value ${elementMatch}))`;
    }
    if (this.#target.indexedFields.has(this.#field)) return match;
    this.#params.push(param);
    const path = jsonPath(this.#field);
    return `(${match} OR (json_type(doc, '${path}') = 'array' AND EXISTS (SELECT 1 FROM json_each(doc, '${path}') WHERE value ${elementMatch})))`;
  }

  /** A bound of one type never matches values of another (SQLite orders numbers before all text). */
  #compare(operator: "$gt" | "$gte" | "$lt" | "$lte", value: unknown): string {
    const scalar = toSqlScalar(value);
    if (scalar === null) throw new TypeError(`${operator} of "${this.#field}" takes a value, not null`);
    const sign = { $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" }[operator];
    this.#params.push(scalar);
    const clause = `${this.#column} ${sign} ?`;
    const upward = operator === "$gt" || operator === "$gte";
    if (typeof scalar === "number" && upward) return `${clause} AND ${this.#column} < ''`;
    if (typeof scalar === "string" && !upward) return `${clause} AND ${this.#column} >= ''`;
    return clause;
  }

  #exists(present: boolean): string {
    if (this.#field === "_id") return present ? "1" : "0";
    return `json_type(doc, '${jsonPath(this.#field)}') IS ${present ? "NOT NULL" : "NULL"}`;
  }

  /** Strings that start with the prefix are exactly those in [prefix, next string after all of them). */
  #prefix(prefix: unknown): string {
    if (typeof prefix !== "string") throw new TypeError(`$prefix of "${this.#field}" takes a string`);
    this.#params.push(prefix);
    const upper = prefixUpperBound(prefix);
    if (upper === undefined) return `${this.#column} >= ?`;
    this.#params.push(upper);
    return `${this.#column} >= ? AND ${this.#column} < ?`;
  }
}

/**
 * The least string greater than every string that starts with `prefix`, in SQLite's binary order
 * of UTF-8 (code point order): the prefix with its last code point raised by one.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = [...prefix];
  while (points.length > 0) {
    const last = (points.pop() as string).codePointAt(0) as number;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return points.join("") + String.fromCodePoint(next);
    }
  }
  return undefined;
}

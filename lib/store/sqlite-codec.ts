/**
 * How the SQLite store keeps a document: its JSON text (Dates as ISO strings, which sort and
 * compare in time order) and, beside it, the paths that held Dates, so a read gives Dates back.
 * Also the SQL expression that reads a field of that JSON, shared by queries and index definitions
 * (SQLite uses an expression index only where a query repeats its expression exactly).
 */

export interface EncodedDocument {
  json: string;
  /** JSON array of the dotted paths that hold Dates, or null when there are none. */
  dates: string | null;
}

export function encodeDocument(doc: object): EncodedDocument {
  const paths: string[] = [];
  collectDates(doc, "", paths);
  return { json: JSON.stringify(doc), dates: paths.length > 0 ? JSON.stringify(paths) : null };
}

export function decodeDocument<T>(json: string, dates: string | null): T {
  const doc = JSON.parse(json) as Record<string, unknown>;
  if (dates !== null) for (const path of JSON.parse(dates) as string[]) reviveDate(doc, path);
  return doc as T;
}

/** A value as SQLite compares it: a Date as its ISO string, the same text the document holds. */
export function toSqlScalar(value: unknown): string | number | null {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "string" || typeof value === "number") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === null) return null;
  throw new TypeError(`Cannot compare a field with ${typeof value} ${JSON.stringify(value)}`);
}

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `json_extract(doc, '$.a.b')` for the field `a.b`; a field name that is not an identifier is refused. */
export function fieldExpression(field: string): string {
  return `json_extract(doc, '${jsonPath(field)}')`;
}

export function jsonPath(field: string): string {
  const segments = field.split(".");
  for (const segment of segments) {
    if (!SEGMENT.test(segment)) throw new TypeError(`Invalid field name "${field}"`);
  }
  return `$.${segments.join(".")}`;
}

function collectDates(value: object, prefix: string, out: string[]): void {
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key];
    if (field instanceof Date) {
      if (!Number.isNaN(field.getTime())) out.push(prefix + key);
    } else if (field !== null && typeof field === "object") {
      collectDates(field, `${prefix}${key}.`, out);
    }
  }
}

function reviveDate(doc: Record<string, unknown>, path: string): void {
  const keys = path.split(".");
  const last = keys.pop() as string;
  let node: unknown = doc;
  for (const key of keys) {
    if (node === null || typeof node !== "object") return;
    node = (node as Record<string, unknown>)[key];
  }
  if (node === null || typeof node !== "object") return;
  const holder = node as Record<string, unknown>;
  if (typeof holder[last] === "string") holder[last] = new Date(holder[last]);
}

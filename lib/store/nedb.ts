/**
 * The nedb Datastore class. The package is CommonJS and `module.exports` is the class itself, but
 * its types declare an ES default export; under NodeNext resolution this import sees the class at
 * runtime and a `{ default }` wrapper at type level, so the two are reconciled here once.
 */
import { createRequire } from "node:module";
import nedb from "@seald-io/nedb";

export const Datastore = nedb as unknown as typeof nedb.default;
export type Datastore = InstanceType<typeof Datastore>;

/** nedb's ordering of two values, the one its indexes use (its model module ships no types). */
export const compareThings = (
  createRequire(import.meta.url)("@seald-io/nedb/lib/model.js") as {
    compareThings(a: unknown, b: unknown): number;
  }
).compareThings;

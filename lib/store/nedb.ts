/**
 * The nedb Datastore class. The package is CommonJS and `module.exports` is the class itself, but
 * its types declare an ES default export; under NodeNext resolution this import sees the class at
 * runtime and a `{ default }` wrapper at type level, so the two are reconciled here once.
 */
import nedb from "@seald-io/nedb";

export const Datastore = nedb as unknown as typeof nedb.default;
export type Datastore = InstanceType<typeof Datastore>;

/**
 * The embedded store: one nedb file per collection, `<dataDir>/<name>.db`, for a single node
 * without MongoDB. Only one process may open a data dir. nedb keeps every collection in memory and
 * appends each write to its file; the file is compacted periodically and on close().
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import { StoreUnavailableError } from "../errors.ts";
import { EmbeddedCollection } from "./embedded-collection.ts";
import type { Collection, Doc, Store } from "./types.ts";

export const COLLECTION_NAME = /^[A-Za-z0-9_-]+$/;

export interface EmbeddedStoreOptions {
  dataDir: string;
  compactionIntervalMs?: number;
}

export class EmbeddedStore implements Store {
  readonly kind = "embedded";
  readonly #dataDir: string;
  readonly #compactionIntervalMs: number;
  readonly #collections = new Map<string, EmbeddedCollection<Doc>>();

  constructor(options: EmbeddedStoreOptions) {
    this.#dataDir = options.dataDir;
    this.#compactionIntervalMs = options.compactionIntervalMs ?? 10 * 60_000;
  }

  collection<T extends Doc>(name: string): Collection<T> {
    if (!COLLECTION_NAME.test(name)) throw new TypeError(`Invalid collection name "${name}"`);
    let collection = this.#collections.get(name);
    if (!collection) {
      collection = new EmbeddedCollection(
        name,
        path.join(this.#dataDir, `${name}.db`),
        this.#compactionIntervalMs,
      );
      this.#collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  async ping(): Promise<void> {
    try {
      await access(this.#dataDir, constants.W_OK);
      await Promise.all([...this.#collections.values()].map((collection) => collection.ready()));
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#collections.values()].map((collection) => collection.close()));
  }
}

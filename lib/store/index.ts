/** Opens the store a node is configured for: MongoDB when MONGO_URL is set, else the embedded one. */
import { mkdir } from "node:fs/promises";
import { metricsInScope } from "../metrics.ts";
import { EmbeddedStore } from "./embedded.ts";
import { instrumentStore } from "./instrumented.ts";
import { MongoStore } from "./mongo.ts";
import type { Store } from "./types.ts";

export interface StoreOptions {
  mongoUrl?: string | undefined;
  dataDir: string;
}

/** Opened inside a service's started(), the store times its operations into that node's metrics. */
export async function openStore(options: StoreOptions): Promise<Store> {
  return instrumentStore(await openBackend(options), metricsInScope());
}

async function openBackend(options: StoreOptions): Promise<Store> {
  if (options.mongoUrl) return new MongoStore(options.mongoUrl);
  await mkdir(options.dataDir, { recursive: true });
  return new EmbeddedStore({ dataDir: options.dataDir });
}

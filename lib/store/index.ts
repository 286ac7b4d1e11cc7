/**
 * Opens the store a node is configured for: MongoDB when MONGO_URL is set, else the embedded one,
 * which runs on a thread of its own (embedded-thread.ts).
 */
import { mkdir } from "node:fs/promises";
import { metricsInScope } from "../metrics.ts";
import { ThreadedEmbeddedStore } from "./embedded-thread.ts";
import { instrumentStore } from "./instrumented.ts";
import { MAX_SERVER_WAIT_MS, MongoStore } from "./mongo.ts";
import type { Store } from "./types.ts";

export interface StoreOptions {
  mongoUrl?: string | undefined;
  dataDir: string;
  /**
   * The node's bus call timeout (REQUEST_TIMEOUT_MS). An operation waits at most half of it for an
   * unreachable MongoDB server, so a call whose store is down is answered 503 by its handler within
   * the caller's time, not timed out by the caller while the handler still waits.
   */
  requestTimeoutMs?: number | undefined;
}

/** Opened inside a service's started(), the store times its operations into that node's metrics. */
export async function openStore(options: StoreOptions): Promise<Store> {
  return instrumentStore(await openBackend(options), metricsInScope());
}

async function openBackend(options: StoreOptions): Promise<Store> {
  if (options.mongoUrl)
    return new MongoStore(options.mongoUrl, {
      serverWaitMs: Math.min(MAX_SERVER_WAIT_MS, Math.floor((options.requestTimeoutMs ?? Infinity) / 2)),
    });
  await mkdir(options.dataDir, { recursive: true });
  return new ThreadedEmbeddedStore({ dataDir: options.dataDir });
}

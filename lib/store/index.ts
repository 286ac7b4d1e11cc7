/**
 * Opens the store a node is configured for: MongoDB when MONGO_URL is set, else the embedded one
 * (SQLite, sqlite.ts), which runs on a thread of its own (embedded-thread.ts). Before the embedded
 * store opens, its DATA_DIR is locked to this process (data-dir-lock.ts) and data left by the
 * earlier nedb store is imported (nedb-import.ts).
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { metricsInScope } from "../metrics.ts";
import { secureDir } from "../secret-files.ts";
import { lockDataDir } from "./data-dir-lock.ts";
import { ThreadedEmbeddedStore } from "./embedded-thread.ts";
import { instrumentStore } from "./instrumented.ts";
import { MAX_SERVER_WAIT_MS, MongoStore } from "./mongo.ts";
import type { Synchronous } from "./sqlite.ts";
import type { Store } from "./types.ts";

export interface StoreLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface StoreOptions {
  mongoUrl?: string | undefined;
  dataDir: string;
  /** The embedded store's `synchronous` setting (EMBEDDED_SYNCHRONOUS); FULL by default. */
  embeddedSynchronous?: Synchronous | undefined;
  /**
   * The node's bus call timeout (REQUEST_TIMEOUT_MS). An operation waits at most half of it for an
   * unreachable MongoDB server, so a call whose store is down is answered 503 by its handler within
   * the caller's time, not timed out by the caller while the handler still waits.
   */
  requestTimeoutMs?: number | undefined;
}

/** Opened inside a service's started(), the store times its operations into that node's metrics. */
export async function openStore(options: StoreOptions, log: StoreLog = silent): Promise<Store> {
  return instrumentStore(await openBackend(options, log), metricsInScope());
}

async function openBackend(options: StoreOptions, log: StoreLog): Promise<Store> {
  if (options.mongoUrl)
    return new MongoStore(options.mongoUrl, {
      serverWaitMs: Math.min(MAX_SERVER_WAIT_MS, Math.floor((options.requestTimeoutMs ?? Infinity) / 2)),
    });
  const dataDir = path.resolve(options.dataDir);
  // Its files hold the private signing keys and the password hashes: the owner's alone (0700/0600).
  secureDir(dataDir, (message) => log.warn(message));
  const lock = lockDataDir(dataDir);
  try {
    await importOnce(dataDir, log);
    return await ThreadedEmbeddedStore.open(
      { dataDir, synchronous: options.embeddedSynchronous },
      lock.release,
    );
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** The services of one process open the same dir at once: the first one imports, the others wait. */
const imports = new Map<string, Promise<unknown>>();

function importOnce(dataDir: string, log: StoreLog): Promise<unknown> {
  let pending = imports.get(dataDir);
  if (!pending) {
    pending = importIfNedbFiles(dataDir, log);
    imports.set(dataDir, pending);
    pending.then(
      () => undefined,
      () => imports.delete(dataDir),
    );
  }
  return pending;
}

/** The importer is loaded only for a data dir that holds nedb files (`<collection>.db`). */
async function importIfNedbFiles(dataDir: string, log: StoreLog): Promise<unknown> {
  const names = await readdir(dataDir);
  if (!names.some((name) => NEDB_FILE.test(name))) return "none";
  const { importNedbDataDir } = await import("./nedb-import.ts");
  return importNedbDataDir(dataDir, log);
}

const NEDB_FILE = /^[A-Za-z0-9_-]+\.db~?$/;

const silent: StoreLog = { info: () => undefined, warn: () => undefined };

/**
 * The SQLite store on the calling thread, for the chat service under the store growth benchmark:
 * `useMainThreadStore()` makes every later import of lib/store/index.ts load this module instead,
 * whose `openStore` opens `new SqliteStore({ file: <dataDir>/social.sqlite })` in the process's
 * own thread (instrumented as index.ts does), where index.ts would open it on the store's worker
 * thread. The chat service runs unchanged; only where its store runs differs.
 */
import { mkdir } from "node:fs/promises";
import { registerHooks } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { metricsInScope } from "../../lib/metrics.ts";
import type { StoreOptions } from "../../lib/store/index.ts";
import { instrumentStore } from "../../lib/store/instrumented.ts";
import { DATABASE_FILE, SqliteStore } from "../../lib/store/sqlite.ts";
import type { Store } from "../../lib/store/types.ts";
import { THIS_TREE } from "./stores.ts";

export async function openStore(options: StoreOptions): Promise<Store> {
  const dataDir = path.resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const store = new SqliteStore({
    file: path.join(dataDir, DATABASE_FILE),
    synchronous: options.embeddedSynchronous,
  });
  return instrumentStore(store, metricsInScope());
}

/** From now on, an import of this checkout's lib/store/index.ts loads this module. */
export function useMainThreadStore(): void {
  const index = pathToFileURL(path.join(THIS_TREE, "lib/store/index.ts")).href;
  const replacement = import.meta.url;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      return resolved.url === index ? { ...resolved, url: replacement } : resolved;
    },
  });
}

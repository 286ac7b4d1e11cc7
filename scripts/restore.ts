/**
 * `npm run restore -- FILE`: puts a backup (scripts/backup.ts) in place as the embedded store of
 * DATA_DIR, with the platform stopped (the data dir's lock says whether it runs). The backup is
 * checked first; the store it replaces, if any, moves to `DATA_DIR/replaced-<time>/`, never deleted.
 */

import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, rename } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { lockDataDir } from "../lib/store/data-dir-lock.ts";
import { DATABASE_FILE } from "../lib/store/sqlite.ts";
import { checkDatabase, dataDirOf } from "./store-file.ts";

const USAGE = "usage: npm run restore -- FILE [--data-dir DIR]   (DATA_DIR, else ./data)";

/** Restores `backupFile` into `dataDir`; resolves the folder the replaced store moved to, if any. */
export async function restoreStore(backupFile: string, dataDir: string): Promise<string | undefined> {
  const counts = checkDatabase(backupFile);
  await mkdir(dataDir, { recursive: true });
  const lock = lockDataDir(dataDir);
  try {
    const target = path.join(dataDir, DATABASE_FILE);
    let replaced: string | undefined;
    const present = ["", "-wal", "-shm"].filter((suffix) => existsSync(target + suffix));
    if (present.length > 0) {
      replaced = path.join(dataDir, `replaced-${new Date().toISOString().replace(/[:.]/g, "-")}`);
      await mkdir(replaced, { mode: 0o700 });
      for (const suffix of present)
        await rename(target + suffix, path.join(replaced, DATABASE_FILE + suffix));
    }
    const partial = `${target}.partial`;
    await copyFile(backupFile, partial);
    await chmod(partial, 0o600);
    await rename(partial, target);
    console.log(`Restored ${backupFile} into ${target}: ${JSON.stringify(counts)}`);
    return replaced;
  } finally {
    lock.release();
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    options: { "data-dir": { type: "string" } },
    allowPositionals: true,
  });
  const [backupFile] = positionals;
  if (!backupFile || positionals.length > 1) {
    console.error(USAGE);
    process.exit(2);
  }
  try {
    const replaced = await restoreStore(path.resolve(backupFile), dataDirOf(values["data-dir"]));
    if (replaced) console.log(`The store it replaced is in ${replaced}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}

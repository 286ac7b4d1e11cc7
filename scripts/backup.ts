/**
 * `npm run backup -- FILE`: a consistent copy of the embedded store (DATA_DIR/social.sqlite) into
 * FILE, made while the platform runs. SQLite's online backup copies every page in one step inside
 * one read transaction, so the copy is the store as of one moment, and writers are not held up (WAL).
 * The copy is written to FILE.partial, checked, then renamed: FILE is never a half copy.
 * `npm run restore -- FILE` puts it back (scripts/restore.ts).
 */
import { existsSync } from "node:fs";
import { chmod, rename, rm } from "node:fs/promises";
import path from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { DATABASE_FILE } from "../lib/store/sqlite.ts";
import { checkDatabase, dataDirOf } from "./store-file.ts";

const USAGE = "usage: npm run backup -- FILE [--data-dir DIR]   (DATA_DIR, else ./data)";

/** Copies the store of `dataDir` into `target`; resolves the documents per collection in the copy. */
export async function backupStore(dataDir: string, target: string): Promise<Record<string, number>> {
  const source = path.join(dataDir, DATABASE_FILE);
  if (!existsSync(source)) throw new Error(`There is no embedded store at ${source}`);
  const partial = `${target}.partial`;
  await rm(partial, { force: true });
  const db = new DatabaseSync(source, { timeout: 5_000 });
  try {
    await backup(db, partial, { rate: 2 ** 31 - 1 });
  } finally {
    db.close();
  }
  const counts = checkDatabase(partial);
  // It holds what the store holds: the signing keys and the password hashes.
  await chmod(partial, 0o600);
  await rename(partial, target);
  return counts;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    options: { "data-dir": { type: "string" } },
    allowPositionals: true,
  });
  const [target] = positionals;
  if (!target || positionals.length > 1) {
    console.error(USAGE);
    process.exit(2);
  }
  const dataDir = dataDirOf(values["data-dir"]);
  try {
    const started = performance.now();
    const counts = await backupStore(dataDir, path.resolve(target));
    console.log(
      `Backed up ${path.join(dataDir, DATABASE_FILE)} to ${path.resolve(target)} in ${Math.round(performance.now() - started)} ms`,
    );
    for (const [collection, n] of Object.entries(counts)) console.log(`  ${collection}: ${n}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}

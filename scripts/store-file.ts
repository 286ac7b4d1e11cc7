/** What the backup and restore commands share: the data dir they act on and a check of a database file. */
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

/** `--data-dir`, else DATA_DIR, else ./data: the folder the platform itself would use. */
export function dataDirOf(option: string | undefined): string {
  return path.resolve(option ?? process.env.DATA_DIR ?? "./data");
}

/**
 * Opens the file read-only, runs SQLite's integrity check, and resolves the documents of each
 * collection; throws naming the file when it is not a sound database.
 */
export function checkDatabase(file: string): Record<string, number> {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { readOnly: true });
  } catch (err) {
    throw new Error(`${file} is not an SQLite database: ${(err as Error).message}`);
  }
  try {
    const problems = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    if (problems.length !== 1 || problems[0]?.integrity_check !== "ok") {
      const found = problems
        .map((row) => row.integrity_check)
        .slice(0, 5)
        .join("; ");
      throw new Error(`${file} failed SQLite's integrity check: ${found}`);
    }
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND instr(name, '$') = 0 AND name NOT LIKE 'sqlite%' ORDER BY name",
      )
      .all() as { name: string }[];
    const counts: Record<string, number> = {};
    for (const { name } of tables) {
      counts[name] = (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n;
    }
    return counts;
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(file)) throw err;
    throw new Error(`${file} is not a sound SQLite database: ${(err as Error).message}`);
  } finally {
    db.close();
  }
}

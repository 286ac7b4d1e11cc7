/**
 * Imports a DATA_DIR written by the nedb store (the embedded store of releases up to d2a92c0: one
 * append-only file `<collection>.db` per collection) into the SQLite store, on the first start of
 * a release on SQLite. lib/store/index.ts calls it before it opens the store, with the data dir
 * locked to this process.
 *
 * A nedb file is a log: each line is a whole document (a later line with the same `_id` replaces
 * it), a tombstone `{"$$deleted": true, "_id": ...}`, or an index line (`$$indexCreated`,
 * `$$indexRemoved`: the services declare their indexes at start, so those are skipped); Dates are
 * `{"$$date": <ms>}` at any depth. Each file is streamed line by line and applied in order, so
 * memory stays flat whatever the file's size. Only `\n` ends a line: JSON escapes it in strings but
 * leaves U+2028 and U+2029 as they are, and both nedb's reader and `node:readline` end lines there
 * too, which would cut a message holding one in two and lose it. A line that does not parse (nedb
 * leaves a torn last line when its process dies mid-write) is skipped with a warning; when more
 * than 10% of a file's lines are such, the import fails as nedb's own load does (its
 * corruptAlertThreshold).
 *
 * Crash safety: the import writes `social.sqlite.import`, and only once every file is in it and the
 * store is closed is it renamed `social.sqlite`: the rename is the commit point. An import that
 * dies before it leaves the nedb files where they were, and the next start deletes the unfinished
 * file and starts over. After the rename the nedb files move to `nedb-backup-YYYY-MM-DD/` (UTC),
 * and a start that finds `social.sqlite` beside nedb files (a move cut short) moves the rest.
 */
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { DATABASE_FILE, SqliteStore } from "./sqlite.ts";
import type { Doc } from "./types.ts";

export interface ImportLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export const IMPORT_FILE = `${DATABASE_FILE}.import`;
const BACKUP_PREFIX = "nedb-backup-";
const NEDB_FILE = /^([A-Za-z0-9_-]+)\.db(~?)$/;
const BACKUP_FOLDER = /^nedb-backup-(\d{4}-\d{2}-\d{2})(?:-(\d+))?$/;
/** Documents and tombstones written per transaction. */
const BATCH = 1_000;
const PROGRESS_EVERY = 50_000;
/** nedb's default corruptAlertThreshold: the share of lines that may fail to parse. */
const CORRUPT_ALERT_THRESHOLD = 0.1;
/** Malformed lines warned about one by one per file; the rest are counted in the file's summary. */
const WARNINGS_PER_FILE = 20;

/** A nedb file holds too many lines that are not nedb documents; nothing was imported. */
export class NedbImportError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(message);
    this.name = "NedbImportError";
    this.file = file;
  }
}

interface NedbFiles {
  /** The file to read for each collection: `<name>.db`, else nedb's crash-safe `<name>.db~`. */
  sources: { collection: string; file: string }[];
  /** Every nedb file name in the dir, `~` files included. */
  names: string[];
}

export async function importNedbDataDir(dataDir: string, log: ImportLog): Promise<"none" | "imported"> {
  const found = await nedbFiles(dataDir);
  if (found.names.length === 0) return "none";
  if (await exists(path.join(dataDir, DATABASE_FILE))) {
    const folder = await moveToBackup(dataDir, found.names, true);
    log.warn(
      `nedb import: ${DATABASE_FILE} exists already (imported before), so ${found.names.join(", ")} ` +
        `were not imported; moved to ${folder}`,
    );
    return "none";
  }
  const unfinished = path.join(dataDir, IMPORT_FILE);
  if (await removeDatabase(unfinished))
    log.warn(`nedb import: an unfinished import was removed; starting over`);
  log.info(`nedb import: ${found.sources.length} collection files into ${DATABASE_FILE}`);
  const started = Date.now();
  // NORMAL: a crash mid-import loses only the unfinished file, which is redone anyway; closing
  // checkpoints the WAL into the file and syncs it before the rename.
  const store = new SqliteStore({ file: unfinished, synchronous: "NORMAL" });
  try {
    for (const source of found.sources)
      await importCollectionFile(store, source.collection, source.file, log);
    await store.close();
    if (await exists(`${unfinished}-wal`)) throw new Error(`${unfinished}-wal was left after closing`);
  } catch (err) {
    await store.close();
    await removeDatabase(unfinished);
    throw err;
  }
  await rename(unfinished, path.join(dataDir, DATABASE_FILE));
  await syncDir(dataDir);
  const folder = await moveToBackup(dataDir, found.names, false);
  log.info(
    `nedb import: done in ${((Date.now() - started) / 1000).toFixed(1)} s; the nedb files are in ${folder}`,
  );
  return "imported";
}

async function nedbFiles(dataDir: string): Promise<NedbFiles> {
  const names = (await readdir(dataDir)).filter((name) => NEDB_FILE.test(name)).sort();
  const present = new Set(names);
  const sources: NedbFiles["sources"] = [];
  for (const name of names) {
    const [, collection, tilde] = NEDB_FILE.exec(name) as RegExpExecArray;
    if (tilde && present.has(`${collection}.db`)) continue;
    sources.push({ collection: collection as string, file: path.join(dataDir, name) });
  }
  return { sources, names };
}

/** Streams one nedb file into its collection, applying its lines in order. */
async function importCollectionFile(
  store: SqliteStore,
  collection: string,
  file: string,
  log: ImportLog,
): Promise<void> {
  const name = path.basename(file);
  const size = (await stat(file)).size;
  log.info(`nedb import: ${name} (${size} bytes) into ${collection}`);
  // Per batch, the last state of each _id: a document, or null for a tombstone. Lines on different
  // _ids commute, so a batch keeps the outcome of applying its lines one by one.
  const pending = new Map<string, Doc | null>();
  const flush = () => {
    const docs: Doc[] = [];
    const deleted: string[] = [];
    for (const [id, doc] of pending) {
      if (doc) docs.push(doc);
      else deleted.push(id);
    }
    if (docs.length > 0) store.putRaw(collection, docs);
    if (deleted.length > 0) store.deleteRaw(collection, deleted);
    pending.clear();
  };
  let lineNumber = 0;
  let read = 0;
  let malformed = 0;
  for await (const line of linesOf(file)) {
    lineNumber += 1;
    if (line === "") continue;
    read += 1;
    const entry = parseLine(line);
    if (!entry) {
      malformed += 1;
      if (malformed <= WARNINGS_PER_FILE) {
        log.warn(`nedb import: ${file} line ${lineNumber} is not a nedb document; skipped`);
      }
    } else if (entry.kind === "put") {
      pending.set(entry.doc._id, entry.doc);
    } else if (entry.kind === "delete") {
      pending.set(entry.id, null);
    }
    if (pending.size >= BATCH) flush();
    if (read % PROGRESS_EVERY === 0) log.info(`nedb import: ${name}: ${read} lines read`);
  }
  flush();
  if (read > 0 && malformed / read > CORRUPT_ALERT_THRESHOLD) {
    throw new NedbImportError(
      file,
      `nedb import: ${malformed} of the ${read} lines of ${file} are not nedb documents, more than ` +
        `the ${CORRUPT_ALERT_THRESHOLD * 100}% nedb tolerates. Nothing was imported and the nedb files ` +
        "were left as they are: repair or remove that file, then start again.",
    );
  }
  const kept = await store.collection(collection).count({});
  log.info(
    `nedb import: ${name} done: ${read} lines read, ${kept} documents kept` +
      (malformed > 0 ? `, ${malformed} malformed lines skipped` : ""),
  );
}

/** The file's lines, split on `\n` alone, read a chunk at a time. */
async function* linesOf(file: string): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of createReadStream(file, { encoding: "utf8" })) {
    const lines = (chunk as string).split("\n");
    if (lines.length === 1) {
      rest += chunk;
      continue;
    }
    lines[0] = rest + lines[0];
    rest = lines.pop() as string;
    yield* lines;
  }
  if (rest !== "") yield rest;
}

type Entry = { kind: "put"; doc: Doc } | { kind: "delete"; id: string } | { kind: "index" };

/** One line as nedb reads it; undefined when it is not a nedb document, tombstone or index line. */
function parseLine(line: string): Entry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line, reviveDate);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  if (record._id === undefined) {
    return "$$indexCreated" in record || "$$indexRemoved" in record ? { kind: "index" } : undefined;
  }
  if (typeof record._id !== "string" || record._id === "") return undefined;
  if (record.$$deleted === true) return { kind: "delete", id: record._id };
  return { kind: "put", doc: record as unknown as Doc };
}

/** nedb's own reviver: `{"$$date": ms}` becomes a Date wherever it is. */
function reviveDate(key: string, value: unknown): unknown {
  if (key === "$$date") return new Date(value as number);
  if (value !== null && typeof value === "object" && (value as { $$date?: unknown }).$$date instanceof Date) {
    return (value as { $$date: Date }).$$date;
  }
  return value;
}

/**
 * Moves the nedb files into a new `nedb-backup-<date>[-N]` folder; with `resume`, into the latest
 * such folder if it holds none of them yet (the rest of a move that was cut short).
 */
async function moveToBackup(dataDir: string, names: string[], resume: boolean): Promise<string> {
  const folders = (await readdir(dataDir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && BACKUP_FOLDER.test(entry.name))
    .map((entry) => entry.name)
    .sort(byBackupOrder);
  let folder: string | undefined;
  const latest = folders.at(-1);
  if (resume && latest) {
    const held = new Set(await readdir(path.join(dataDir, latest)));
    if (!names.some((name) => held.has(name))) folder = latest;
  }
  if (!folder) folder = await makeBackupFolder(dataDir);
  for (const name of names) await rename(path.join(dataDir, name), path.join(dataDir, folder, name));
  await syncDir(dataDir);
  return path.join(dataDir, folder);
}

async function makeBackupFolder(dataDir: string): Promise<string> {
  const day = new Date().toISOString().slice(0, 10);
  for (let n = 1; ; n++) {
    const name = `${BACKUP_PREFIX}${day}${n === 1 ? "" : `-${n}`}`;
    try {
      await mkdir(path.join(dataDir, name));
      return name;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

function byBackupOrder(a: string, b: string): number {
  const [, dayA, nA] = BACKUP_FOLDER.exec(a) as RegExpExecArray;
  const [, dayB, nB] = BACKUP_FOLDER.exec(b) as RegExpExecArray;
  return (dayA as string).localeCompare(dayB as string) || Number(nA ?? 1) - Number(nB ?? 1);
}

/** Removes a database file and its companions; resolves whether there was one. */
async function removeDatabase(file: string): Promise<boolean> {
  const had = await exists(file);
  for (const suffix of ["", "-wal", "-shm", "-journal"]) await rm(`${file}${suffix}`, { force: true });
  return had;
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}

/** Makes the renames in a folder durable (a power cut after it keeps them). */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

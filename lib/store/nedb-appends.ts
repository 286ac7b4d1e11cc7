/**
 * nedb appends every write to its collection's file with `fs.promises.appendFile`: an open, a write
 * and a close, each a trip through libuv's thread pool and a promise, for every batch. On the
 * store's own thread (embedded-worker.ts) nothing else waits for the event loop, so there the
 * appends are made synchronously to a descriptor kept open per file: a fifth of that thread's busy
 * time was opening and closing files.
 *
 * The descriptor is given up before nedb rewrites the file (compaction writes a new file and
 * renames it over the old one, which the descriptor would still point to) or removes it. A file
 * that is gone under it (the data dir was removed: the descriptor's file has no link left) fails
 * the write with ENOENT, as appendFile would, rather than writing where no one will read.
 */
import { closeSync, fstatSync, openSync, writeSync } from "node:fs";
import { createRequire } from "node:module";

type AsyncFn = (filename: string, ...rest: unknown[]) => Promise<unknown>;

interface NedbStorage {
  appendFileAsync(filename: string, data: string, options?: { mode?: number }): Promise<void>;
  crashSafeWriteFileLinesAsync: AsyncFn;
  ensureDatafileIntegrityAsync: AsyncFn;
  unlinkAsync: AsyncFn;
}

const storage = createRequire(import.meta.url)("@seald-io/nedb/lib/storage.js") as NedbStorage;
const descriptors = new Map<string, number>();
let installed = false;

/** Makes this thread's nedb appends synchronous, to kept-open descriptors. */
export function useSynchronousAppends(): void {
  if (installed) return;
  installed = true;
  storage.appendFileAsync = async (filename, data, options) => appendSync(filename, data, options?.mode);
  for (const name of [
    "crashSafeWriteFileLinesAsync",
    "ensureDatafileIntegrityAsync",
    "unlinkAsync",
  ] as const) {
    const original = storage[name];
    storage[name] = (filename, ...rest) => {
      release(filename);
      return original(filename, ...rest);
    };
  }
}

function appendSync(filename: string, data: string, mode: number | undefined): void {
  let fd = descriptors.get(filename);
  if (fd !== undefined && fstatSync(fd).nlink === 0) {
    release(filename);
    throw Object.assign(new Error(`ENOENT: no such file, write '${filename}'`), {
      code: "ENOENT",
      syscall: "write",
      path: filename,
    });
  }
  if (fd === undefined) {
    fd = openSync(filename, "a", mode);
    descriptors.set(filename, fd);
  }
  const bytes = Buffer.from(data, "utf8");
  try {
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
  } catch (err) {
    release(filename);
    throw err;
  }
}

function release(filename: string): void {
  const fd = descriptors.get(filename);
  if (fd === undefined) return;
  descriptors.delete(filename);
  try {
    closeSync(fd);
  } catch {
    // Already unusable; nothing more to give back.
  }
}

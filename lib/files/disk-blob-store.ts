/**
 * The embedded file store: each blob is a file `<dir>/<first 2 chars of key>/<key>`. A put streams
 * the body to `<dir>/tmp/<random>.part` (back-pressure held by stream.pipeline, so a large upload is
 * never buffered), fsyncs it, renames it into place and fsyncs the folder: a blob is either whole
 * at its key or absent, even after a crash. Temp files a crash left behind are removed at open once
 * they are an hour old (an upload still being written by another process is younger).
 */
import { randomUUID } from "node:crypto";
import { constants, createWriteStream } from "node:fs";
import { access, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SECRET_DIR_MODE, SECRET_FILE_MODE } from "../secret-files.ts";
import {
  BlobNotFoundError,
  type BlobRange,
  type BlobStore,
  BlobStoreUnavailableError,
  type PutOptions,
} from "./blob-store.ts";

const TMP_DIR = "tmp";
const STALE_TMP_MS = 60 * 60 * 1000;
/** An opaque id of [A-Za-z0-9_-], optionally with dot-separated suffixes such as `.thumb320`. */
const KEY_PATTERN = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const MAX_KEY_LENGTH = 200;

/** Throws unless `key` is a blob key both stores accept (so it is safe as a file name too). */
export function assertBlobKey(key: string): void {
  if (typeof key !== "string" || key.length > MAX_KEY_LENGTH || !KEY_PATTERN.test(key)) {
    throw new Error(`Invalid blob key ${JSON.stringify(String(key).slice(0, MAX_KEY_LENGTH))}`);
  }
}

/** Throws a RangeError unless `range` is two whole byte positions, start <= end. */
export function assertBlobRange(range: BlobRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`Invalid byte range ${start}-${end}`);
  }
}

/**
 * Passes bytes through and fails once they differ from `size` (more, or fewer at the end), so a
 * body that is not the length announced is never stored.
 */
export function exactLength(size: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > size) callback(new Error(`The body is longer than its announced size ${size}`));
      else callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (seen !== size) callback(new Error(`The body has ${seen} bytes, not its announced ${size}`));
      else callback();
    },
  });
}

export class DiskBlobStore implements BlobStore {
  readonly kind = "disk" as const;
  readonly dir: string;
  readonly #tmp: string;

  private constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.#tmp = path.join(this.dir, TMP_DIR);
  }

  /** Creates the folder when missing and removes temp files older than an hour. */
  static async open(dir: string): Promise<DiskBlobStore> {
    const store = new DiskBlobStore(dir);
    try {
      await mkdir(store.#tmp, { recursive: true, mode: SECRET_DIR_MODE });
      await store.#removeStaleTemps();
    } catch (err) {
      throw new BlobStoreUnavailableError(err);
    }
    return store;
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<void> {
    assertBlobKey(key);
    const tmpFile = path.join(this.#tmp, `${randomUUID()}.part`);
    // pipeline destroys every stream with the first error, so each stream's own error is told
    // apart by which listener saw it first: the body's is rethrown, the disk's is the store's.
    let bodyError: unknown;
    let diskError: unknown;
    const onBodyError = (err: unknown) => {
      if (err !== diskError) bodyError ??= err;
    };
    const onDiskError = (err: unknown) => {
      if (err !== bodyError) diskError ??= err;
    };
    // Left on: an error the body emits after put settled must not go unhandled.
    body.on("error", onBodyError);
    try {
      // `flush` fsyncs the file before it is closed, i.e. before pipeline resolves.
      // Users' files are the owner's alone, like the rest of DATA_DIR (lib/secret-files.ts).
      const file = createWriteStream(tmpFile, { flags: "wx", flush: true, mode: SECRET_FILE_MODE });
      file.on("error", onDiskError);
      if (options.size === undefined || options.sizeChecked) await pipeline(body, file);
      else await pipeline(body, exactLength(options.size), file);
      const target = this.#file(key);
      const folder = path.dirname(target);
      const created = await mkdir(folder, { recursive: true, mode: SECRET_DIR_MODE });
      await rename(tmpFile, target);
      await fsyncDir(folder);
      if (created !== undefined) await fsyncDir(this.dir);
    } catch (err) {
      await rm(tmpFile, { force: true }).catch(() => {});
      if (bodyError !== undefined) throw bodyError;
      throw diskError !== undefined || isSystemError(err) ? new BlobStoreUnavailableError(err) : err;
    }
  }

  async get(key: string, range?: BlobRange): Promise<Readable> {
    assertBlobKey(key);
    if (range) assertBlobRange(range);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.#file(key), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new BlobNotFoundError(key);
      throw new BlobStoreUnavailableError(err);
    }
    try {
      if (range) {
        const { size } = await handle.stat();
        if (range.start >= size) throw new RangeError(`Byte range ${range.start}- starts past ${size} bytes`);
      }
      return handle.createReadStream(range ? { start: range.start, end: range.end } : {});
    } catch (err) {
      await handle.close().catch(() => {});
      throw isSystemError(err) ? new BlobStoreUnavailableError(err) : err;
    }
  }

  async delete(key: string): Promise<void> {
    assertBlobKey(key);
    try {
      await rm(this.#file(key), { force: true });
    } catch (err) {
      throw new BlobStoreUnavailableError(err);
    }
  }

  async ping(): Promise<void> {
    try {
      await access(this.#tmp, constants.R_OK | constants.W_OK);
      if (!(await stat(this.#tmp)).isDirectory()) throw new Error(`${this.#tmp} is not a folder`);
    } catch (err) {
      throw new BlobStoreUnavailableError(err);
    }
  }

  async close(): Promise<void> {}

  #file(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key);
  }

  async #removeStaleTemps(): Promise<void> {
    const cutoff = Date.now() - STALE_TMP_MS;
    for (const name of await readdir(this.#tmp)) {
      const file = path.join(this.#tmp, name);
      try {
        if ((await stat(file)).mtimeMs < cutoff) await rm(file, { force: true, recursive: true });
      } catch {
        // Gone already (another process swept it).
      }
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** An error of the OS (ENOSPC, EACCES, EIO...), as opposed to one of the body or of a caller. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === "string";
}

/**
 * `GET /files/:id`: streams a file the caller may read (chat.fileAccess decides) from the blob
 * store, with the headers that keep a browser from running it (nosniff, a sandboxing CSP, and
 * `attachment` for anything that is not a raster image), one byte range for audio and video seeks,
 * and an ETag (its SHA-256) for revalidation. `?thumb=N` serves a WebP of a raster image at most
 * N px wide and high, made on first request with sharp and kept beside the file.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Sharp, SharpOptions } from "sharp";
import type { FileAccess } from "../../lib/contracts.ts";
import { NotFoundError, ServiceUnavailableError, ValidationFailedError } from "../../lib/errors.ts";
import { BlobNotFoundError, type BlobStore, BlobStoreUnavailableError } from "../../lib/files/blob-store.ts";
import { THUMB_SIZES } from "../../services/chat/uploads.ts";
import { parseRange } from "./byte-range.ts";
import { isRasterImage } from "./content-type.ts";
import { contentDisposition } from "./file-names.ts";

/** Thumbnails made at once by one gateway: decoding a large image takes memory and a core. */
const THUMB_CONCURRENCY = 2;
/** Pixels of an image a thumbnail is made from at most (sharp's own default is 268 M). */
const THUMB_MAX_PIXELS = 100_000_000;

export class FileSender {
  private readonly blobs: BlobStore;
  /** Thumbnails being made on this gateway, by key: a second request waits for the first. */
  private readonly making = new Map<string, Promise<Buffer>>();
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(blobs: BlobStore) {
    this.blobs = blobs;
  }

  /** Parses `thumb`: absent, or one of THUMB_SIZES. */
  static thumbOf(raw: string | undefined): number | undefined {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!(THUMB_SIZES as readonly number[]).includes(n)) {
      throw new ValidationFailedError([
        { field: "thumb", type: "thumb", message: `'thumb' must be one of ${THUMB_SIZES.join(", ")}` },
      ]);
    }
    return n;
  }

  async send(req: IncomingMessage, res: ServerResponse, file: FileAccess, thumb?: number): Promise<void> {
    if (thumb !== undefined && !isRasterImage(file.contentType)) {
      throw new ValidationFailedError([
        { field: "thumb", type: "thumb", message: "Thumbnails are made of images only" },
      ]);
    }
    const etag = thumb === undefined ? `"${file.sha256}"` : `"${file.sha256}-t${thumb}"`;
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Content-Security-Policy", "default-src 'none'; sandbox");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("Cache-Control", "private, no-cache, no-transform");
    res.setHeader("ETag", etag);
    if (matches(req.headers["if-none-match"], etag)) {
      res.statusCode = 304;
      res.end();
      return;
    }
    if (thumb !== undefined) return this.sendThumb(req, res, file, thumb);

    const ifRange = req.headers["if-range"];
    const range =
      ifRange === undefined || ifRange === etag
        ? parseRange(header(req.headers.range), file.size)
        : undefined;
    if (range?.kind === "unsatisfiable") {
      res.statusCode = 416;
      res.setHeader("Content-Range", `bytes */${file.size}`);
      res.end();
      return;
    }
    const part = range?.kind === "partial" ? { start: range.start, end: range.end } : undefined;
    // The bytes are opened before any header of theirs is set: a blob the store lacks, or a store
    // that is down, is answered as a plain error.
    const body = req.method === "HEAD" ? undefined : await this.open(file.key, part);
    const inline = isRasterImage(file.contentType);
    res.setHeader(
      "Content-Type",
      file.contentType === "text/plain" ? "text/plain; charset=utf-8" : file.contentType,
    );
    res.setHeader("Content-Disposition", contentDisposition(inline ? "inline" : "attachment", file.name));
    res.setHeader("Accept-Ranges", "bytes");
    res.statusCode = part ? 206 : 200;
    res.setHeader("Content-Length", String(part ? part.end - part.start + 1 : file.size));
    if (part) res.setHeader("Content-Range", `bytes ${part.start}-${part.end}/${file.size}`);
    if (!body) {
      res.end();
      return;
    }
    await pipeline(body, res).catch(() => undefined);
  }

  private async sendThumb(req: IncomingMessage, res: ServerResponse, file: FileAccess, size: number) {
    const key = `${file.key}.thumb${size}`;
    const bytes = await this.thumbnail(file, key, size);
    res.statusCode = 200;
    res.setHeader("Content-Type", "image/webp");
    res.setHeader("Content-Disposition", contentDisposition("inline", `${stem(file.name)}.webp`));
    res.setHeader("Content-Length", String(bytes.length));
    res.end(req.method === "HEAD" ? undefined : bytes);
  }

  /** The thumbnail's bytes: stored ones, or made now (once per key at a time) and stored. */
  private thumbnail(file: FileAccess, key: string, size: number): Promise<Buffer> {
    const known = this.making.get(key);
    if (known) return known;
    const work = (async () => {
      try {
        return await collect(await this.blobs.get(key));
      } catch (err) {
        if (!(err instanceof BlobNotFoundError)) throw unavailable(err);
      }
      const made = await this.limited(async () => {
        const source = await this.open(file.key);
        const resize = (await loadSharp())({ limitInputPixels: THUMB_MAX_PIXELS, failOn: "error" })
          .rotate()
          .resize(size, size, { fit: "inside", withoutEnlargement: true })
          .webp({ quality: 80 });
        source.pipe(resize);
        source.on("error", (err) => resize.destroy(err));
        try {
          return await resize.toBuffer();
        } catch (err) {
          if (err instanceof BlobStoreUnavailableError) throw unavailable(err);
          throw new ValidationFailedError([
            { field: "thumb", type: "thumb", message: "This image cannot be decoded to make a thumbnail" },
          ]);
        }
      });
      await this.blobs
        .put(key, Readable.from([made]), {
          contentType: "image/webp",
          size: made.length,
        })
        .catch(() => undefined); // made again next time
      return made;
    })().finally(() => this.making.delete(key));
    this.making.set(key, work);
    return work;
  }

  private async open(key: string, range?: { start: number; end: number }) {
    try {
      return await this.blobs.get(key, range);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw new NotFoundError("File", "FILE_NOT_FOUND");
      throw unavailable(err);
    }
  }

  private async limited<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= THUMB_CONCURRENCY) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running += 1;
    try {
      return await task();
    } finally {
      this.running -= 1;
      this.queue.shift()?.();
    }
  }
}

let sharpModule: Promise<(options: SharpOptions) => Sharp> | undefined;

/** sharp (libvips), loaded at the first thumbnail: a gateway that makes none never holds it. */
function loadSharp(): Promise<(options: SharpOptions) => Sharp> {
  sharpModule ??= import("sharp").then((m) => m.default as unknown as (options: SharpOptions) => Sharp);
  return sharpModule;
}

function unavailable(err: unknown): Error {
  return err instanceof BlobStoreUnavailableError ? new ServiceUnavailableError(err.message) : (err as Error);
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(",")
    .map((t) => t.trim().replace(/^W\//, ""))
    .some((t) => t === etag || t === "*");
}

function stem(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

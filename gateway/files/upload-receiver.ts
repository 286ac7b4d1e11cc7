/**
 * `POST /uploads?name=`: the body streams from the socket to the blob store, counted and hashed on
 * the way, with back-pressure, so an upload costs the gateway a few chunks of memory whatever its
 * size. Its type is found from its first bytes before anything is stored. Past UPLOAD_MAX_BYTES
 * (or what the owner's quota has left) the answer is 413 and the gateway stops reading; a failed
 * store leaves neither bytes (BlobStore.put) nor a record (chat.uploadAbort, or the sweep).
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import { Errors } from "moleculer";
import type { UploadView } from "../../lib/contracts.ts";
import {
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  ValidationFailedError,
} from "../../lib/errors.ts";
import { type BlobStore, BlobStoreUnavailableError } from "../../lib/files/blob-store.ts";
import {
  IMAGE_HEAD_BYTES,
  imageDimensions,
  isRasterImage,
  SNIFF_BYTES,
  sniffContentType,
} from "./content-type.ts";
import { sanitizeFileName } from "./file-names.ts";

export interface UploadCalls {
  begin(params: { name: string; contentType: string; declaredSize?: number }): Promise<{
    id: string;
    key: string;
    remainingBytes: number;
  }>;
  commit(params: {
    id: string;
    size: number;
    sha256: string;
    width?: number;
    height?: number;
  }): Promise<UploadView>;
  abort(id: string): Promise<void>;
}

export interface UploadLimits {
  maxBytes: number;
  allowedTypes: string[];
}

export function tooLarge(maxBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`A file has at most ${maxBytes} bytes`, "UPLOAD_TOO_LARGE", { maxBytes });
}

function quotaLeft(remainingBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `Your uploads' quota has ${remainingBytes} bytes left`,
    "UPLOAD_QUOTA_EXCEEDED",
    { remainingBytes },
  );
}

function invalid(field: string, message: string): ValidationFailedError {
  return new ValidationFailedError([{ field, type: field, message }]);
}

/** The declared body length, when there is one to hold the client to. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const header = req.headers["content-length"];
  if (header === undefined || req.headers["transfer-encoding"] !== undefined) return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export class UploadReceiver {
  private readonly blobs: BlobStore;
  private readonly limits: UploadLimits;
  private readonly allowed: Set<string>;

  constructor(blobs: BlobStore, limits: UploadLimits) {
    this.blobs = blobs;
    this.limits = limits;
    this.allowed = new Set(limits.allowedTypes);
  }

  /** Stores the request's body as an upload; throws the client error or the 503 to answer. */
  async receive(req: IncomingMessage, rawName: string | undefined, calls: UploadCalls): Promise<UploadView> {
    if (rawName === undefined || rawName === "") throw invalid("name", "Give the file's name as ?name=");
    const name = sanitizeFileName(rawName);
    if (name === null) throw invalid("name", "The file name is empty once made safe");
    const declared = declaredLength(req);
    const { maxBytes } = this.limits;
    if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes);
    if (declared === 0) throw invalid("body", "The file is empty");

    const head = await readHead(req, SNIFF_BYTES);
    if (head.bytes.length === 0) throw invalid("body", "The file is empty");
    const contentType = await sniffContentType(head.bytes);
    if (!this.allowed.has(contentType)) {
      throw new UnsupportedMediaTypeError(
        `Files of type ${contentType} are not allowed`,
        "UPLOAD_TYPE_NOT_ALLOWED",
        { contentType },
      );
    }

    const { id, key, remainingBytes } = await calls.begin({
      name,
      contentType,
      ...(declared !== undefined ? { declaredSize: declared } : {}),
    });
    const meter = new UploadMeter(
      Math.min(maxBytes, remainingBytes),
      remainingBytes < maxBytes ? () => quotaLeft(remainingBytes) : () => tooLarge(maxBytes),
      isRasterImage(contentType) ? IMAGE_HEAD_BYTES : 0,
      declared,
    );
    const body = head.ended
      ? pipeline(Readable.from([head.bytes]), meter, () => undefined)
      : feed(req, head.bytes, meter);
    try {
      await this.blobs.put(key, body, {
        contentType,
        ...(declared !== undefined ? { size: declared, sizeChecked: true } : {}),
      });
    } catch (err) {
      await calls.abort(id).catch(() => undefined);
      if (err instanceof BlobStoreUnavailableError) throw new ServiceUnavailableError(err.message);
      throw meter.failure ?? clientGone(err);
    }
    const dims = meter.imageHead ? imageDimensions(meter.imageHead) : undefined;
    try {
      return await calls.commit({ id, size: meter.bytes, sha256: meter.digest(), ...dims });
    } catch (err) {
      // Refused (the quota, by a racing upload) or not known to be stored: the bytes go, and a
      // record that may be left pending goes with the sweep.
      await Promise.allSettled([this.blobs.delete(key), calls.abort(id)]);
      throw err;
    }
  }
}

/**
 * Pipes the rest of the request into the meter, the head read first put back. Not `pipeline`: on
 * a failure that would destroy the request and its socket, and the 413 could not be answered; the
 * request is left paused instead (the answer closes the connection).
 */
function feed(req: IncomingMessage, head: Buffer, meter: UploadMeter): UploadMeter {
  req.unshift(head);
  const stop = () => {
    req.unpipe(meter);
    req.pause();
  };
  const broken = (err?: Error) => {
    if (!meter.destroyed) meter.destroy(err ?? new Error("The request closed before its body ended"));
  };
  req.on("error", broken);
  req.on("close", () => {
    if (!req.readableEnded) broken();
  });
  meter.on("error", stop);
  req.pipe(meter);
  return meter;
}

/** The request ended before its body did: nobody is there to answer, but the error is honest. */
function clientGone(err: unknown): Error {
  const e = new Errors.MoleculerClientError("The body ended before it was whole", 400, "BAD_REQUEST");
  (e as { cause?: unknown }).cause = err;
  return e;
}

/**
 * Reads up to `want` bytes of the stream's start, then pauses it: resolves them and whether the
 * stream ended (a body shorter than that). What was read is to be unshifted back by the caller.
 */
function readHead(stream: Readable, want: number): Promise<{ bytes: Buffer; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (ended: boolean) => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", onError);
      stream.off("close", onClose);
      if (!ended) stream.pause();
      resolve({ bytes: Buffer.concat(chunks), ended });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= want) done(false);
    };
    const onEnd = () => done(true);
    const onError = (err: Error) => {
      stream.off("data", onData);
      reject(err);
    };
    const onClose = () => {
      if (!stream.readableEnded) onError(new Error("The request closed before its body ended"));
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
  });
}

/**
 * Counts and hashes what passes; past `limit` bytes it fails with `overLimit()`, and a body that
 * ends at another length than the `declared` one fails too (so the blob store need not count).
 */
class UploadMeter extends Transform {
  bytes = 0;
  failure: Error | undefined;
  imageHead: Buffer | undefined;
  private readonly hash = createHash("sha256");
  private readonly limit: number;
  private readonly overLimit: () => Error;
  private readonly keepHead: number;
  private readonly head: Buffer[] = [];
  private headBytes = 0;

  private readonly declared: number | undefined;

  constructor(limit: number, overLimit: () => Error, keepHead: number, declared: number | undefined) {
    super();
    this.limit = limit;
    this.overLimit = overLimit;
    this.keepHead = keepHead;
    this.declared = declared;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.failure = this.overLimit();
      callback(this.failure);
      return;
    }
    if (this.declared !== undefined && this.bytes > this.declared) {
      callback(new Error(`The body is longer than its Content-Length ${this.declared}`));
      return;
    }
    this.hash.update(chunk);
    if (this.headBytes < this.keepHead) {
      const part = chunk.subarray(0, this.keepHead - this.headBytes);
      this.head.push(part);
      this.headBytes += part.length;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.declared !== undefined && this.bytes !== this.declared) {
      callback(new Error(`The body has ${this.bytes} bytes, not its Content-Length ${this.declared}`));
      return;
    }
    if (this.keepHead > 0) this.imageHead = Buffer.concat(this.head);
    callback();
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

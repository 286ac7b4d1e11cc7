/**
 * The clustered file store: blobs as objects of an S3-compatible store (AWS S3, SeaweedFS, MinIO...),
 * each at `<prefix><key>` of one bucket. Credentials come from the AWS SDK's default chain
 * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).
 *
 * Streaming without buffering: a put of known size is one PutObject whose body is piped to the
 * socket as it arrives (Content-Length set, payload `UNSIGNED-PAYLOAD`, no checksum computed:
 * `requestChecksumCalculation: "WHEN_REQUIRED"`; the SDK's default would send it aws-chunked with a
 * CRC32 trailer, which streams too but which not every S3-compatible store accepts). A put of
 * unknown size is a multipart upload of 5 MiB parts, one at a time (lib-storage's Upload), so at most
 * about two parts are in memory.
 *
 * Nothing is left at a key whose put failed: an aborted PutObject stores nothing, a multipart upload
 * is aborted, and when the store failed after it may have received everything (an answer lost), the
 * key is deleted. A cleanup the store refuses because it is down is retried in the background until
 * it succeeds (a later put of the same key cancels a pending delete of it). Multipart uploads older
 * than an hour under the prefix (a crash's leftovers) are aborted at open.
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import {
  BlobNotFoundError,
  type BlobRange,
  type BlobStore,
  BlobStoreUnavailableError,
  type PutOptions,
} from "./blob-store.ts";
import { assertBlobKey, assertBlobRange, exactLength } from "./disk-blob-store.ts";

export const PART_SIZE = 5 * 1024 * 1024;
const STALE_UPLOAD_MS = 60 * 60 * 1000;
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;
const MAX_SOCKETS = 256;

export interface S3StoreConfig {
  endpoint: string | undefined;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
}

export interface S3BlobStoreOptions {
  /** Put before every key in the bucket; "files/" unless given ("" for none). */
  prefix?: string;
  /** Instead of the SDK's default chain (tests). */
  credentials?: S3ClientConfig["credentials"];
  /** Time to open a connection; 3000 ms unless given. */
  connectionTimeoutMs?: number;
  /** Time a connection may stay silent mid-request; 30000 ms unless given. */
  socketTimeoutMs?: number;
}

/** A cleanup the store could not do yet: abort a multipart upload, or delete a key. */
interface Cleanup {
  key: string;
  uploadId?: string;
}

/** The SDK logs to the console by default (a warning for every failed streaming request). */
const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export class S3BlobStore implements BlobStore {
  readonly kind = "s3" as const;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly #pending = new Map<string, Cleanup>();
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelayMs = RETRY_FIRST_MS;
  #retrying: Promise<void> | undefined;
  #closed = false;

  constructor(config: S3StoreConfig, options: S3BlobStoreOptions = {}) {
    if (!config.bucket) throw new Error("S3_BUCKET is required when FILE_STORE=s3");
    this.bucket = config.bucket;
    this.prefix = options.prefix ?? "files/";
    this.client = new S3Client({
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Checksums only where S3 demands them: none on PutObject, so its body is streamed as is.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // One retry of a failed call; a streamed body is never retried (it cannot be replayed).
      maxAttempts: 2,
      // socketTimeout is the idle time allowed mid-request (requestTimeout would be the whole
      // request's, which a large upload or a slow download must not have). A download holds its
      // socket while its client reads it, so more than the SDK's 50.
      requestHandler: {
        connectionTimeout: options.connectionTimeoutMs ?? 3_000,
        socketTimeout: options.socketTimeoutMs ?? 30_000,
        httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
        httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      },
      logger: quietLogger,
    });
  }

  /** A store ready for use: the bucket made when missing, a crash's old multipart uploads aborted. */
  static async open(config: S3StoreConfig, options: S3BlobStoreOptions = {}): Promise<S3BlobStore> {
    const store = new S3BlobStore(config, options);
    try {
      await store.ensureBucket();
    } catch (err) {
      // A store that is down at start is one that is down later: ping() and every call say so.
      if (!(err instanceof BlobStoreUnavailableError)) throw err;
    }
    store.abortStaleUploads().catch(() => {});
    return store;
  }

  /** Creates the bucket unless it exists (a fresh SeaweedFS or MinIO has none). */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      if (!isNoBucket(err)) throw new BlobStoreUnavailableError(err);
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const name = (err as Error).name;
      if (name !== "BucketAlreadyOwnedByYou" && name !== "BucketAlreadyExists") {
        throw new BlobStoreUnavailableError(err);
      }
    }
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<void> {
    assertBlobKey(key);
    // A delete still pending from an earlier failed put of this key would remove this one.
    this.#pending.delete(`delete:${key}`);
    let failed = false;
    let bodyError: unknown;
    // Left on: an error the body emits after put settled must not go unhandled.
    body.on("error", (err) => {
      if (!failed) bodyError ??= err;
    });
    if (options.size === undefined)
      return this.#putMultipart(key, body, options.contentType, () => {
        failed = true;
        return bodyError;
      });
    const abort = new AbortController();
    const broken = (err: unknown) => {
      if (failed) return;
      bodyError ??= err;
      abort.abort(err);
    };
    let counted: Readable = body;
    if (options.sizeChecked) body.once("error", broken);
    else {
      const checked = exactLength(options.size);
      pipeline(body, checked).catch(broken);
      counted = checked;
    }
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          Body: counted,
          ContentLength: options.size,
          ContentType: options.contentType,
        }),
        { abortSignal: abort.signal },
      );
    } catch (err) {
      const error = bodyError;
      failed = true;
      counted.destroy();
      // An aborted PutObject stores nothing; a store failure may come after it stored everything.
      if (error !== undefined) throw error;
      await this.#cleanUp({ key });
      throw new BlobStoreUnavailableError(err);
    }
    this.#kickRetry();
  }

  async #putMultipart(key: string, body: Readable, contentType: string, fail: () => unknown): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.prefix + key, Body: body, ContentType: contentType },
      partSize: PART_SIZE,
      queueSize: 1,
      // Aborted here instead, so a failed abort is retried later and the first error is the one thrown.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      const error = fail();
      body.destroy();
      const { uploadId } = upload;
      if (uploadId !== undefined) await this.#cleanUp({ key, uploadId });
      if (error === undefined) await this.#cleanUp({ key });
      throw error ?? new BlobStoreUnavailableError(err);
    }
    this.#kickRetry();
  }

  async get(key: string, range?: BlobRange): Promise<Readable> {
    assertBlobKey(key);
    if (range) assertBlobRange(range);
    let body: unknown;
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      body = out.Body;
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(key);
      if (statusOf(err) === 416)
        throw new RangeError(`Byte range ${range?.start}- starts past the end of ${key}`);
      throw new BlobStoreUnavailableError(err);
    }
    if (!(body instanceof Readable))
      throw new BlobStoreUnavailableError(new Error("GetObject answered no body stream"));
    this.#kickRetry();
    return body;
  }

  async delete(key: string): Promise<void> {
    assertBlobKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw new BlobStoreUnavailableError(err);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw new BlobStoreUnavailableError(err);
    }
    this.#kickRetry();
  }

  /** Aborts the multipart uploads under the prefix begun before `olderThanMs` ago. */
  async abortStaleUploads(olderThanMs = STALE_UPLOAD_MS): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: this.prefix,
          ...(keyMarker ? { KeyMarker: keyMarker } : {}),
          ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
        }),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || (upload.Initiated?.getTime() ?? 0) >= cutoff) continue;
        await this.client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: upload.Key,
            UploadId: upload.UploadId,
          }),
        );
        aborted++;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  /** The cleanups still waiting for the store to answer (failed puts' leftovers). */
  get pendingCleanups(): number {
    return this.#pending.size;
  }

  /** Tries every pending cleanup now; resolves once each was tried. */
  async retryCleanups(): Promise<void> {
    this.#retrying ??= (async () => {
      for (const [id, cleanup] of [...this.#pending]) {
        // A put of the key since then has dropped its pending delete.
        if (this.#pending.get(id) !== cleanup) continue;
        if ((await this.#tryCleanup(cleanup)) && this.#pending.get(id) === cleanup) this.#pending.delete(id);
      }
    })().finally(() => {
      this.#retrying = undefined;
    });
    await this.#retrying;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#pending.size) await this.retryCleanups();
    this.client.destroy();
  }

  /** Does a cleanup now, or keeps it for later when the store does not answer. */
  async #cleanUp(cleanup: Cleanup): Promise<void> {
    if (await this.#tryCleanup(cleanup)) return;
    this.#pending.set(cleanup.uploadId ? `upload:${cleanup.uploadId}` : `delete:${cleanup.key}`, cleanup);
    this.#scheduleRetry();
  }

  async #tryCleanup({ key, uploadId }: Cleanup): Promise<boolean> {
    try {
      if (uploadId) {
        await this.client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: this.prefix + key,
            UploadId: uploadId,
          }),
        );
      } else {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      }
      return true;
    } catch (err) {
      // Already gone is done.
      return isNotFound(err);
    }
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer || !this.#pending.size) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.retryCleanups().then(() => {
        this.#retryDelayMs = this.#pending.size
          ? Math.min(this.#retryDelayMs * 2, RETRY_MAX_MS)
          : RETRY_FIRST_MS;
        this.#scheduleRetry();
      });
    }, this.#retryDelayMs);
    this.#retryTimer.unref();
  }

  /** The store answered: pending cleanups are worth trying now rather than at the next tick. */
  #kickRetry(): void {
    if (!this.#pending.size || this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#retryDelayMs = RETRY_FIRST_MS;
    void this.retryCleanups().then(() => this.#scheduleRetry());
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** The object (or multipart upload) is absent; a missing bucket is a broken store, not this. */
function isNotFound(err: unknown): boolean {
  const name = (err as Error)?.name;
  if (name === "NoSuchBucket") return false;
  return name === "NoSuchKey" || name === "NotFound" || name === "NoSuchUpload" || statusOf(err) === 404;
}

/** HeadBucket's answer for a bucket that does not exist. */
function isNoBucket(err: unknown): boolean {
  const name = (err as Error)?.name;
  return name === "NoSuchBucket" || name === "NotFound" || statusOf(err) === 404;
}

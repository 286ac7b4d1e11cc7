/**
 * Where the bytes of uploaded files live: files under a folder (the embedded default,
 * disk-blob-store.ts) or an S3-compatible object store (a cluster, s3-blob-store.ts). The records
 * about them (owner, type, which messages hold them) live in the chat service's store; a blob is
 * written whole before its record is, and removed after it.
 */
import type { Readable } from "node:stream";

/** Byte positions, both inclusive. */
export interface BlobRange {
  start: number;
  end: number;
}

export interface PutOptions {
  contentType: string;
  /** The exact length, when known: a body of another length is refused and not kept. */
  size?: number;
  /**
   * The body fails by itself (emits an error) unless it is exactly `size` bytes, so the store need
   * not count them again: one stream stage less on every upload (gateway/files/upload-receiver.ts).
   */
  sizeChecked?: boolean;
}

export interface BlobStore {
  readonly kind: "disk" | "s3";
  /**
   * Streams `body` to `key` and resolves once it is stored durably. On rejection nothing is left
   * at `key` (no half object, no temporary file). `size` is the exact length when known.
   */
  put(key: string, body: Readable, options: PutOptions): Promise<void>;
  /** The bytes of `key` (or of `range` of it), as a stream. Rejects BlobNotFoundError when absent. */
  get(key: string, range?: BlobRange): Promise<Readable>;
  /** Removes `key`; nothing happens when it is absent. */
  delete(key: string): Promise<void>;
  /** Resolves when the store answers; rejects BlobStoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class BlobNotFoundError extends Error {
  constructor(key: string) {
    super(`No blob at ${key}`);
    this.name = "BlobNotFoundError";
  }
}

/** The store itself failed (refused, timed out, answered 5xx): worth a retry later. */
export class BlobStoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`The file store is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "BlobStoreUnavailableError";
    this.cause = cause;
  }
}

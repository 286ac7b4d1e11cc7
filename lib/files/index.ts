/** Opens the file store the config names: a folder (disk, the default) or an S3 bucket (s3). */
import type { PlatformConfig } from "../config.ts";
import type { BlobStore } from "./blob-store.ts";
import { DiskBlobStore } from "./disk-blob-store.ts";

export type { BlobRange, BlobStore } from "./blob-store.ts";
export { BlobNotFoundError, BlobStoreUnavailableError } from "./blob-store.ts";

/**
 * The store of `files.store`. For s3, a missing bucket name is an error at start; a store that does
 * not answer is not (the node starts, uploads answer 503 until it does); a missing bucket is made.
 */
export async function openBlobStore(files: PlatformConfig["files"]): Promise<BlobStore> {
  if (files.store === "s3") {
    if (!files.s3.bucket) throw new Error("S3_BUCKET is required when FILE_STORE=s3");
    // Loaded only here: the AWS SDK is several MB of heap that a node on the disk store never
    // needs, and a larger heap makes every garbage collection of an upload's buffers slower.
    const { S3BlobStore } = await import("./s3-blob-store.ts");
    return S3BlobStore.open(files.s3, files.s3.credentials ? { credentials: files.s3.credentials } : {});
  }
  return DiskBlobStore.open(files.dir);
}

/**
 * What the file benchmark uploads. Large bodies are made as they are written, never held whole in
 * memory: an MP4 header (so the gateway finds `video/mp4`, an allowed type) and then 64 KiB slices
 * of one random MiB, over and over; random so that neither a store nor a transport can compress
 * them (SeaweedFS gzips what compresses), and the same bytes for the platform and the baseline.
 * The images of the thumbnail figure are 12-megapixel JPEGs and PNGs of blurred noise, made with
 * sharp before the runs.
 */
import { randomBytes } from "node:crypto";
import sharp from "sharp";

export const CHUNK_BYTES = 64 * 1024;
const BLOCK_BYTES = 1024 * 1024;

/** An `ftyp` box of an ISO MP4: what file-type needs to call the bytes video/mp4. */
const MP4_HEAD = Buffer.concat([
  Buffer.from([0, 0, 0, 0x20]),
  Buffer.from("ftypisom", "latin1"),
  Buffer.from([0, 0, 2, 0]),
  Buffer.from("isomiso2avc1mp41", "latin1"),
]);

/** One random MiB starting with the MP4 header; every large body is slices of it. */
export function makeBlock(): Buffer {
  const block = randomBytes(BLOCK_BYTES);
  MP4_HEAD.copy(block, 0);
  return block;
}

/** `size` bytes: the block's slices in turn, each at most CHUNK_BYTES, made as they are asked for. */
export function* bodyChunks(block: Buffer, size: number): Generator<Buffer> {
  let offset = 0;
  for (let left = size; left > 0; ) {
    const n = Math.min(CHUNK_BYTES, left, block.length - offset);
    yield block.subarray(offset, offset + n);
    left -= n;
    offset = (offset + n) % block.length;
  }
}

export type ImageKind = "jpeg" | "png";

export interface BenchImage {
  kind: ImageKind;
  name: string;
  bytes: Buffer;
  width: number;
  height: number;
}

/** 4000 x 3000 (12 megapixels) of blurred gaussian noise, a new pattern each call. */
export async function makeImage(kind: ImageKind, n: number): Promise<BenchImage> {
  const width = 4000;
  const height = 3000;
  const base = sharp({
    create: {
      width,
      height,
      channels: 3,
      background: { r: 40 + ((n * 53) % 180), g: 140, b: 90 },
      noise: { type: "gaussian", mean: 128, sigma: 40 },
    },
  }).blur(1.5);
  const bytes =
    kind === "jpeg"
      ? await base.jpeg({ quality: 88 }).toBuffer()
      : await base.png({ compressionLevel: 6 }).toBuffer();
  return { kind, name: `photo-${n}.${kind === "jpeg" ? "jpg" : "png"}`, bytes, width, height };
}

/**
 * The platform's upload path taken apart, to tell where its time goes against the bare baseline:
 * a node:http server on a free port of 127.0.0.1 running the product's own classes, in this
 * process, without the gateway around them.
 *
 * - `POST /store`: `DiskBlobStore.put(key, req, {size})` alone (its exact-length check, the write
 *   stream with fsync, the rename and folder fsyncs): the disk store's part.
 * - `POST /receiver`: `UploadReceiver.receive` over that store, with the chat service's calls
 *   (begin, commit) answered in this process: the store plus the type sniffing, the head read and
 *   put back, and the meter that counts and hashes (sha256) every chunk.
 * - `POST /s3-store`, `POST /s3-receiver`: the same over `S3BlobStore` (when given a store).
 *
 * And two sketches of a leaner path (not the product's code), each doing the disk store's work
 * (write stream with fsync, rename, folder fsync) and counting and hashing every byte:
 * - `POST /lean`: one Transform that counts and hashes, between the request and the file.
 * - `POST /tap`: no stream between them: the request piped to the file, a `data` listener hashing.
 *
 * What the full gateway adds on top of `/receiver` is the HTTP server it shares with moleculer-web,
 * the token check and the two calls to the chat service over the bus. Reports its memory peaks on
 * SIGUSR2 (memory.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { UploadReceiver } from "../../gateway/files/upload-receiver.ts";
import { DEFAULT_UPLOAD_TYPES } from "../../lib/config.ts";
import type { BlobStore } from "../../lib/files/blob-store.ts";
import { DiskBlobStore } from "../../lib/files/disk-blob-store.ts";
import { S3BlobStore } from "../../lib/files/s3-blob-store.ts";
import { announce, childArgs, stopOnRequest } from "../child.ts";
import { reportPeaksOnSignal } from "./memory.ts";

export interface StagesArgs {
  dir: string;
  memoryFile: string;
  s3?: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
}

const args = childArgs<StagesArgs>();
reportPeaksOnSignal(args.memoryFile);
const disk = await DiskBlobStore.open(path.join(args.dir, "files"));
const s3 = args.s3
  ? await S3BlobStore.open(
      { endpoint: args.s3.endpoint, bucket: args.s3.bucket, region: args.s3.region, forcePathStyle: true },
      { credentials: { accessKeyId: args.s3.accessKeyId, secretAccessKey: args.s3.secretAccessKey } },
    )
  : undefined;
const limits = { maxBytes: 5 * 1024 ** 3, allowedTypes: DEFAULT_UPLOAD_TYPES };
const receivers = new Map<BlobStore, UploadReceiver>([[disk, new UploadReceiver(disk, limits)]]);
if (s3) receivers.set(s3, new UploadReceiver(s3, limits));

/** The chat service's part, answered here: a fresh id, no quota, the view built from what was stored. */
function localCalls() {
  let begun: { id: string; name: string; contentType: string } | undefined;
  return {
    begin: async (p: { name: string; contentType: string }) => {
      const id = randomBytes(16).toString("base64url");
      begun = { id, name: p.name, contentType: p.contentType };
      return { id, key: id, remainingBytes: Number.MAX_SAFE_INTEGER };
    },
    commit: async (p: { id: string; size: number; sha256: string; width?: number; height?: number }) => ({
      ...p,
      name: begun?.name ?? "",
      contentType: begun?.contentType ?? "",
      createdAt: new Date().toISOString(),
    }),
    abort: async () => undefined,
  };
}

async function store(blobs: BlobStore, req: http.IncomingMessage) {
  const id = randomBytes(16).toString("base64url");
  const size = Number(req.headers["content-length"]);
  await blobs.put(id, req, { contentType: "application/octet-stream", size });
  return { id, size };
}

const sketchDir = path.join(args.dir, "sketch");
await mkdir(path.join(sketchDir, "tmp"), { recursive: true });

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The disk store's work with the counting and hashing done in one Transform, or in a listener. */
async function sketch(req: http.IncomingMessage, how: "lean" | "tap") {
  const id = randomBytes(16).toString("base64url");
  const tmp = path.join(sketchDir, "tmp", `${id}.part`);
  const hash = createHash("sha256");
  let size = 0;
  const file = createWriteStream(tmp, { flags: "wx", flush: true });
  try {
    if (how === "lean") {
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          size += chunk.length;
          hash.update(chunk);
          callback(null, chunk);
        },
      });
      await pipeline(req, meter, file);
    } else {
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        hash.update(chunk);
      });
      await pipeline(req, file);
    }
    await rename(tmp, path.join(sketchDir, id));
    await fsyncDir(sketchDir);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { id, size, sha256: hash.digest("hex") };
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://stages");
  const route = url.pathname.slice(1);
  const blobs = route.startsWith("s3-") ? s3 : disk;
  const receiver = blobs ? receivers.get(blobs) : undefined;
  const work =
    req.method !== "POST" || !blobs || !receiver
      ? undefined
      : route === "store" || route === "s3-store"
        ? store(blobs, req)
        : route === "receiver" || route === "s3-receiver"
          ? receiver.receive(req, url.searchParams.get("name") ?? "upload.mp4", localCalls())
          : route === "lean" || route === "tap"
            ? sketch(req, route)
            : undefined;
  if (!work) {
    res.writeHead(404).end();
    return;
  }
  work.then(
    (view) => {
      const body = JSON.stringify(view);
      res.writeHead(201, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    },
    (err: unknown) => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(500, { "Content-Type": "text/plain", Connection: "close" });
      res.end(err instanceof Error ? err.message : String(err));
    },
  );
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  announce("ready", { url: `http://127.0.0.1:${port}` });
});

stopOnRequest(
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => {
        void Promise.all([disk.close(), s3?.close()]).then(() => resolve());
      });
    }),
);

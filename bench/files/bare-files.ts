/**
 * The baselines of the file benchmark: a bare node:http server on a free port of 127.0.0.1 doing
 * the store's work with nothing around it.
 *
 * - `POST /disk`: the body streamed (stream.pipeline, back-pressure) to `<dir>/tmp/<uuid>.part`,
 *   fsynced before close (`flush: true`), renamed to `<dir>/files/<uuid>` and the folder fsynced:
 *   the disk blob store's work, without authentication, sniffing, hashing or the records.
 * - `GET /disk/<id>`: `fs.createReadStream` of the file piped to the answer, with its length.
 * - `POST /s3` and `GET /s3/<id>` (when given a store): the same bytes through a PutObject of known
 *   length whose body is the request, and a GetObject piped to the answer, with an S3 client set up
 *   as the platform's is (checksums only when required, path style): what an S3 store costs alone.
 *
 * Answers 201 `{"id","size"}` to an upload. Reports its memory peaks on SIGUSR2 (memory.ts).
 */
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { announce, childArgs, stopOnRequest } from "../child.ts";
import { reportPeaksOnSignal } from "./memory.ts";

export interface BareFilesArgs {
  dir: string;
  memoryFile: string;
  s3?: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
}

const args = childArgs<BareFilesArgs>();
const tmpDir = path.join(args.dir, "tmp");
const filesDir = path.join(args.dir, "files");
await mkdir(tmpDir, { recursive: true });
await mkdir(filesDir, { recursive: true });
reportPeaksOnSignal(args.memoryFile);

const s3 = args.s3
  ? new S3Client({
      endpoint: args.s3.endpoint,
      region: args.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: args.s3.accessKeyId, secretAccessKey: args.s3.secretAccessKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 3_000, socketTimeout: 30_000 },
    })
  : undefined;
if (s3 && args.s3) {
  const Bucket = args.s3.bucket;
  try {
    await s3.send(new HeadBucketCommand({ Bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket }));
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

async function toDisk(req: http.IncomingMessage): Promise<string> {
  const id = randomUUID();
  const tmp = path.join(tmpDir, `${id}.part`);
  try {
    await pipeline(req, createWriteStream(tmp, { flags: "wx", flush: true }));
    await rename(tmp, path.join(filesDir, id));
    await fsyncDir(filesDir);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return id;
}

async function toS3(req: http.IncomingMessage, size: number): Promise<string> {
  if (!s3 || !args.s3) throw new Error("no S3 store given");
  const id = randomUUID();
  await s3.send(
    new PutObjectCommand({
      Bucket: args.s3.bucket,
      Key: id,
      Body: req,
      ContentLength: size,
      ContentType: "application/octet-stream",
    }),
  );
  return id;
}

async function fromDisk(id: string, res: http.ServerResponse): Promise<void> {
  const file = path.join(filesDir, id);
  const { size } = await stat(file);
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": size });
  await pipeline(createReadStream(file), res);
}

async function fromS3(id: string, res: http.ServerResponse): Promise<void> {
  if (!s3 || !args.s3) throw new Error("no S3 store given");
  const out = await s3.send(new GetObjectCommand({ Bucket: args.s3.bucket, Key: id }));
  if (!(out.Body instanceof Readable)) throw new Error("GetObject answered no stream");
  res.writeHead(200, {
    "Content-Type": "application/octet-stream",
    "Content-Length": out.ContentLength ?? 0,
  });
  await pipeline(out.Body, res);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://bare");
  const [, where, id] = url.pathname.split("/");
  const fail = (err: unknown) => {
    if (!res.headersSent) {
      res.writeHead(500, { "Content-Type": "text/plain", Connection: "close" });
      res.end(err instanceof Error ? err.message : String(err));
    } else res.destroy();
  };
  if (req.method === "POST" && (where === "disk" || where === "s3") && !id) {
    const size = Number(req.headers["content-length"]);
    (where === "disk" ? toDisk(req) : toS3(req, size)).then((stored) => {
      const body = JSON.stringify({ id: stored, size });
      res.writeHead(201, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    }, fail);
    return;
  }
  if (req.method === "GET" && (where === "disk" || where === "s3") && id && /^[0-9a-f-]{36}$/.test(id)) {
    (where === "disk" ? fromDisk(id, res) : fromS3(id, res)).catch(fail);
    return;
  }
  res.writeHead(404).end();
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
        s3?.destroy();
        resolve();
      });
    }),
);

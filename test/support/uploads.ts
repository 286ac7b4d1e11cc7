/** Uploading and downloading files the way clients do, for the attachment tests of every tier. */
import { readdir } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import sharp from "sharp";

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json<T = unknown>(): T;
  /** How many body bytes the client had written when the answer came. */
  sentBytes: number;
}

/**
 * POSTs a body to /uploads over node:http: `chunks` are written one by one (chunked unless
 * `contentLength` is given), and the answer resolves as soon as it arrives, even when the server
 * answered before reading all of it and closed the connection (writes then fail, and are stopped).
 */
export function rawUpload(
  base: string,
  token: string | undefined,
  name: string | undefined,
  chunks: Iterable<Buffer> | AsyncIterable<Buffer>,
  options: { contentLength?: number; headers?: Record<string, string> } = {},
): Promise<RawAnswer> {
  const url = new URL(`${base}/uploads`);
  if (name !== undefined) url.searchParams.set("name", name);
  const headers: Record<string, string> = { "content-type": "application/octet-stream", ...options.headers };
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.contentLength !== undefined) headers["content-length"] = String(options.contentLength);
  return new Promise((resolve, reject) => {
    let sentBytes = 0;
    let answered = false;
    const req = http.request(url, { method: "POST", headers, agent: false }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => {
        const body = Buffer.concat(parts);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: <T>() => JSON.parse(body.toString("utf8")) as T,
          sentBytes,
        });
      });
      res.on("error", reject);
    });
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    (async () => {
      for await (const chunk of chunks) {
        if (answered || req.destroyed) return;
        sentBytes += chunk.length;
        if (!req.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              req.off("drain", done);
              req.off("close", done);
              resolve();
            };
            req.on("drain", done);
            req.on("close", done);
          });
        }
      }
      if (!req.destroyed) req.end();
    })().catch(() => undefined);
  });
}

/** `n` bytes of one value, in chunks of at most 64 KiB, made as they are written. */
export function* bytes(n: number, fill = 0x61): Generator<Buffer> {
  const chunk = Buffer.alloc(Math.min(n, 64 * 1024), fill);
  for (let left = n; left > 0; left -= chunk.length)
    yield left >= chunk.length ? chunk : chunk.subarray(0, left);
}

export async function get(
  base: string,
  urlPath: string,
  token?: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<RawAnswer> {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
  const body = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    headers: Object.fromEntries(res.headers.entries()),
    body,
    json: <T>() => JSON.parse(body.toString("utf8")) as T,
    sentBytes: 0,
  };
}

export function png(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .png()
    .toBuffer();
}

export const PDF = Buffer.from(
  "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
);

/** The files under a disk file store's folder, its temporary ones apart. */
export async function storedFiles(dir: string): Promise<{ files: string[]; temps: string[] }> {
  const all = (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []))
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
  return {
    files: all.filter((f) => !f.startsWith(`tmp${path.sep}`)),
    temps: all.filter((f) => f.startsWith(`tmp${path.sep}`)),
  };
}

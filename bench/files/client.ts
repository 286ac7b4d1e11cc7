/**
 * The file benchmark's HTTP client, in the runner: uploads written chunk by chunk with
 * back-pressure and a Content-Length (as a browser sends a File), downloads read to their last byte
 * and counted, not kept, and thumbnail GETs timed to their first body byte. Each request on a
 * connection of its own (the platform and the baselines alike).
 */
import http from "node:http";
import { performance } from "node:perf_hooks";

const TIMEOUT_MS = 300_000;

export interface Timed {
  status: number;
  /** From the call to the last byte of the answer. */
  ms: number;
  /** Body bytes sent (uploads) or received (downloads). */
  bytes: number;
  /** The answer's body when it was small (an upload's JSON, an error). */
  text: string;
  /** From the call to the answer's first body byte (0 without a body). */
  firstByteMs: number;
}

export class RequestError extends Error {}

/** POSTs `size` bytes from `chunks` to `url`; resolves when the whole answer is in. */
export function upload(
  url: string,
  token: string | undefined,
  chunks: Iterable<Buffer>,
  size: number,
): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let sent = 0;
    let answered = false;
    const req = http.request(
      url,
      {
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(size),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        timeout: TIMEOUT_MS,
      },
      (res) => {
        answered = true;
        collect(res, started, true).then((t) => resolve({ ...t, bytes: sent }), reject);
      },
    );
    req.on("timeout", () => req.destroy(new RequestError(`POST ${url}: no answer in ${TIMEOUT_MS} ms`)));
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    const iterator = chunks[Symbol.iterator]();
    const write = () => {
      for (;;) {
        if (answered || req.destroyed) return;
        const next = iterator.next();
        if (next.done) {
          req.end();
          return;
        }
        sent += next.value.length;
        if (!req.write(next.value)) {
          req.once("drain", write);
          return;
        }
      }
    };
    write();
  });
}

/** GETs `url` and reads the whole answer, keeping the body only when it is small. */
export function download(url: string, token: string | undefined, keepBody = false): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      url,
      {
        method: "GET",
        agent: false,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        timeout: TIMEOUT_MS,
      },
      (res) => {
        collect(res, started, keepBody).then(resolve, reject);
      },
    );
    req.on("timeout", () => req.destroy(new RequestError(`GET ${url}: no answer in ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}

function collect(res: http.IncomingMessage, started: number, keepBody: boolean): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const status = res.statusCode ?? 0;
    const keep = keepBody || status >= 300;
    const parts: Buffer[] = [];
    let bytes = 0;
    let firstByteMs = 0;
    res.on("data", (chunk: Buffer) => {
      if (bytes === 0) firstByteMs = performance.now() - started;
      bytes += chunk.length;
      if (keep && bytes <= 1_000_000) parts.push(chunk);
    });
    res.on("end", () =>
      resolve({
        status,
        ms: performance.now() - started,
        bytes,
        text: Buffer.concat(parts).toString("utf8"),
        firstByteMs,
      }),
    );
    res.on("error", reject);
  });
}

/** Throws unless the answer has the status wanted. */
export function expectStatus(what: string, t: Timed, status: number): Timed {
  if (t.status !== status) {
    throw new RequestError(`${what} answered ${t.status}, not ${status}: ${t.text.slice(0, 300)}`);
  }
  return t;
}

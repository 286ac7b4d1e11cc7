/**
 * The HTTP of the chat benchmarks: set-up calls (fetch, checked, a 503 or 429 retried), and timed
 * GETs over one kept-alive node:http connection, timed from the call to the last byte of the body;
 * the body is parsed only when the caller checks it, after the clock stopped.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

export class HttpError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(method: string, path: string, status: number, body: string) {
    super(`${method} ${path}: ${status} ${body.slice(0, 300)}`);
    this.status = status;
    this.body = body;
  }
}

/** A set-up call as `token`'s user: answers the parsed body (null for 204); throws HttpError otherwise. */
export async function call<T = unknown>(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.ok) return (text ? JSON.parse(text) : null) as T;
    if ((res.status === 503 || res.status === 429) && attempt < 6) {
      await sleep(200 * attempt);
      continue;
    }
    throw new HttpError(method, path, res.status, text);
  }
}

export interface Timed {
  ms: number;
  status: number;
  bytes: number;
  /** The body, when asked for. */
  text?: string;
}

/** GETs over one kept-alive connection, one at a time. */
export class TimedClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly host: string;
  private readonly port: number;

  constructor(base: string) {
    const url = new URL(base);
    this.host = url.hostname;
    this.port = Number(url.port);
  }

  get(path: string, token: string, keepBody = false): Promise<Timed> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.request(
        {
          agent: this.agent,
          host: this.host,
          port: this.port,
          method: "GET",
          path,
          headers: { authorization: `Bearer ${token}` },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          const status = res.statusCode ?? 0;
          const keep = keepBody || status >= 300;
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            if (keep) chunks.push(chunk);
          });
          res.on("end", () => {
            const ms = performance.now() - started;
            resolve({
              ms,
              status,
              bytes,
              ...(keep ? { text: Buffer.concat(chunks).toString("utf8") } : {}),
            });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`GET ${path}: no answer in 30 s`)));
      req.on("error", reject);
      req.end();
    });
  }

  /** A GET that must answer 200: its parsed body. */
  async json<T>(path: string, token: string): Promise<{ timed: Timed; body: T }> {
    const timed = await this.get(path, token, true);
    if (timed.status !== 200) throw new HttpError("GET", path, timed.status, timed.text ?? "");
    return { timed, body: JSON.parse(timed.text ?? "") as T };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `task` over `items` with at most `limit` in flight; stops at the first failure. */
export { forEachLimit as pool } from "../../lib/concurrency.ts";

/** A raw WebSocket for protocol tests: every frame received is kept, and waited on by predicate. */
import WebSocket from "ws";

export type Frame = { type: string } & Record<string, unknown>;

export class RawSocket {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { test(f: Frame): boolean; resolve(f: Frame): void }[] = [];

  constructor(
    url: string,
    options: {
      token?: string;
      headers?: Record<string, string>;
      protocols?: string[];
      autoPong?: boolean;
    } = {},
  ) {
    const headers = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    this.ws = new WebSocket(url, options.protocols ?? [], { headers, autoPong: options.autoPong ?? true });
    this.ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(String(data)) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(frame)) return true;
        w.resolve(frame);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      this.ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })),
    );
  }

  /** Resolves the HTTP status when the upgrade is refused. */
  static refusal(url: string, options: { token?: string; protocols?: string[] } = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = options.token
        ? { authorization: `Bearer ${options.token}` }
        : {};
      const ws = new WebSocket(url, options.protocols ?? [], { headers });
      ws.on("unexpected-response", (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on("open", () => reject(new Error("The upgrade was accepted")));
      ws.on("error", () => undefined);
    });
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.OPEN) return resolve();
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  next(test: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const found = this.frames.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`No matching frame in ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`),
          ),
        timeoutMs,
      );
      this.waiters.push({
        test,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}

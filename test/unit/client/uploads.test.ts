/**
 * ApiClient's attachments: `upload` against a real local HTTP server that records each request
 * (the body arrives as it is produced, Content-Length when the size is known, progress that only
 * grows and ends at the total, refusals as ApiError), `fileUrl`, and `attachmentIds` passed on by
 * sendMessage and ChatSocket.send.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { ChatSocket } from "../../../client/chat-socket.ts";
import { ApiClient, ApiError } from "../../../client/rest-client.ts";
import { BASE, FakeWebSocket, fakeFetch } from "./fake-server.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  /** Each chunk's length as it arrived. */
  chunks: number[];
  body: Buffer;
}

type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;

let server: Server;
let url: string;
const requests: Seen[] = [];
/** How the next POST /uploads is answered; by default the body is read and 201 answered. */
let handler: Handler | undefined;
/** Called with each chunk the server receives (to step a producer). */
let onChunk: ((length: number) => void) | undefined;

const LOGIN = { accessToken: "tok.en/1", refreshToken: "r", expiresIn: 900, user: { id: "me" } };

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

function readAll(req: IncomingMessage, seen: Seen, done: () => void): void {
  const parts: Buffer[] = [];
  req.on("data", (chunk: Buffer) => {
    parts.push(chunk);
    seen.chunks.push(chunk.length);
    onChunk?.(chunk.length);
  });
  req.on("end", () => {
    seen.body = Buffer.concat(parts);
    done();
  });
}

function stored(seen: Seen) {
  const name = new URL(seen.url, "http://x").searchParams.get("name");
  return {
    id: "f1",
    name,
    size: seen.body.length,
    contentType: "application/octet-stream",
    sha256: "00",
    createdAt: "2030-01-01T00:00:00.000Z",
  };
}

before(async () => {
  server = createServer((req, res) => {
    const seen: Seen = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      chunks: [],
      body: Buffer.alloc(0),
    };
    requests.push(seen);
    if (req.url === "/auth/login") {
      req.resume();
      req.on("end", () => json(res, 200, LOGIN));
      return;
    }
    const h = handler;
    handler = undefined;
    if (h) return h(req, res, seen);
    readAll(req, seen, () => json(res, 201, stored(seen), { location: "/files/f1" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
);

async function signedIn(): Promise<ApiClient> {
  const api = new ApiClient(url, { retry: false });
  await api.login({ username: "me_user", password: "whatever-pw" });
  return api;
}

function last(): Seen {
  const seen = requests.at(-1);
  assert.ok(seen);
  return seen;
}

/** Progress calls, checked to grow and to end at `total`. */
function progressLog() {
  const calls: [number, number | undefined][] = [];
  return {
    calls,
    onProgress: (loaded: number, total: number | undefined) => calls.push([loaded, total]),
    assertEndsAt(total: number, known: boolean) {
      assert.ok(calls.length > 0, "progress was reported");
      for (let i = 1; i < calls.length; i++) {
        assert.ok(
          (calls[i]?.[0] ?? 0) > (calls[i - 1]?.[0] ?? 0),
          `progress grows: ${JSON.stringify(calls)}`,
        );
      }
      assert.equal(calls.at(-1)?.[0], total);
      for (const [, t] of calls) assert.equal(t, known ? total : undefined);
    },
  };
}

function chunk(n: number, fill: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

describe("upload", () => {
  test("streams an async iterable: each chunk reaches the server before the next is made", async () => {
    const api = await signedIn();
    const sizes = [70_000, 50_000, 30_000];
    const total = sizes.reduce((a, b) => a + b, 0);
    let received = 0;
    let waiter: { until: number; resolve: () => void } | undefined;
    onChunk = (n) => {
      received += n;
      if (waiter && received >= waiter.until) waiter.resolve();
    };
    const arrived = (until: number) =>
      received >= until ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { until, resolve }));
    const progress = progressLog();
    async function* produce() {
      let sent = 0;
      for (const [i, size] of sizes.entries()) {
        // The server has everything made so far before the next chunk exists: nothing is buffered
        // in the client until the end (that would wait here for ever).
        await arrived(sent);
        yield chunk(size, i + 1);
        sent += size;
      }
    }
    try {
      const view = await api.upload(produce(), {
        name: "report 1.bin",
        size: total,
        onProgress: progress.onProgress,
      });
      assert.equal(view.id, "f1");
      assert.equal(view.size, total);
      assert.equal(view.name, "report 1.bin");
    } finally {
      onChunk = undefined;
    }
    const seen = last();
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/uploads?name=report%201.bin");
    assert.equal(seen.headers.authorization, `Bearer ${LOGIN.accessToken}`);
    assert.equal(seen.headers["content-length"], String(total));
    assert.equal(seen.headers["transfer-encoding"], undefined);
    assert.equal(seen.body.length, total);
    assert.equal(seen.body[0], 1);
    assert.equal(seen.body[total - 1], 3);
    assert.ok(seen.chunks.length > 1, "the body came in several pieces");
    progress.assertEndsAt(total, true);
  });

  test("without a size the body goes chunked, and progress has no total", async () => {
    const api = await signedIn();
    const progress = progressLog();
    async function* produce() {
      yield chunk(1000, 7);
      yield "text ✓";
      yield chunk(0, 0);
      yield chunk(500, 8);
    }
    await api.upload(produce(), { name: "a.txt", onProgress: progress.onProgress });
    const seen = last();
    assert.equal(seen.headers["content-length"], undefined);
    assert.equal(seen.headers["transfer-encoding"], "chunked");
    const text = Buffer.byteLength("text ✓");
    assert.equal(seen.body.length, 1500 + text);
    assert.equal(seen.body.subarray(1000, 1000 + text).toString(), "text ✓");
    progress.assertEndsAt(1500 + text, false);
  });

  test("a Node Readable and a web ReadableStream go the same way", async () => {
    const api = await signedIn();
    const bytes = Buffer.alloc(200_000, 9);
    const p1 = progressLog();
    await api.upload(Readable.from([bytes.subarray(0, 120_000), bytes.subarray(120_000)]), {
      name: "n.bin",
      size: bytes.length,
      onProgress: p1.onProgress,
    });
    assert.deepEqual(last().body, bytes);
    assert.equal(last().headers["content-length"], String(bytes.length));
    p1.assertEndsAt(bytes.length, true);

    const p2 = progressLog();
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(chunk(10, 1));
        controller.enqueue(chunk(20, 2));
        controller.close();
      },
    });
    await api.upload(web, { name: "w.bin", onProgress: p2.onProgress });
    assert.equal(last().body.length, 30);
    p2.assertEndsAt(30, false);
  });

  test("a Blob outside a browser is streamed with its size and type", async () => {
    const api = await signedIn();
    const blob = new Blob([chunk(100_000, 4), chunk(30_000, 5)], { type: "image/png" });
    const progress = progressLog();
    await api.upload(blob, { name: "b.png", onProgress: progress.onProgress });
    const seen = last();
    assert.equal(seen.headers["content-length"], "130000");
    assert.equal(seen.headers["content-type"], "image/png");
    assert.equal(seen.body.length, 130_000);
    progress.assertEndsAt(130_000, true);
  });

  for (const [status, code, details] of [
    [413, "UPLOAD_TOO_LARGE", { maxBytes: 1000 }],
    [413, "UPLOAD_QUOTA_EXCEEDED", { quotaBytes: 5000, usedBytes: 4500 }],
    [415, "UPLOAD_TYPE_NOT_ALLOWED", { contentType: "text/html" }],
    [422, "VALIDATION_FAILED", [{ field: "name", message: "name is required" }]],
    [503, "SERVICE_UNAVAILABLE", undefined],
  ] as const) {
    test(`${status} ${code} is an ApiError with the server's code and details`, async () => {
      const api = await signedIn();
      handler = (req, res, seen) =>
        readAll(req, seen, () => json(res, status, { error: { code, message: `no: ${code}`, details } }));
      await assert.rejects(api.upload(Readable.from([Buffer.alloc(2000)]), { name: "x.bin" }), (err) => {
        assert.ok(err instanceof ApiError);
        assert.equal(err.status, status);
        assert.equal(err.code, code);
        assert.deepEqual((err.body as { error: { details?: unknown } }).error.details, details);
        return true;
      });
      // Never retried: the stream cannot be read twice.
      assert.equal(requests.filter((r) => r === last()).length, 1);
    });
  }

  test("413 answered from Content-Length at once (Connection: close, the body unread) is an ApiError", async () => {
    const api = await signedIn();
    const size = 5_000_000;
    handler = (req, res) => {
      res.shouldKeepAlive = false;
      json(
        res,
        413,
        { error: { code: "UPLOAD_TOO_LARGE", message: "too large", details: { maxBytes: 1000 } } },
        { connection: "close" },
      );
      req.pause();
    };
    async function* produce() {
      for (let sent = 0; sent < size; sent += 65_536) yield chunk(Math.min(65_536, size - sent), 1);
    }
    await assert.rejects(api.upload(produce(), { name: "big.bin", size }), (err) => {
      assert.ok(err instanceof ApiError, String(err));
      assert.equal(err.status, 413);
      assert.equal(err.code, "UPLOAD_TOO_LARGE");
      return true;
    });
  });

  test("an aborted upload rejects and stops sending", async () => {
    const api = await signedIn();
    const controller = new AbortController();
    let made = 0;
    async function* produce() {
      for (;;) {
        made++;
        if (made === 3) controller.abort();
        yield chunk(1000, 1);
        await new Promise((r) => setTimeout(r, 5));
        if (made > 1000) throw new Error("kept reading after the abort");
      }
    }
    handler = (req, res, seen) => readAll(req, seen, () => json(res, 201, stored(seen)));
    await assert.rejects(api.upload(produce(), { name: "a.bin", signal: controller.signal }), {
      name: "AbortError",
    });
    assert.ok(made < 10, `stopped reading the source (${made} chunks made)`);
  });
});

describe("fileUrl", () => {
  test("carries the current access token, and thumb when asked", async () => {
    const api = await signedIn();
    const token = encodeURIComponent(LOGIN.accessToken);
    assert.equal(api.fileUrl("f 1"), `${url}/files/f%201?access_token=${token}`);
    assert.equal(
      api.fileUrl({ id: "f1" }, { thumb: 320 }),
      `${url}/files/f1?access_token=${token}&thumb=320`,
    );
    assert.equal(new ApiClient(`${url}/`).fileUrl("f1", { thumb: 160 }), `${url}/files/f1?thumb=160`);
  });
});

describe("attachmentIds on sends", () => {
  test("sendMessage passes them on, and leaves them out when not given", async () => {
    const { fetch, calls } = fakeFetch(() => ({ status: 201, body: {} }));
    const api = new ApiClient(BASE, { fetch, retry: false });
    await api.login({ username: "me_user", password: "whatever-pw" });
    await api.sendMessage("c1", "", { clientMsgId: "k1", attachmentIds: ["f1", "f2"] });
    await api.sendMessage("c1", "hi", { clientMsgId: "k2" });
    assert.deepEqual(
      calls.map((c) => c.body),
      [
        { message: "", clientMsgId: "k1", attachmentIds: ["f1", "f2"] },
        { message: "hi", clientMsgId: "k2" },
      ],
    );
  });

  test("ChatSocket.send puts them on send_message", async () => {
    const api = new ApiClient(BASE, { fetch: fakeFetch().fetch, retry: false });
    await api.login({ username: "me_user", password: "whatever-pw" });
    const socket = new ChatSocket(api, { WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket });
    try {
      await socket.connect();
      const ws = FakeWebSocket.last;
      assert.ok(ws);
      const sent = socket.send({ chatId: "c1" }, "", { clientMsgId: "k-1", attachmentIds: ["f1"] });
      assert.deepEqual(ws.sent.at(-1), {
        type: "send_message",
        chatId: "c1",
        message: "",
        clientMsgId: "k-1",
        attachmentIds: ["f1"],
      });
      ws.push({ type: "ack", clientMsgId: "k-1", chatId: "c1", messageId: "c1_1", seq: 1 });
      assert.equal((await sent).seq, 1);
    } finally {
      socket.close();
    }
  });
});

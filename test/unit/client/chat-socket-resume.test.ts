/**
 * ChatSocket against a local ws server whose answers the test scripts: it pages what a resume did
 * not replay (`resume_truncated`), stops following chats the server says are not the user's,
 * resumes again after a refusal, splits a long resume, and waits out a rate limit's retryAfter.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { type WebSocket, WebSocketServer } from "ws";
import { ChatSocket } from "../../../client/chat-socket.ts";
import { ApiClient } from "../../../client/rest-client.ts";
import type { MessageView } from "../../../client/types.ts";

const LAST = 7;
let server: Server;
let url: string;
/** What the scripted server does with a resume frame. */
let onResume: (ws: WebSocket, chats: Record<string, number>) => void = () => undefined;
const resumes: Record<string, number>[] = [];
const historyAfters: number[] = [];
const sendArrivals: number[] = [];

const message = (seq: number): MessageView => ({
  id: `c1_${seq}`,
  chatId: "c1",
  seq,
  senderId: "u2",
  message: `m${seq}`,
  clientMsgId: `x${seq}`,
  createdAt: new Date().toISOString(),
  reactions: [],
  mentions: [],
  attachments: [],
});

before(async () => {
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    const u = new URL(req.url ?? "/", "http://localhost");
    if (req.method === "POST" && u.pathname === "/auth/login") {
      res.end(JSON.stringify({ accessToken: "t", refreshToken: "r", expiresIn: 900, user: { id: "u1" } }));
      return;
    }
    if (req.method === "GET" && u.pathname === "/chats/c1/messages") {
      // Pages of two, to show the client follows hasMore through the whole range.
      const after = Number(u.searchParams.get("after"));
      historyAfters.push(after);
      const seqs = [after + 1, after + 2].filter((s) => s <= LAST);
      res.end(JSON.stringify({ messages: seqs.map(message), hasMore: after + 2 < LAST }));
      return;
    }
    res.statusCode = 404;
    res.end("{}");
  });
  const wss = new WebSocketServer({ server, path: "/ws" });
  wss.on("connection", (ws) => {
    ws.send(JSON.stringify({ type: "ready", userId: "u1", connectionId: "c" }));
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as {
        type: string;
        chats?: Record<string, number>;
        clientMsgId?: string;
      };
      if (frame.type === "resume" && frame.chats) {
        resumes.push(frame.chats);
        onResume(ws, frame.chats);
      }
      if (frame.type === "send_message") {
        sendArrivals.push(Date.now());
        const answer =
          sendArrivals.length === 1
            ? {
                type: "error",
                code: "RATE_LIMITED",
                message: "slow down",
                ref: frame.clientMsgId,
                retryAfter: 1,
              }
            : { type: "ack", clientMsgId: frame.clientMsgId, chatId: "c1", messageId: "m", seq: 1 };
        ws.send(JSON.stringify(answer));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function signedIn(): Promise<ApiClient> {
  const api = new ApiClient(url);
  await api.login({ email: "a@example.test", password: "whatever-pw" });
  return api;
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("a truncated resume is paged from the history; chats named as not the user's are dropped", async () => {
  resumes.length = 0;
  historyAfters.length = 0;
  onResume = (ws) => {
    for (const seq of [1, 2]) ws.send(JSON.stringify({ type: "new_message", ...message(seq) }));
    ws.send(JSON.stringify({ type: "resume_truncated", chatId: "c1", fromSeq: 3, toSeq: LAST }));
    ws.send(
      JSON.stringify({
        type: "error",
        code: "CHAT_FORBIDDEN",
        message: "no",
        ref: "resume",
        chatIds: ["gone"],
      }),
    );
  };
  const received: number[] = [];
  const frames: string[] = [];
  const socket = new ChatSocket(await signedIn(), {
    onMessage: (m) => received.push(m.seq),
    onFrame: (f) => frames.push(f.type),
  });
  socket.track("c1", 0);
  socket.track("gone", 4);
  try {
    await socket.connect();
    await until(() => received.length === LAST, "every message");
    assert.deepEqual(received, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(historyAfters, [2, 4, 6]);
    assert.deepEqual(resumes, [{ c1: 0, gone: 4 }]);
    assert.equal(socket.lastSeen("gone"), undefined, "no longer followed");
    assert.deepEqual(frames, ["error"], "the error is still handed on");
  } finally {
    socket.close();
  }
});

test("a resume refused as unavailable is sent again from where the chats stand", async () => {
  resumes.length = 0;
  onResume = (ws) => {
    if (resumes.length === 1) {
      ws.send(JSON.stringify({ type: "new_message", ...message(1) }));
      ws.send(JSON.stringify({ type: "error", code: "SERVICE_UNAVAILABLE", message: "busy", ref: "resume" }));
    }
  };
  const socket = new ChatSocket(await signedIn(), { minDelayMs: 50 });
  socket.track("c1", 0);
  try {
    await socket.connect();
    await until(() => resumes.length === 2, "a second resume");
    assert.deepEqual(resumes, [{ c1: 0 }, { c1: 1 }]);
  } finally {
    socket.close();
  }
});

test("more chats than one resume frame may hold go in several frames", async () => {
  resumes.length = 0;
  onResume = () => undefined;
  const socket = new ChatSocket(await signedIn());
  for (let i = 0; i < 2_500; i++) socket.track(`chat${i}`, i);
  try {
    await socket.connect();
    await until(() => resumes.length === 3, "three resume frames");
    assert.deepEqual(
      resumes.map((r) => Object.keys(r).length),
      [1_000, 1_000, 500],
    );
    assert.equal(Object.assign({}, ...resumes).chat2499, 2_499);
  } finally {
    socket.close();
  }
});

test("a send refused by a rate limit is resent only once its retryAfter has passed", async () => {
  sendArrivals.length = 0;
  const socket = new ChatSocket(await signedIn(), { minDelayMs: 10, ackTimeoutMs: 200 });
  try {
    await socket.connect();
    const ack = await socket.send({ chatId: "c1" }, "hello", "rl-1");
    assert.equal(ack.clientMsgId, "rl-1");
    assert.equal(sendArrivals.length, 2);
    const gap = (sendArrivals[1] as number) - (sendArrivals[0] as number);
    assert.ok(gap >= 950, `resent ${gap} ms after the refusal`);
  } finally {
    socket.close();
  }
});

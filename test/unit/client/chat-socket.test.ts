/** ChatSocket's resends against a real local ws server whose answers the test scripts. */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { WebSocketServer } from "ws";
import { ChatSocket } from "../../../client/chat-socket.ts";
import { ApiClient } from "../../../client/rest-client.ts";

let server: Server;
let url: string;
/** Arrival times of each send_message frame, by clientMsgId. */
const arrivals = new Map<string, number[]>();
const REFUSALS = 3;

before(async () => {
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.method === "POST" && req.url === "/auth/login") {
      res.end(JSON.stringify({ accessToken: "t", refreshToken: "r", expiresIn: 900, user: { id: "u1" } }));
      return;
    }
    res.statusCode = 404;
    res.end("{}");
  });
  const wss = new WebSocketServer({ server, path: "/ws" });
  wss.on("connection", (ws) => {
    ws.send(JSON.stringify({ type: "ready", userId: "u1", connectionId: "c1" }));
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string; clientMsgId?: string };
      if (frame.type !== "send_message" || !frame.clientMsgId) return;
      const times = arrivals.get(frame.clientMsgId) ?? [];
      times.push(Date.now());
      arrivals.set(frame.clientMsgId, times);
      if (times.length <= REFUSALS) {
        const error = { type: "error", code: "SERVICE_UNAVAILABLE", message: "busy", ref: frame.clientMsgId };
        ws.send(JSON.stringify(error));
        return;
      }
      ws.send(
        JSON.stringify({ type: "ack", clientMsgId: frame.clientMsgId, chatId: "c", messageId: "m", seq: 1 }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test("a message refused as unavailable is resent with the same clientMsgId, backing off each time", async () => {
  const api = new ApiClient(url);
  await api.login({ email: "a@example.test", password: "whatever-pw" });
  const socket = new ChatSocket(api, { minDelayMs: 100, maxDelayMs: 10_000, ackTimeoutMs: 1_000 });
  await socket.connect();
  try {
    const ack = await socket.send({ chatId: "c" }, "hello", "m-1");
    assert.equal(ack.clientMsgId, "m-1");
    const times = arrivals.get("m-1") ?? [];
    assert.equal(times.length, REFUSALS + 1, "sent once, then once per refusal");
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // Backoff 500, 1000, 2000 ms with jitter of at most half: each gap at least half of its step,
    // so the third is at least 1000 ms, which a fixed resend pace of 500 ms would never reach.
    for (const [i, gap] of gaps.entries()) {
      assert.ok(gap >= 250 * 2 ** i - 20, `resend ${i + 1} came ${gap} ms after the refusal before it`);
    }
  } finally {
    socket.close();
  }
});

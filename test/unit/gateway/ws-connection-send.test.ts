/**
 * WsConnection.sendAll over a real socket pair on loopback: several frames reach the client as
 * separate WebSocket messages, in order, from one write to the kernel; all or none past the cap.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { type ConnectionLimits, WsConnection } from "../../../gateway/ws-connection.ts";

const LIMITS: ConnectionLimits = {
  maxBufferedBytes: 64 * 1024,
  heartbeatMs: 60_000,
  rate: { points: 100, duration: 1 },
  typingRate: { points: 10, duration: 1 },
};
const handler = { handle: async () => undefined };

interface Pair {
  server: WsConnection;
  raw: Duplex;
  client: WebSocket;
  received: string[];
}

describe("WsConnection.sendAll", () => {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  let pending: ((pair: { server: WsConnection; raw: Duplex }) => void) | undefined;
  http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const server = new WsConnection(
        ws,
        { id: "u1", sessionId: "s1" },
        Date.now() + 60_000,
        LIMITS,
        handler,
        undefined,
        socket,
      );
      pending?.({ server, raw: socket });
    });
  });
  before(() => new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve)));
  after(() => {
    wss.close();
    http.closeAllConnections();
    return new Promise<void>((resolve) => http.close(() => resolve()));
  });

  async function connect(): Promise<Pair> {
    const { port } = http.address() as AddressInfo;
    const accepted = new Promise<{ server: WsConnection; raw: Duplex }>((resolve) => {
      pending = resolve;
    });
    const client = new WebSocket(`ws://127.0.0.1:${port}/`);
    const received: string[] = [];
    client.on("message", (data) => received.push(String(data)));
    await new Promise((resolve, reject) => client.once("open", resolve).once("error", reject));
    return { ...(await accepted), client, received };
  }

  async function until(check: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(check(), "in time");
  }

  test("frames arrive in order, one WebSocket message each, from one write to the kernel", async () => {
    const p = await connect();
    // Node's stream hands buffered chunks to _writev and a lone chunk to _write.
    const writes: string[] = [];
    const stream = p.raw as unknown as {
      _write: (...a: unknown[]) => unknown;
      _writev: (...a: unknown[]) => unknown;
    };
    const write = stream._write.bind(p.raw);
    const writev = stream._writev.bind(p.raw);
    stream._write = (...a) => {
      writes.push("write");
      return write(...a);
    };
    stream._writev = (...a) => {
      writes.push("writev");
      return writev(...a);
    };
    const frames = ['{"type":"a"}', '{"type":"b","n":1}', '{"type":"c"}'].map((f) => Buffer.from(f));
    assert.equal(p.server.sendAll(frames), true);
    assert.deepEqual(writes, ["writev"], "one writev for the three frames");
    await until(() => p.received.length === 3);
    assert.deepEqual(p.received, ['{"type":"a"}', '{"type":"b","n":1}', '{"type":"c"}']);
    // Frames sent one by one go one write each (ws corks header and payload of a frame together).
    writes.length = 0;
    p.server.sendRaw(Buffer.from('{"type":"d"}'));
    p.server.sendRaw(Buffer.from('{"type":"e"}'));
    assert.deepEqual(writes, ["writev", "writev"]);
    await until(() => p.received.length === 5);
    p.client.close();
  });

  test("frames past the cap on unsent bytes are not written at all, and the socket closes with 1013", async () => {
    const p = await connect();
    const closed = new Promise<number>((resolve) => p.client.once("close", resolve));
    const big = Buffer.from(JSON.stringify({ type: "typing", chatId: "c".repeat(40_000) }));
    assert.equal(p.server.sendAll([big, big]), false);
    assert.equal(await closed, 1013);
    assert.deepEqual(p.received, [], "none of the two");
    assert.equal(p.server.sendAll([big, big]), false, "a closed socket takes nothing");
  });
});

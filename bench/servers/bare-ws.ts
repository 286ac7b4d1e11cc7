/**
 * Baseline of the WebSocket benchmark: a bare `ws` fan-out server speaking the platform's frames,
 * with no bus, no store and no checks beyond membership. The token comes the way the platform takes
 * it (the `bearer, <token>` subprotocol pair, answered `bearer`) and is simply the user id; every
 * socket gets `ready`; `send_message` is answered `ack` (clientMsgId, chatId, messageId, seq) and
 * fanned out as `new_message` with the platform's message fields to every connection of every
 * member, the sender's own included, as the platform does. The groups come from a JSON file the
 * runner writes (`[{id, members}]`).
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { announce, childArgs, stopOnRequest } from "../child.ts";
import { reportMemoryOnSignal } from "../ws/memory.ts";

const { groupsFile, memoryFile } = childArgs<{ groupsFile: string; memoryFile: string }>();
const groups = JSON.parse(await readFile(groupsFile, "utf8")) as { id: string; members: string[] }[];
const members = new Map(groups.map((g) => [g.id, g.members]));
const seqs = new Map<string, number>();
const byUser = new Map<string, Set<WebSocket>>();

interface SendFrame {
  type: string;
  chatId?: string;
  message?: string;
  clientMsgId?: string;
}

const server = http.createServer((_req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 65_536,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has("bearer") ? "bearer" : false),
});

server.on("upgrade", (req, socket, head) => {
  const protocols = String(req.headers["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((p) => p.trim());
  const userId = protocols[0] === "bearer" ? protocols[1] : undefined;
  if (!userId) {
    socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const set = byUser.get(userId) ?? new Set();
    byUser.set(userId, set.add(ws));
    ws.on("close", () => set.delete(ws));
    ws.on("error", () => ws.terminate());
    ws.on("message", (data) => onFrame(ws, userId, String(data)));
    ws.send(JSON.stringify({ type: "ready", userId, connectionId: randomUUID() }));
  });
});

function onFrame(ws: WebSocket, userId: string, text: string): void {
  let frame: SendFrame;
  try {
    frame = JSON.parse(text) as SendFrame;
  } catch {
    ws.send(JSON.stringify({ type: "error", code: "INVALID_JSON", message: "Not JSON" }));
    return;
  }
  const chat = frame.chatId ? members.get(frame.chatId) : undefined;
  if (frame.type !== "send_message" || !chat || !frame.chatId || !chat.includes(userId)) {
    ws.send(
      JSON.stringify({
        type: "error",
        code: "CHAT_FORBIDDEN",
        message: "Not a member",
        ref: frame.clientMsgId,
      }),
    );
    return;
  }
  const seq = (seqs.get(frame.chatId) ?? 0) + 1;
  seqs.set(frame.chatId, seq);
  const message = {
    id: randomUUID(),
    chatId: frame.chatId,
    seq,
    senderId: userId,
    message: frame.message,
    clientMsgId: frame.clientMsgId,
    createdAt: new Date().toISOString(),
  };
  ws.send(
    JSON.stringify({
      type: "ack",
      clientMsgId: frame.clientMsgId,
      chatId: frame.chatId,
      messageId: message.id,
      seq,
    }),
  );
  const fanned = JSON.stringify({ type: "new_message", ...message });
  for (const member of chat) for (const socket of byUser.get(member) ?? []) socket.send(fanned);
}

reportMemoryOnSignal(memoryFile);
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  announce("ready", { url: `http://127.0.0.1:${port}` });
});

stopOnRequest(
  () =>
    new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);

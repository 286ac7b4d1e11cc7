/**
 * The live connection: client/chat-socket.ts (reconnect with backoff, resume from the last seen
 * seq, gap filling, send queue), plus what only a browser knows. When the browser reports the
 * network gone, the socket is closed at once instead of waiting for the heartbeat to notice, so
 * the client library reconnects and resumes as soon as the network is back.
 */
import { ChatSocket, type ChatSocketOptions } from "../../client/chat-socket.ts";
import type { ApiClient } from "../../client/rest-client.ts";

export type ConnectionState = "connecting" | "open" | "closed" | "offline";

/** Reconnect attempts back off up to this, so a restored network is noticed within seconds. */
const MAX_RECONNECT_DELAY_MS = 4_000;

/** The page's open WebSockets. */
const live = new Set<WebSocket>();

/**
 * Closes the open sockets so the client library reconnects at once with the current access token
 * (after a refresh that changed what the token says, such as a verified email address).
 */
export function reconnect(): void {
  for (const ws of live) ws.close(4000, "reconnect");
}

export function connect(
  api: ApiClient,
  handlers: Pick<ChatSocketOptions, "onMessage" | "onFrame" | "onReaction" | "onPinsChanged" | "onRead"> & {
    onState(state: ConnectionState): void;
  },
): ChatSocket {
  class TrackedWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      live.add(this);
      this.addEventListener("close", () => live.delete(this));
    }
  }
  const socket = new ChatSocket(api, {
    ...handlers,
    onStateChange: (state) => handlers.onState(navigator.onLine ? state : "offline"),
    maxDelayMs: MAX_RECONNECT_DELAY_MS,
    WebSocketImpl: TrackedWebSocket,
  });
  addEventListener("offline", () => {
    handlers.onState("offline");
    for (const ws of live) ws.close(4000, "offline");
  });
  addEventListener("online", () => handlers.onState(socket.isOpen ? "open" : "connecting"));
  return socket;
}

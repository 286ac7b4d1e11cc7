/**
 * The benchmark's clients: one socket per seeded user, all in this process, opened at a bounded
 * concurrency: a ChatSocket (client/chat-socket.ts) for the platform and the bare target, which
 * speak the platform's frames, or a CentrifugoSocket (centrifugo-client.ts) for Centrifugo. Each
 * socket hands every delivered message to a shared listener with the receiving user's id.
 */
import { performance } from "node:perf_hooks";
import WS from "ws";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import { forEachLimit, withTimeout } from "../../lib/concurrency.ts";
import type { MessageView } from "../../lib/contracts.ts";
import { CentrifugoSocket } from "./centrifugo-client.ts";

export interface BenchUser {
  id: string;
  /** What the socket sends as its bearer token: an access token, or the user id for bare ws. */
  token: string;
  chatId: string;
}

/** An ApiClient signed in with a token minted at seeding (the clients never refresh it). */
class SeededApi extends ApiClient {
  private readonly token: string;

  constructor(baseUrl: string, token: string) {
    super(baseUrl);
    this.token = token;
  }

  override get accessToken(): string {
    return this.token;
  }
}

export type SocketImpl = "ws" | "undici";

/** What the server speaks: the platform's frames (the platform and the bare target) or Centrifugo's. */
export type Protocol = "platform" | "centrifugo";

/** What drive.ts uses of a socket; ChatSocket and CentrifugoSocket both are one. */
export interface BenchSocket {
  connect(): Promise<void>;
  send(target: { chatId: string }, message: string, clientMsgId: string): Promise<unknown>;
  close(): void;
}

export interface Client {
  user: BenchUser;
  socket: BenchSocket;
  /** Which of the gateways it connected to (an index into connectAll's urls). */
  gateway: number;
}

export interface Connected {
  clients: Client[];
  /** Upgrade request to `ready`, per socket, in ms. */
  setupMs: number[];
  failed: number;
  firstError: string | undefined;
  seconds: number;
  /** Sockets that closed after they were ready (each reconnects by itself). */
  closes(): number;
}

export type Receive = (userId: string, message: Pick<MessageView, "clientMsgId" | "senderId">) => void;

const CONNECT_TIMEOUT_MS = 30_000;

export async function connectAll(options: {
  /** User i connects to urls[i % urls.length]. */
  urls: string[];
  users: BenchUser[];
  concurrency: number;
  /** The WebSocket under ChatSocket; CentrifugoSocket is always on `ws`. */
  impl: SocketImpl;
  protocol: Protocol;
  onMessage: Receive;
}): Promise<Connected> {
  const { urls, users, concurrency, impl, protocol, onMessage } = options;
  const clients: Client[] = [];
  const setupMs: number[] = [];
  let failed = 0;
  let closes = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const openOne = async (user: BenchUser, index: number) => {
    let ready = false;
    const gateway = index % urls.length;
    const url = urls[gateway] as string;
    const onStateChange = (state: string) => {
      if (state === "closed" && ready) closes += 1;
    };
    const receive = (m: Pick<MessageView, "clientMsgId" | "senderId">) => onMessage(user.id, m);
    const socket: BenchSocket =
      protocol === "centrifugo"
        ? new CentrifugoSocket(url, user.token, user.id, user.chatId, { onMessage: receive, onStateChange })
        : new ChatSocket(new SeededApi(url, user.token), {
            WebSocketImpl: impl === "ws" ? (WS as unknown as typeof WebSocket) : undefined,
            onMessage: receive,
            onStateChange,
          });
    const t0 = performance.now();
    try {
      await withTimeout(socket.connect(), CONNECT_TIMEOUT_MS, "ready");
      ready = true;
      setupMs.push(performance.now() - t0);
      clients.push({ user, socket, gateway });
    } catch (err) {
      failed += 1;
      firstError ??= err instanceof Error ? err.message : String(err);
      socket.close();
    }
  };
  await forEachLimit(users, concurrency, openOne);
  return {
    clients,
    setupMs,
    failed,
    firstError,
    seconds: (performance.now() - started) / 1000,
    closes: () => closes,
  };
}

export function closeAll(clients: Client[]): void {
  for (const c of clients) c.socket.close();
}

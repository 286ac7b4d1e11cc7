/**
 * The benchmark's clients: one ChatSocket (client/chat-socket.ts) per seeded user, all in this
 * process, opened at a bounded concurrency. Each socket hands every new_message to a shared
 * listener with the receiving user's id and the time it arrived.
 */
import { performance } from "node:perf_hooks";
import WS from "ws";
import { ChatSocket } from "../../client/chat-socket.ts";
import { ApiClient } from "../../client/rest-client.ts";
import type { MessageView } from "../../lib/contracts.ts";

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

export interface Client {
  user: BenchUser;
  socket: ChatSocket;
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

export type Receive = (userId: string, message: MessageView) => void;

const CONNECT_TIMEOUT_MS = 30_000;

export async function connectAll(options: {
  /** User i connects to urls[i % urls.length]. */
  urls: string[];
  users: BenchUser[];
  concurrency: number;
  impl: SocketImpl;
  onMessage: Receive;
}): Promise<Connected> {
  const { urls, users, concurrency, impl, onMessage } = options;
  const clients: Client[] = [];
  const setupMs: number[] = [];
  let failed = 0;
  let closes = 0;
  let firstError: string | undefined;
  const started = performance.now();
  let next = 0;
  const openOne = async (user: BenchUser, index: number) => {
    let ready = false;
    const gateway = index % urls.length;
    const socket = new ChatSocket(new SeededApi(urls[gateway] as string, user.token), {
      WebSocketImpl: impl === "ws" ? (WS as unknown as typeof WebSocket) : undefined,
      onMessage: (m) => onMessage(user.id, m),
      onStateChange: (state) => {
        if (state === "closed" && ready) closes += 1;
      },
    });
    const t0 = performance.now();
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("no ready within 30 s")), CONNECT_TIMEOUT_MS).unref(),
    );
    try {
      await Promise.race([socket.connect(), timeout]);
      ready = true;
      setupMs.push(performance.now() - t0);
      clients.push({ user, socket, gateway });
    } catch (err) {
      failed += 1;
      firstError ??= err instanceof Error ? err.message : String(err);
      socket.close();
    }
  };
  const worker = async () => {
    while (next < users.length) {
      const index = next++;
      await openOne(users[index] as BenchUser, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, users.length) }, worker));
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

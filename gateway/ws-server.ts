/**
 * The WebSocket endpoint `GET /ws`: authentication during the HTTP upgrade (401 before upgrading),
 * the Origin check, the cap on each user's connections in the cluster, the connections of each
 * user on this node, and the frame handlers that turn client frames into chat calls. Delivery from
 * the chat service arrives via deliver().
 */
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { PlatformConfig } from "../lib/config.ts";
import type { AuthUser, CallMeta, ResumeAnswer, ServerFrame } from "../lib/contracts.ts";
import { metricsInScope, type PlatformMetrics } from "../lib/metrics.ts";
import type { AccessTokenVerifier } from "./access-tokens.ts";
import { toHttpError } from "./error-mapping.ts";
import { FrameAdmission } from "./frame-admission.ts";
import { CLOSE, type FrameHandler, WsConnection } from "./ws-connection.ts";
import { type ConnectionCounter, connectionCounter } from "./ws-connection-cap.ts";
import type { ClientFrame } from "./ws-frames.ts";
import { originOf, publicOriginResolver } from "./ws-origin.ts";

const PATH = "/ws";
/** Limit names in social_rate_limit_rejections_total. */
const WS_CONNECTIONS_LIMIT = Object.freeze({ limit: "ws-connections" });
/** A failing Redis is reported at most this often. */
const COUNTER_WARN_INTERVAL_MS = 10_000;

/** The bus calls the WebSocket needs, with the caller's identity passed as meta. */
export interface ChatPort {
  call(action: string, params: Record<string, unknown>, meta: CallMeta): Promise<unknown>;
  userOnline(userId: string): void;
  userOffline(userId: string): void;
}

export interface WsServerOptions {
  verifier: AccessTokenVerifier;
  chat: ChatPort;
  /** The WebSocket section of the node's config (WS_*, and where connections are counted). */
  limits: PlatformConfig["ws"];
  /**
   * Whether an Origin is allowed besides the gateway's own origin, which this server compares
   * itself, scheme and port included (ws-origin.ts); it is called with no host.
   */
  isOriginAllowed(origin: string | undefined, host: string | undefined): boolean;
  isReady(): Promise<boolean>;
  /** Where a frame that failed for an unexpected reason (answered INTERNAL_ERROR) is logged. */
  logger?:
    | {
        error(fields: Record<string, unknown>, message: string): void;
        warn(fields: Record<string, unknown>, message: string): void;
      }
    | undefined;
  /** Where connections, frames, closes and deliveries are counted; by default the metrics of the
   * node whose gateway service builds this server in its started(). */
  metrics?: PlatformMetrics | undefined;
}

export class WsServer implements FrameHandler {
  private readonly o: WsServerOptions;
  private readonly wss: WebSocketServer;
  private readonly metrics: PlatformMetrics | undefined;
  private readonly byUser = new Map<string, Set<WsConnection>>();
  readonly admission: FrameAdmission;
  private readonly connections: ConnectionCounter;
  private readonly publicOrigin: (req: IncomingMessage) => string | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: WsServerOptions) {
    this.o = options;
    this.metrics = options.metrics ?? metricsInScope();
    this.metrics?.wsConnections.set(0);
    this.admission = new FrameAdmission(options.limits.maxFramesInProgress, (paused, count) => {
      if (paused > 0)
        options.logger?.warn(
          { framesInProgress: count },
          "at the bound of frames in progress: pausing reads",
        );
      else
        options.logger?.warn(
          { connections: count },
          "frames in progress back under the bound: reading again",
        );
    });
    let warnedAt = 0;
    this.connections = connectionCounter({
      max: options.limits.maxConnectionsPerUser,
      redisUrl: options.limits.redisUrl,
      redisClusterNodes: options.limits.redisClusterNodes,
      namespace: options.limits.namespace,
      onError: (err) => {
        if (Date.now() - warnedAt < COUNTER_WARN_INTERVAL_MS) return;
        warnedAt = Date.now();
        options.logger?.warn(
          { reason: err.message },
          "counting connections in Redis failed; this gateway counts its own meanwhile",
        );
      },
    });
    this.publicOrigin = publicOriginResolver(options.limits.trustedProxies);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.limits.maxPayloadBytes,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has("bearer") ? "bearer" : false),
    });
  }

  attach(server: Server): void {
    server.on(
      "upgrade",
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head),
    );
    this.heartbeatTimer = setInterval(() => {
      for (const set of this.byUser.values()) for (const c of set) c.heartbeat();
    }, this.o.limits.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  connectedUsers(): string[] {
    return [...this.byUser.keys()];
  }

  /**
   * Sends one frame to every connection of the given users held here. A new message also counts
   * as delivered once per socket written, with its latency from createdAt to the write.
   */
  deliver(userIds: string[], frame: ServerFrame): number {
    return this.deliverMany([{ userIds, frame }]);
  }

  /**
   * Sends each frame to every connection of its users held here, in order. Each frame is encoded
   * once for all its sockets (a string would be measured and encoded again per socket), and each
   * socket gets its frames of the call in one write to the kernel: a new message and its sender's
   * read mark go to the same members, and one system call per frame was the largest cost of the
   * fan-out (docs/benchmarks.md, "Frames of one call in one write").
   */
  deliverMany(deliveries: readonly { userIds: string[]; frame: ServerFrame }[]): number {
    const data = deliveries.map((d) => Buffer.from(JSON.stringify(d.frame)));
    // Each connection's frames, as indexes into deliveries, in order.
    const frames = new Map<WsConnection, number[]>();
    let delivered = 0;
    deliveries.forEach((d, index) => {
      for (const userId of d.userIds) {
        for (const connection of this.byUser.get(userId) ?? []) {
          const list = frames.get(connection);
          if (list) list.push(index);
          else frames.set(connection, [index]);
          delivered += 1;
        }
      }
    });
    const written = new Array<number>(deliveries.length).fill(0);
    for (const [connection, indexes] of frames) {
      if (!connection.sendAll(indexes.map((i) => data[i] as Buffer))) continue;
      for (const i of indexes) written[i] = (written[i] ?? 0) + 1;
    }
    if (this.metrics) {
      deliveries.forEach((d, i) => {
        const n = written[i] ?? 0;
        if (n === 0 || d.frame.type !== "new_message") return;
        const latency = Math.max(0, Date.now() - Date.parse(d.frame.createdAt)) / 1000;
        this.metrics?.chatDelivered.increment(undefined, n);
        for (let k = 0; k < n; k += 1) this.metrics?.chatDeliveryLatency.observe(latency);
      });
    }
    return delivered;
  }

  /** Closes, with 4001, every socket of the revoked sessions. */
  closeSessions(sessionIds: string[]): void {
    const revoked = new Set(sessionIds);
    for (const set of this.byUser.values()) {
      for (const c of set) if (revoked.has(c.user.sessionId)) c.close(CLOSE.TOKEN, "Session revoked");
    }
  }

  /**
   * Graceful shutdown: refuse new upgrades (503), finish the frames in flight, then close every
   * socket with 1001. Calling it again waits for the same shutdown.
   */
  shutdown(timeoutMs = 5_000): Promise<void> {
    this.stopping ??= this.stop(timeoutMs);
    return this.stopping;
  }

  private async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.heartbeatTimer);
    const all = [...this.byUser.values()].flatMap((set) => [...set]);
    for (const c of all) c.closing = true;
    await Promise.race([Promise.all(all.map((c) => c.drained())), delay(timeoutMs)]);
    for (const c of all) c.close(CLOSE.GOING_AWAY, "Server going away");
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await this.connections.stop();
  }

  async handle(connection: WsConnection, frame: ClientFrame): Promise<void> {
    const meta: CallMeta = { user: connection.user };
    switch (frame.type) {
      case "send_message": {
        const ref = frame.clientMsgId;
        try {
          const message = (await this.o.chat.call(
            frame.chatId ? "chat.send" : "chat.sendTo",
            {
              ...(frame.chatId ? { id: frame.chatId } : { recipientId: frame.recipientId }),
              message: frame.message,
              clientMsgId: frame.clientMsgId,
              ...(frame.replyTo !== undefined ? { replyTo: frame.replyTo } : {}),
              ...(frame.attachmentIds !== undefined ? { attachmentIds: frame.attachmentIds } : {}),
            },
            meta,
          )) as { id: string; chatId: string; seq: number };
          connection.send({
            type: "ack",
            clientMsgId: ref,
            chatId: message.chatId,
            messageId: message.id,
            seq: message.seq,
          });
        } catch (err) {
          this.fail(connection, err, ref);
        }
        return;
      }
      case "resume":
        await this.resume(connection, frame.chats);
        return;
      case "typing":
        if (!connection.takeTypingToken()) return;
        await this.o.chat
          .call("chat.typing", { id: frame.chatId }, meta)
          .catch((err) => this.fail(connection, err, "typing"));
        return;
      case "read":
        await this.o.chat
          .call("chat.read", { id: frame.chatId, seq: frame.seq }, meta)
          .catch((err) => this.fail(connection, err, "read"));
        return;
      case "auth":
        await this.reauthenticate(connection, frame.token);
        return;
    }
  }

  /**
   * Replays what the client missed, at most WS_RESUME_MAX_MESSAGES per chat: `chat.resume` looks at
   * all the listed chats in one call, and answers at most a page of messages at a time (the rest
   * comes with the next call). A chat with more gets `resume_truncated` naming the seqs to page from
   * the history; ids that are not the caller's chats get one error frame naming them all. Frames
   * are written as the client reads them (whenWritable), never past the slow-consumer cap.
   */
  private async resume(connection: WsConnection, chats: Record<string, number>): Promise<void> {
    const limit = this.o.limits.resumeMaxMessages;
    let entries = Object.entries(chats).map(([id, after]) => ({ id, after, limit }));
    while (entries.length > 0) {
      if (!(await connection.whenWritable())) return;
      let answer: ResumeAnswer;
      try {
        answer = (await this.o.chat.call(
          "chat.resume",
          { chats: entries },
          { user: connection.user },
        )) as ResumeAnswer;
      } catch (err) {
        this.fail(connection, err, "resume");
        return;
      }
      if (answer.forbidden.length > 0) {
        connection.error("CHAT_FORBIDDEN", "Not a member of these chats", "resume", {
          chatIds: answer.forbidden,
        });
      }
      for (const m of answer.messages) {
        if (!(await connection.whenWritable())) return;
        connection.send({ type: m.deleted ? "message_deleted" : "new_message", ...m });
      }
      for (const t of answer.truncated) connection.send({ type: "resume_truncated", ...t });
      entries = answer.next;
    }
  }

  private async reauthenticate(connection: WsConnection, token: string): Promise<void> {
    try {
      const { user, expiresAt } = await this.o.verifier.verifyWithExpiry(token);
      if (user.id !== connection.user.id || user.sessionId !== connection.user.sessionId) {
        connection.error("UNAUTHORIZED", "The token belongs to another session", "auth");
        return;
      }
      connection.setExpiry(expiresAt);
      connection.send({ type: "ready", userId: user.id, connectionId: connection.id });
    } catch (err) {
      this.fail(connection, err, "auth");
    }
  }

  private fail(connection: WsConnection, err: unknown, ref: string): void {
    const { status, headers, body } = toHttpError(err);
    if (status === 500) this.o.logger?.error({ err, frame: ref, userId: connection.user.id }, "frame failed");
    // A rate limit tells when to try again, as Retry-After does over REST.
    const retryAfter = status === 429 ? Number(headers["Retry-After"]) : Number.NaN;
    connection.error(
      body.error.code,
      body.error.message,
      ref,
      Number.isFinite(retryAfter) ? { retryAfter } : undefined,
    );
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== PATH) return reject(socket, 404, "Not Found");
    if (this.stopping) return reject(socket, 503, "Service Unavailable", { "Retry-After": "1" });
    if (!(await this.o.isReady())) return reject(socket, 503, "Service Unavailable", { "Retry-After": "1" });
    const token = tokenOf(req, url);
    let auth: { user: AuthUser; expiresAt: number };
    try {
      if (!token) throw new Error("no token");
      auth = await this.o.verifier.verifyWithExpiry(token);
    } catch {
      return reject(socket, 401, "Unauthorized", { "WWW-Authenticate": "Bearer" });
    }
    if (this.stopping) return reject(socket, 503, "Service Unavailable", { "Retry-After": "1" });
    const userId = auth.user.id;
    const originAllowed = this.originAllowed(req);
    const admitted = originAllowed && (await this.connections.acquire(userId));
    if (this.stopping || socket.destroyed) {
      if (admitted) this.connections.release(userId);
      return reject(socket, 503, "Service Unavailable", { "Retry-After": "1" });
    }
    // The place taken is given back when the socket closes, upgraded or not.
    let upgraded = false;
    if (admitted)
      socket.once("close", () => {
        if (!upgraded) this.connections.release(userId);
      });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      const metrics = this.metrics;
      if (metrics) ws.once("close", (code: number) => metrics.wsClosed(code));
      if (!originAllowed) {
        ws.close(CLOSE.POLICY, "Origin not allowed");
        return;
      }
      if (!admitted) {
        metrics?.rateLimitRejections.increment(WS_CONNECTIONS_LIMIT);
        ws.close(CLOSE.TOO_MANY_CONNECTIONS, "Too many connections for this user");
        return;
      }
      const connection = new WsConnection(
        ws,
        auth.user,
        auth.expiresAt,
        this.o.limits,
        this,
        metrics,
        socket,
      );
      this.add(connection);
      metrics?.wsConnections.increment();
      ws.on("close", () => {
        metrics?.wsConnections.decrement();
        this.remove(connection);
        this.connections.release(userId);
      });
      ws.on("error", () => ws.terminate());
      connection.send({ type: "ready", userId: auth.user.id, connectionId: connection.id });
    });
  }

  /** Clients that send no Origin (not browsers) are allowed; a browser's must be this gateway's own or listed. */
  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    const own = this.publicOrigin(req);
    if (own !== undefined && originOf(origin) === own) return true;
    return this.o.isOriginAllowed(origin, undefined);
  }

  private add(connection: WsConnection): void {
    const set = this.byUser.get(connection.user.id);
    if (set) {
      set.add(connection);
      return;
    }
    this.byUser.set(connection.user.id, new Set([connection]));
    this.o.chat.userOnline(connection.user.id);
  }

  private remove(connection: WsConnection): void {
    this.admission.forget(connection);
    const set = this.byUser.get(connection.user.id);
    if (!set?.delete(connection) || set.size > 0) return;
    this.byUser.delete(connection.user.id);
    this.o.chat.userOffline(connection.user.id);
  }
}

function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  const bearer = typeof header === "string" ? /^Bearer ([^\s]+)$/i.exec(header)?.[1] : undefined;
  if (bearer) return bearer;
  const protocols = String(req.headers["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((p) => p.trim());
  if (protocols[0] === "bearer" && protocols[1]) return protocols[1];
  return url.searchParams.get("access_token") ?? undefined;
}

function reject(socket: Duplex, status: number, text: string, headers: Record<string, string> = {}): void {
  const lines = [`HTTP/1.1 ${status} ${text}`, "Connection: close", "Content-Length: 0"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.end(`${lines.join("\r\n")}\r\n\r\n`);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

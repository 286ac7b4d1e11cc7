/**
 * One WebSocket client: frames handled one at a time in arrival order, a heartbeat, per-connection
 * rate limits, a cap on unsent bytes, and the access token's expiry enforced while it stays open.
 */
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { AuthUser, ServerFrame } from "../lib/contracts.ts";
import type { PlatformMetrics } from "../lib/metrics.ts";
import type { FrameAdmission, Pausable } from "./frame-admission.ts";
import { TokenBucket } from "./token-bucket.ts";
import { type ClientFrame, type FrameError, parseFrame } from "./ws-frames.ts";

export const CLOSE = {
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  TRY_AGAIN_LATER: 1013,
  TOKEN: 4001,
  RATE_LIMITED: 4008,
  /** The user already has WS_MAX_CONNECTIONS_PER_USER sockets open in the cluster. */
  TOO_MANY_CONNECTIONS: 4029,
} as const;

export interface ConnectionLimits {
  maxBufferedBytes: number;
  heartbeatMs: number;
  rate: { points: number; duration: number };
  typingRate: { points: number; duration: number };
}

export interface FrameHandler {
  handle(connection: WsConnection, frame: ClientFrame): Promise<void>;
  /** Bounds the frames of all connections handled at once (frame-admission.ts). */
  readonly admission?: FrameAdmission | undefined;
}

/** How often a writer waiting for the socket's unsent bytes to go down looks again. */
const DRAIN_POLL_MS = 20;

/** Frames beyond the rate within one window that mean a flood, not a burst. */
const FLOOD_FACTOR = 2;

/** Limit names in social_rate_limit_rejections_total. */
const WS_FRAMES_LIMIT = Object.freeze({ limit: "ws-frames" });
const WS_TYPING_LIMIT = Object.freeze({ limit: "ws-typing" });

export class WsConnection implements Pausable {
  readonly id = randomUUID();
  readonly user: AuthUser;
  private readonly socket: WebSocket;
  /** The upgraded TCP socket under `socket`: corked while several frames are written. */
  private readonly raw: Duplex | undefined;
  private readonly limits: ConnectionLimits;
  private readonly handler: FrameHandler;
  private readonly metrics: PlatformMetrics | undefined;
  private readonly frames: TokenBucket;
  private readonly typing: TokenBucket;
  private queue: Promise<void> = Promise.resolve();
  private alive = true;
  private refused = 0;
  private refusedSince = Date.now();
  private expiryTimer: NodeJS.Timeout | undefined;
  closing = false;

  constructor(
    socket: WebSocket,
    user: AuthUser,
    expiresAt: number,
    limits: ConnectionLimits,
    handler: FrameHandler,
    metrics?: PlatformMetrics,
    raw?: Duplex,
  ) {
    this.socket = socket;
    this.raw = raw;
    this.user = user;
    this.limits = limits;
    this.handler = handler;
    this.metrics = metrics;
    this.frames = new TokenBucket(limits.rate.points, limits.rate.duration);
    this.typing = new TokenBucket(limits.typingRate.points, limits.typingRate.duration);
    this.setExpiry(expiresAt);
    socket.on("pong", () => {
      this.alive = true;
    });
    socket.on("message", (data, isBinary) => this.onMessage(data as Buffer, isBinary));
  }

  get open(): boolean {
    return this.socket.readyState === this.socket.OPEN && !this.closing;
  }

  /**
   * Called by the server's heartbeat tick: a socket that missed the last ping is dropped. One whose
   * reading is paused cannot have read its pong, and is judged once it is read again.
   */
  heartbeat(): void {
    if (this.socket.isPaused) return;
    if (!this.alive) {
      this.socket.terminate();
      return;
    }
    this.alive = false;
    this.socket.ping();
  }

  /** A fresh token of the same user and session extends the connection's life. */
  setExpiry(expiresAt: number): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(
      () => this.close(CLOSE.TOKEN, "Token expired"),
      Math.max(0, expiresAt - Date.now()),
    );
    this.expiryTimer.unref();
  }

  send(frame: ServerFrame | Record<string, unknown>): void {
    this.sendRaw(JSON.stringify(frame));
  }

  /**
   * Writes one text frame (a string, or its UTF-8 bytes); false when the socket is gone or was just
   * closed as a slow consumer.
   */
  sendRaw(data: string | Buffer): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    if (this.socket.bufferedAmount + data.length > this.limits.maxBufferedBytes) {
      this.close(CLOSE.TRY_AGAIN_LATER, "Slow consumer");
      return false;
    }
    this.socket.send(data, { binary: false });
    this.metrics?.wsFramesSent.increment();
    return true;
  }

  /**
   * Writes text frames in one write to the kernel (the TCP socket corked while ws frames them, so
   * Node hands them to one writev); all or none: false when the socket is gone or was just closed
   * as a slow consumer.
   */
  sendAll(frames: readonly Buffer[]): boolean {
    if (frames.length === 1) return this.sendRaw(frames[0] as Buffer);
    if (this.socket.readyState !== this.socket.OPEN) return false;
    let bytes = 0;
    for (const f of frames) bytes += f.length;
    if (this.socket.bufferedAmount + bytes > this.limits.maxBufferedBytes) {
      this.close(CLOSE.TRY_AGAIN_LATER, "Slow consumer");
      return false;
    }
    this.raw?.cork();
    try {
      for (const f of frames) this.socket.send(f, { binary: false });
    } finally {
      this.raw?.uncork();
    }
    this.metrics?.wsFramesSent.increment(undefined, frames.length);
    return true;
  }

  /** An error frame; `extra` adds fields (such as `retryAfter`) after the standard ones. */
  error(code: string, message: string, ref?: string, extra?: Record<string, unknown>): void {
    this.send({ type: "error", code, message, ...(ref === undefined ? {} : { ref }), ...extra });
  }

  /**
   * Resolves once the socket holds at most half of WS_MAX_BUFFERED_BYTES unsent, so a writer of
   * many frames (a resume) goes at the client's pace instead of closing it as a slow consumer:
   * true then, false if the socket closed meanwhile. A client that stops reading stops answering
   * pings too, and the heartbeat ends the wait.
   */
  async whenWritable(): Promise<boolean> {
    while (this.open && this.socket.bufferedAmount > this.limits.maxBufferedBytes / 2) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    return this.open;
  }

  close(code: number, reason: string): void {
    this.closing = true;
    clearTimeout(this.expiryTimer);
    // The client's closing handshake must be read; frames read from now on are dropped.
    if (this.socket.isPaused) this.socket.resume();
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
      const hard = setTimeout(() => this.socket.terminate(), 5_000);
      hard.unref();
    }
  }

  /** Stops reading the client's frames (the gateway is at its bound of frames in progress). */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.alive = true;
    this.socket.resume();
  }

  /** Resolves once every frame received so far has been handled (for a graceful shutdown). */
  drained(): Promise<void> {
    return this.queue;
  }

  takeTypingToken(): boolean {
    if (this.typing.take()) return true;
    this.metrics?.rateLimitRejections.increment(WS_TYPING_LIMIT);
    return false;
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.metrics?.wsFramesReceived.increment();
    if (this.closing) return;
    if (!this.frames.take()) {
      this.metrics?.rateLimitRejections.increment(WS_FRAMES_LIMIT);
      this.onRefused();
      return;
    }
    if (isBinary) {
      this.error("INVALID_FRAME", "Frames are JSON text");
      return;
    }
    let frame: ClientFrame;
    try {
      frame = parseFrame(data.toString("utf8"));
    } catch (err) {
      const e = err as FrameError;
      this.error(e.code ?? "INVALID_FRAME", e.message, e.ref);
      return;
    }
    const admission = this.handler.admission;
    admission?.admit(this);
    this.queue = this.queue.then(() =>
      this.handler
        .handle(this, frame)
        .catch((err: Error) =>
          this.error("INTERNAL_ERROR", `The frame failed: ${err.message}`, frameRef(frame)),
        )
        .finally(() => admission?.done()),
    );
  }

  private onRefused(): void {
    const now = Date.now();
    if (now - this.refusedSince > this.limits.rate.duration * 1000) {
      this.refused = 0;
      this.refusedSince = now;
    }
    this.refused += 1;
    if (this.refused > this.limits.rate.points * (FLOOD_FACTOR - 1)) {
      this.close(CLOSE.RATE_LIMITED, "Rate limited");
      return;
    }
    this.error("RATE_LIMITED", "Too many frames; slow down");
  }
}

function frameRef(frame: ClientFrame): string {
  return frame.type === "send_message" ? frame.clientMsgId : frame.type;
}

/**
 * The platform's WebSocket client: reconnects with exponential backoff and jitter, resumes every
 * known chat from its last seen `seq` (paging from the REST history what the server does not
 * replay: `resume_truncated`), fills gaps through the history, drops duplicates by `seq`, and
 * keeps a send queue that resends with the same clientMsgId until each message is acknowledged.
 * It marks messages from senders the caller blocks (`setBlocked`) and hands reactions, pin changes
 * and read marks to listeners of their own. It runs on the standard WebSocket API (browsers and
 * Node 22+).
 */
import { type BlockedIds, markBlockedSender } from "./blocking.ts";
import type { ApiClient } from "./rest-client.ts";
import type {
  ClientMessage,
  MessageView,
  PinsChangedFrame,
  ReactionFrame,
  ReadFrame,
  SendOptions,
} from "./types.ts";

export interface Ack {
  clientMsgId: string;
  chatId: string;
  messageId: string;
  seq: number;
}

type Frame = { type: string } & Record<string, unknown>;

export interface ChatSocketOptions {
  /** ws:// or wss:// base of the gateway; defaults to the API base with the ws scheme. */
  url?: string;
  /**
   * Called once per message, in seq order per chat, with duplicates removed; `blockedSender` is
   * true on those whose sender the caller blocks.
   */
  onMessage?(message: ClientMessage): void;
  /**
   * Every other server frame (typing, read, reaction, pins_changed, presence, message_edited, ...),
   * including those that also go to the listeners below; message_edited and message_deleted carry
   * `blockedSender` as onMessage's messages do.
   */
  onFrame?(frame: Frame): void;
  /** A reaction was added or removed (the reactor's own included). */
  onReaction?(frame: ReactionFrame): void;
  /** A pin of a chat was added or removed. */
  onPinsChanged?(frame: PinsChangedFrame): void;
  /** A member's read mark moved. */
  onRead?(frame: ReadFrame): void;
  /** Users the caller blocks, to start with (see setBlocked). */
  blocked?: BlockedIds;
  onStateChange?(state: "connecting" | "open" | "closed"): void;
  /** Backoff bounds in ms. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Resend an unacknowledged message after this long on an open socket. */
  ackTimeoutMs?: number;
  /** Gives the socket implementation (tests); defaults to the global WebSocket. */
  WebSocketImpl?: typeof WebSocket;
}

interface Pending {
  frame: Frame;
  resolve(ack: Ack): void;
  reject(err: Error): void;
  sentAt: number;
  /** Retryable errors answered to this message so far: its resend backs off further each time. */
  refusals: number;
}

const RETRYABLE = new Set(["SERVICE_UNAVAILABLE", "RATE_LIMITED", "INTERNAL_ERROR"]);
const NO_RECONNECT = new Set([1008]);
/** How long an early message waits for the ones before it before they are fetched. */
const GAP_WAIT_MS = 2_000;
/** Chats in one resume frame at most (the server refuses more). */
const RESUME_CHATS_PER_FRAME = 1_000;

export class ChatSocket {
  private readonly api: ApiClient;
  private readonly o: Required<Pick<ChatSocketOptions, "minDelayMs" | "maxDelayMs" | "ackTimeoutMs">> &
    ChatSocketOptions;
  private socket: WebSocket | undefined;
  private attempts = 0;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private ackTimer: ReturnType<typeof setInterval> | undefined;
  private resumeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resumes refused as unavailable since the socket opened: the next one backs off further. */
  private resumeRefusals = 0;
  private readonly lastSeq = new Map<string, number>();
  private readonly filling = new Map<string, Promise<boolean>>();
  private readonly early = new Map<string, Map<number, MessageView>>();
  private readonly gapTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly pending = new Map<string, Pending>();
  private openWaiters: (() => void)[] = [];
  private blocked: ReadonlySet<string>;
  userId: string | undefined;

  constructor(api: ApiClient, options: ChatSocketOptions = {}) {
    this.api = api;
    this.o = { minDelayMs: 200, maxDelayMs: 10_000, ackTimeoutMs: 10_000, ...options };
    this.blocked = new Set(options.blocked ?? []);
  }

  /**
   * The users the caller blocks (e.g. `(await api.blocks()).map((u) => u.id)`, again after
   * block/unblock): messages handed out from now on whose sender is one of them carry
   * `blockedSender: true`.
   */
  setBlocked(ids: BlockedIds): void {
    this.blocked = new Set(ids);
  }

  get isOpen(): boolean {
    return this.socket?.readyState === 1;
  }

  /** Connects and resolves once the server said `ready`. */
  connect(): Promise<void> {
    this.stopped = false;
    this.open();
    this.ackTimer ??= setInterval(() => this.resendStale(), Math.max(250, this.o.ackTimeoutMs / 4));
    return this.whenOpen();
  }

  whenOpen(): Promise<void> {
    return this.isOpen && this.userId
      ? Promise.resolve()
      : new Promise((resolve) => this.openWaiters.push(resolve));
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.resumeTimer);
    clearInterval(this.ackTimer);
    this.ackTimer = undefined;
    for (const timer of this.gapTimers.values()) clearTimeout(timer);
    this.gapTimers.clear();
    this.socket?.close(1000, "bye");
    for (const p of this.pending.values()) p.reject(new Error("The socket was closed"));
    this.pending.clear();
  }

  /** Marks chats as known from a seq on, so resume starts there. */
  track(chatId: string, lastSeenSeq: number): void {
    if ((this.lastSeq.get(chatId) ?? -1) < lastSeenSeq) this.lastSeq.set(chatId, lastSeenSeq);
  }

  lastSeen(chatId: string): number | undefined {
    return this.lastSeq.get(chatId);
  }

  /** Stops following a chat: resume no longer names it (the server said it is not the user's). */
  untrack(chatId: string): void {
    this.lastSeq.delete(chatId);
    this.early.delete(chatId);
    clearTimeout(this.gapTimers.get(chatId));
    this.gapTimers.delete(chatId);
  }

  /**
   * Sends a message (a reply with `replyTo`, with files by `attachmentIds` from ApiClient.upload:
   * then the text may be empty); resolves its ack, resending with the same clientMsgId
   * across reconnects. The third argument is the clientMsgId itself or the send options.
   */
  send(
    target: { chatId: string } | { recipientId: string },
    message: string,
    options: string | SendOptions = {},
  ): Promise<Ack> {
    const {
      clientMsgId = randomId(),
      replyTo,
      attachmentIds,
    }: SendOptions = typeof options === "string" ? { clientMsgId: options } : options;
    const existing = this.pending.get(clientMsgId);
    if (existing) return new Promise((resolve, reject) => this.chain(existing, resolve, reject));
    return new Promise<Ack>((resolve, reject) => {
      const frame: Frame = { type: "send_message", ...target, message, clientMsgId };
      if (replyTo !== undefined) frame.replyTo = replyTo;
      if (attachmentIds !== undefined) frame.attachmentIds = attachmentIds;
      const entry: Pending = { frame, resolve, reject, sentAt: 0, refusals: 0 };
      this.pending.set(clientMsgId, entry);
      this.transmit(entry);
    });
  }

  /** Fetches, for every tracked chat, whatever came after the last seen seq (e.g. when idle). */
  async catchUp(): Promise<void> {
    for (const chatId of [...this.lastSeq.keys()]) {
      await this.filling.get(chatId);
      if (!(await this.fillWithRetry(chatId, this.lastSeq.get(chatId) ?? 0, Number.MAX_SAFE_INTEGER))) {
        throw new Error(`Could not catch up chat ${chatId}`);
      }
    }
  }

  typing(chatId: string): void {
    this.sendFrame({ type: "typing", chatId });
  }

  read(chatId: string, seq: number): void {
    this.sendFrame({ type: "read", chatId, seq });
  }

  private chain(existing: Pending, resolve: (ack: Ack) => void, reject: (err: Error) => void): void {
    const { resolve: r0, reject: j0 } = existing;
    existing.resolve = (ack) => {
      r0(ack);
      resolve(ack);
    };
    existing.reject = (err) => {
      j0(err);
      reject(err);
    };
  }

  private open(): void {
    const token = this.api.accessToken;
    if (!token) throw new Error("Sign in before connecting");
    this.o.onStateChange?.("connecting");
    const Impl = this.o.WebSocketImpl ?? WebSocket;
    const url = this.o.url ?? `${this.api.baseUrl.replace(/^http/, "ws")}/ws`;
    const socket = new Impl(url, ["bearer", token]);
    this.socket = socket;
    socket.onmessage = (event) => this.onFrame(String(event.data));
    socket.onclose = (event) => this.onClose(socket, event.code);
    socket.onerror = () => undefined;
  }

  private onClose(socket: WebSocket, code: number): void {
    if (socket !== this.socket) return;
    this.userId = undefined;
    this.o.onStateChange?.("closed");
    if (this.stopped || NO_RECONNECT.has(code)) return;
    const delay = Math.min(this.o.maxDelayMs, this.o.minDelayMs * 2 ** this.attempts);
    this.attempts += 1;
    this.timer = setTimeout(() => void this.reconnect(code), delay / 2 + Math.random() * (delay / 2));
  }

  private async reconnect(code: number): Promise<void> {
    if (this.stopped) return;
    try {
      // 4001: the token expired or the session was revoked; a refresh tells which.
      if (code === 4001) await this.api.refresh();
      else await this.api.refreshIfDue();
      this.open();
    } catch {
      this.onClose(this.socket as WebSocket, code);
    }
  }

  /** Refreshes the access token before it expires and hands the new one to the open socket. */
  private scheduleTokenRefresh(): void {
    clearTimeout(this.refreshTimer);
    const expiresAt = this.api.accessTokenExpiresAt;
    if (expiresAt === undefined || this.stopped) return;
    const lead = Math.min(60_000, (expiresAt - Date.now()) / 5);
    this.refreshTimer = setTimeout(
      async () => {
        try {
          await this.api.refresh();
          this.sendFrame({ type: "auth", token: this.api.accessToken });
          this.scheduleTokenRefresh();
        } catch {
          this.socket?.close(4001, "Token refresh failed");
        }
      },
      Math.max(0, expiresAt - Date.now() - lead),
    );
  }

  private onFrame(text: string): void {
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "ready":
        this.onReady(frame);
        return;
      case "ack":
        this.onAck(frame as unknown as Ack);
        return;
      case "new_message":
        this.onMessage(frame as unknown as MessageView);
        return;
      case "error":
        this.onError(frame);
        return;
      case "resume_truncated":
        this.onTruncated(frame);
        return;
      case "message_edited":
      case "message_deleted":
        this.o.onFrame?.(
          markBlockedSender(frame as unknown as MessageView, this.blocked) as unknown as Frame,
        );
        return;
      case "reaction":
        this.o.onReaction?.(frame as unknown as ReactionFrame);
        break;
      case "pins_changed":
        this.o.onPinsChanged?.(frame as unknown as PinsChangedFrame);
        break;
      case "read":
        this.o.onRead?.(frame as unknown as ReadFrame);
        break;
    }
    this.o.onFrame?.(frame);
  }

  private onReady(frame: Frame): void {
    const first = this.userId === undefined;
    this.userId = String(frame.userId);
    this.attempts = 0;
    if (!first) return;
    this.scheduleTokenRefresh();
    this.o.onStateChange?.("open");
    this.resumeRefusals = 0;
    this.sendResume();
    for (const p of this.pending.values()) this.transmit(p);
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const w of waiters) w();
  }

  private onAck(ack: Ack): void {
    const p = this.pending.get(ack.clientMsgId);
    if (!p) return;
    this.pending.delete(ack.clientMsgId);
    p.resolve(ack);
  }

  /** Resumes every tracked chat from its last seen seq, in frames the server accepts. */
  private sendResume(): void {
    const chats = [...this.lastSeq];
    for (let i = 0; i < chats.length; i += RESUME_CHATS_PER_FRAME) {
      this.sendFrame({
        type: "resume",
        chats: Object.fromEntries(chats.slice(i, i + RESUME_CHATS_PER_FRAME)),
      });
    }
  }

  private onError(frame: Frame): void {
    const ref = typeof frame.ref === "string" ? frame.ref : undefined;
    if (ref === "resume") this.onResumeError(frame);
    const p = ref ? this.pending.get(ref) : undefined;
    if (!p) {
      this.o.onFrame?.(frame);
      return;
    }
    if (RETRYABLE.has(String(frame.code))) {
      // Resend later, backing off with jitter: a platform that answers 503 is overloaded or
      // recovering, and resends at a fixed pace would add to its load instead of letting it drain.
      // A rate limit says when its budget is back (`retryAfter`, seconds): not before that.
      const backoff = Math.min(this.o.maxDelayMs, Math.max(500, this.o.minDelayMs) * 2 ** p.refusals);
      const retryAfterMs = Number(frame.retryAfter) * 1000 || 0;
      p.refusals += 1;
      p.sentAt =
        Date.now() - this.o.ackTimeoutMs + Math.max(retryAfterMs, backoff * (0.5 + Math.random() / 2));
      return;
    }
    this.pending.delete(ref as string);
    p.reject(Object.assign(new Error(String(frame.message)), { code: frame.code }));
  }

  /**
   * A resume that failed: the chats the server named as not the user's are no longer followed; one
   * refused as unavailable is sent again later, from where the chats stand then.
   */
  private onResumeError(frame: Frame): void {
    if (frame.code === "CHAT_FORBIDDEN" && Array.isArray(frame.chatIds)) {
      for (const chatId of frame.chatIds) this.untrack(String(chatId));
      return;
    }
    if (!RETRYABLE.has(String(frame.code))) return;
    const backoff = Math.min(this.o.maxDelayMs, Math.max(500, this.o.minDelayMs) * 2 ** this.resumeRefusals);
    this.resumeRefusals += 1;
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => this.sendResume(), backoff * (0.5 + Math.random() / 2));
  }

  /** The server replayed a chat only in part: the rest, up to `toSeq`, comes from the history. */
  private onTruncated(frame: Frame): void {
    const chatId = String(frame.chatId);
    const toSeq = Number(frame.toSeq);
    if (!this.lastSeq.has(chatId) || !Number.isSafeInteger(toSeq)) return;
    void this.runFill(chatId, toSeq + 1);
  }

  /**
   * Delivers in seq order. A duplicate is dropped; a message that arrives early waits in a reorder
   * buffer, and if the missing seqs have not come live within GAP_WAIT_MS they are fetched from the
   * history. A chat seen for the first time starts at the first message received.
   */
  private onMessage(m: MessageView): void {
    if (!this.lastSeq.has(m.chatId)) this.lastSeq.set(m.chatId, m.seq - 1);
    this.accept(m);
  }

  private accept(m: MessageView): void {
    const last = this.lastSeq.get(m.chatId) ?? 0;
    if (m.seq <= last) return;
    if (m.seq > last + 1) {
      const early = this.early.get(m.chatId) ?? new Map<number, MessageView>();
      this.early.set(m.chatId, early.set(m.seq, m));
      this.scheduleGapFill(m.chatId);
      return;
    }
    this.lastSeq.set(m.chatId, m.seq);
    this.o.onMessage?.(markBlockedSender(m, this.blocked));
    const early = this.early.get(m.chatId);
    const next = early?.get(m.seq + 1);
    if (early) early.delete(m.seq);
    if (next) this.accept(next);
    else if (early && early.size === 0) this.early.delete(m.chatId);
  }

  private scheduleGapFill(chatId: string): void {
    if (this.gapTimers.has(chatId) || this.filling.has(chatId)) return;
    const timer = setTimeout(() => {
      this.gapTimers.delete(chatId);
      void this.fillGap(chatId);
    }, GAP_WAIT_MS);
    this.gapTimers.set(chatId, timer);
  }

  private async fillGap(chatId: string): Promise<void> {
    const early = this.early.get(chatId);
    if (!early || early.size === 0) return;
    await this.runFill(chatId, Math.min(...early.keys()));
  }

  /** Fetches the chat's messages before `until`, after any fill of the chat already running. */
  private async runFill(chatId: string, until: number): Promise<boolean> {
    const previous = this.filling.get(chatId);
    const fill = (async () => {
      await previous;
      return this.fillWithRetry(chatId, this.lastSeq.get(chatId) ?? 0, until);
    })();
    this.filling.set(chatId, fill);
    try {
      return await fill;
    } finally {
      if (this.filling.get(chatId) === fill) this.filling.delete(chatId);
      if ((this.early.get(chatId)?.size ?? 0) > 0) this.scheduleGapFill(chatId);
    }
  }

  /** Fetches what is missing, retrying with backoff while the platform answers 503; resolves whether it got it. */
  private async fillWithRetry(chatId: string, after: number, until: number): Promise<boolean> {
    for (let attempt = 0; attempt < 8 && !this.stopped; attempt++) {
      try {
        await this.fill(chatId, Math.max(after, this.lastSeq.get(chatId) ?? 0), until);
        return true;
      } catch {
        await new Promise((r) =>
          setTimeout(r, Math.min(this.o.maxDelayMs, this.o.minDelayMs * 2 ** attempt)),
        );
      }
    }
    return false;
  }

  private async fill(chatId: string, after: number, until: number): Promise<void> {
    let from = after;
    while (from < until - 1) {
      const page = await this.api.request<{ messages: MessageView[]; hasMore: boolean }>(
        "GET",
        `/chats/${encodeURIComponent(chatId)}/messages?after=${from}&limit=200`,
      );
      for (const m of page.messages) {
        this.accept(m);
        from = m.seq;
      }
      if (!page.hasMore || page.messages.length === 0) return;
    }
  }

  private transmit(p: Pending): void {
    if (!this.isOpen || !this.userId) return;
    p.sentAt = Date.now();
    this.socket?.send(JSON.stringify(p.frame));
  }

  private resendStale(): void {
    const now = Date.now();
    for (const p of this.pending.values())
      if (p.sentAt > 0 && now - p.sentAt > this.o.ackTimeoutMs) this.transmit(p);
  }

  private sendFrame(frame: Frame): void {
    if (this.isOpen && this.userId) this.socket?.send(JSON.stringify(frame));
  }
}

function randomId(): string {
  return globalThis.crypto.randomUUID();
}
